// Test support: the store backends the backend-parameterized suites run on.
// A backend makes a fresh Store in a directory; `reopen` makes another Store
// over the same data (persistent backends only), as after a restart.
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <ostream>
#include <memory>
#include <string>
#include <vector>

#include "store/store.hpp"

namespace aether::test {

struct StoreBackend {
  std::string name;
  bool persistent = false;
  std::function<std::unique_ptr<Store>(const std::string& dir)> open;
};

// Printed by GoogleTest (and ctest names) as the backend's name.
inline void PrintTo(const StoreBackend& b, std::ostream* os) { *os << b.name; }

inline std::vector<StoreBackend> store_backends() {
  return {
      {"memory", false, [](const std::string&) { return make_memory_store(); }},
      {"sqlite", true,
       [](const std::string& dir) {
         SqliteOptions o;
         o.path = dir + "/aether.db";
         auto s = open_sqlite_store(o);
         if (!s) ADD_FAILURE() << s.status().to_string();
         return s ? std::move(s).value() : nullptr;
       }},
  };
}

inline std::vector<StoreBackend> persistent_store_backends() {
  std::vector<StoreBackend> out;
  for (auto& b : store_backends()) {
    if (b.persistent) out.push_back(b);
  }
  return out;
}

inline std::string backend_name(const testing::TestParamInfo<StoreBackend>& info) {
  return info.param.name;
}

}  // namespace aether::test
