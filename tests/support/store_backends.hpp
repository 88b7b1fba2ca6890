// Test support: the store backends the backend-parameterized suites run on.
// A backend makes a fresh Journal in a directory; `reopen` makes another Journal
// over the same data (persistent backends only), as after a restart.
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <set>

#include <nats/nats.h>
#include <ostream>
#include <memory>
#include <string>
#include <vector>

#include "bus/bus.hpp"
#include "bus/nats_bus.hpp"
#include "nats/connection.hpp"
#include "store/jetstream_store.hpp"
#include "store/store.hpp"
#include "support/nats_server.hpp"

namespace aether::test {

// `open(dir, broadcast)`: memory and sqlite publish their commits on
// `broadcast` when given (jetstream publishes them on NATS itself);
// `make_bus()` is the bus a reader of this backend's commits subscribes to.
struct StoreBackend {
  std::string name;
  bool persistent = false;
  std::function<std::unique_ptr<Journal>(const std::string& dir, Bus* broadcast)> open;
  std::function<std::unique_ptr<Bus>()> make_bus = [] { return make_local_bus(); };
};

// Printed by GoogleTest (and ctest names) as the backend's name.
inline void PrintTo(const StoreBackend& b, std::ostream* os) { *os << b.name; }

// One nats-server (and connection) per test binary, started on first use
// and stopped by a GoogleTest environment after the last test (before static
// destruction, when the NATS client library may already be gone).
class SharedNats : public testing::Environment {
 public:
  NatsConnection& connection() {
    if (!conn_) {
      server_ = std::make_unique<NatsServer>();
      NatsOptions o;
      o.servers = {server_->url()};
      auto c = NatsConnection::connect(o);
      if (!c) {
        ADD_FAILURE() << c.status().to_string() << "\n" << server_->log();
        std::abort();
      }
      conn_ = std::move(c).value();
    }
    return *conn_;
  }
  void TearDown() override {
    conn_.reset();
    server_.reset();
  }

 private:
  std::unique_ptr<NatsServer> server_;
  std::unique_ptr<NatsConnection> conn_;
};

inline SharedNats* const shared_nats_env =
    static_cast<SharedNats*>(testing::AddGlobalTestEnvironment(new SharedNats));

inline NatsConnection& shared_nats() { return shared_nats_env->connection(); }

inline std::unique_ptr<Journal> open_jetstream_for_test(const std::string& dir) {
  // A store opened for a new directory starts empty: drop what an earlier
  // test of this process left in the server. A reopen keeps everything.
  static std::set<std::string> opened;
  if (opened.insert(dir).second) {
    jsCtx* js = shared_nats().js();
    for (const char* stream : {"AETHER_default", "AETHER_default_SNAPSHOTS"}) {
      js_DeleteStream(js, stream, nullptr, nullptr);
    }
    js_DeleteKeyValue(js, "AETHER_default_IDEM");
  }
  JetStreamOptions o;
  o.publishers = 8;
  auto s = open_jetstream_store(shared_nats(), o);
  if (!s) ADD_FAILURE() << s.status().to_string();
  return s ? std::move(s).value() : nullptr;
}

inline std::vector<StoreBackend> store_backends() {
  return {
      {"jetstream", true, [](const std::string& dir, Bus*) { return open_jetstream_for_test(dir); },
       [] { return std::unique_ptr<Bus>(std::make_unique<NatsBus>(shared_nats())); }},
      {"memory", false, [](const std::string&, Bus* broadcast) { return make_memory_store(broadcast); }},
      {"sqlite", true,
       [](const std::string& dir, Bus* broadcast) {
         SqliteOptions o;
         o.path = dir + "/aether.db";
         o.broadcast = broadcast;
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
