// The reducer measured by abi_bench: compiled both into the benchmark (the
// direct call) and into the bench_account plugin (the ABI + SDK path).
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

namespace aether::bench {

struct Account {
  int64_t balance = 0;
  int64_t deposits = 0;
  std::string last_ref;
};

inline void apply_deposited(Account& s, const nlohmann::json& e) {
  s.balance += e.at("amount").get<int64_t>();
  s.deposits += 1;
  s.last_ref = e.at("ref").get<std::string>();
}

inline constexpr const char* kDepositedPayload = R"({"amount":125,"ref":"tx-000042"})";

}  // namespace aether::bench
