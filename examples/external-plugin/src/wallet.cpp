// A wallet: deposits and withdrawals, never below zero.
//
// Built twice from this file to show an upgrade (CMakeLists.txt):
//   WALLET_VERSION=1  "1.0.0", state schema 1: {"balance"}
//   WALLET_VERSION=2  "2.0.0", state schema 2: {"balance","operations"},
//                     with upgrade_state from schema 1. The commands and
//                     events are the same, so v1 can replay what v2 wrote
//                     (a rollback to v1 replays the events).
#include <aether/sdk.hpp>

#include <cstdint>
#include <optional>

#ifndef WALLET_VERSION
#define WALLET_VERSION 1
#endif

namespace {

using aether::Decision;
using aether::json;

#if WALLET_VERSION == 1
struct Wallet {
  int64_t balance = 0;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(Wallet, balance)
constexpr uint32_t kSchema = 1;
void count_operation(Wallet&) {}
#else
struct Wallet {
  int64_t balance = 0;
  int64_t operations = 0;  // new in v2: deposits and withdrawals since the upgrade
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(Wallet, balance, operations)
constexpr uint32_t kSchema = 2;
void count_operation(Wallet& w) { ++w.operations; }
#endif

int64_t positive_amount(const json& cmd) {
  const auto amount = aether::field<int64_t>(cmd, "amount");
  if (amount <= 0) throw aether::BadInput("field 'amount' must be positive");
  return amount;
}

aether::ActorType<Wallet> make_wallet() {
  auto t =
      aether::ActorType<Wallet>("Wallet", kSchema)
          .command("Deposit",
                   [](const Wallet&, const json& cmd, Decision& d) {
                     d.emit("Deposited", {{"amount", positive_amount(cmd)}});
                   })
          .command("Withdraw",
                   [](const Wallet& w, const json& cmd, Decision& d) {
                     const int64_t amount = positive_amount(cmd);
                     if (amount > w.balance) {
                       throw aether::Rejected("insufficient_funds",
                                              "balance " + std::to_string(w.balance) +
                                                  " is less than " + std::to_string(amount));
                     }
                     d.emit("Withdrawn", {{"amount", amount}});
                   })
          .event("Deposited",
                 [](Wallet& w, const json& e) {
                   w.balance += e.at("amount").get<int64_t>();
                   count_operation(w);
                 })
          .event("Withdrawn", [](Wallet& w, const json& e) {
            w.balance -= e.at("amount").get<int64_t>();
            count_operation(w);
          });
#if WALLET_VERSION == 1
  return t;
#else
  return std::move(t).upgrade_with([](uint32_t from, const json& old) -> std::optional<json> {
    if (from != 1) return std::nullopt;  // unknown schema: the host replays the events
    return json{{"balance", old.at("balance").get<int64_t>()}, {"operations", 0}};
  });
#endif
}

aether::ActorType<Wallet> wallet = make_wallet();

}  // namespace

#if WALLET_VERSION == 1
AETHER_PLUGIN("wallet", "1.0.0", wallet)
#else
AETHER_PLUGIN("wallet", "2.0.0", wallet)
#endif
