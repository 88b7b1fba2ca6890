// aether-host on NATS JetStream, against a real nats-server started by the
// test: broadcasting to raw cnats subscribers, request/reply ingress, two hosts
// writing the same actors, a server outage, tenant isolation.
#include <gtest/gtest.h>
#include <httplib.h>
#include <nats/nats.h>

#include <atomic>
#include <fstream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "support/host_process.hpp"
#include "support/nats_server.hpp"
#include "support/temp_dir.hpp"
#include "support/wait.hpp"

namespace aether {
namespace {

using json = nlohmann::json;
using test::HostProcess;
using test::NatsServer;

const std::string kJetStreamConfig = std::string(AETHER_SOURCE_DIR) + "/config/jetstream.yaml";

std::map<std::string, std::string> env_for(const NatsServer& server, const test::TempDir& dir,
                                           const std::string& node = "node-1") {
  return {{"NATS_URL", server.url()},
          {"AETHER_LISTEN", "127.0.0.1:0"},
          {"AETHER_PLUGIN_DIR", AETHER_PLUGIN_DIR},
          {"AETHER_NODE_ID", node},
          {"AETHER_DATA", dir.file("data-" + node)}};
}

// A raw cnats connection, no aether code involved.
struct RawClient {
  natsConnection* nc = nullptr;
  explicit RawClient(const std::string& url, const char* user = nullptr, const char* pass = nullptr) {
    natsOptions* o = nullptr;
    natsOptions_Create(&o);
    natsOptions_SetURL(o, url.c_str());
    if (user != nullptr) natsOptions_SetUserInfo(o, user, pass);
    natsConnection_Connect(&nc, o);
    natsOptions_Destroy(o);
  }
  ~RawClient() { natsConnection_Destroy(nc); }
};

struct Collected {
  std::mutex mu;
  std::vector<json> commits;
};

void collect(natsConnection*, natsSubscription*, natsMsg* msg, void* closure) {
  auto* c = static_cast<Collected*>(closure);
  json j = json::parse(natsMsg_GetData(msg), natsMsg_GetData(msg) + natsMsg_GetDataLength(msg), nullptr, false);
  natsMsg_Destroy(msg);
  std::lock_guard lock(c->mu);
  c->commits.push_back(std::move(j));
}

class NatsHostTest : public testing::Test {
 protected:
  void start_host(HostProcess*& out, const std::string& node, std::vector<std::string> extra_args = {}) {
    std::vector<std::string> args = {"--config", kJetStreamConfig};
    args.insert(args.end(), extra_args.begin(), extra_args.end());
    hosts_.push_back(std::make_unique<HostProcess>(args, env_for(server_, dir_, node), dir_.file(node + ".log")));
    out = hosts_.back().get();
    ASSERT_TRUE(out->start()) << out->log();
  }

  test::TempDir dir_;
  NatsServer server_;
  std::vector<std::unique_ptr<HostProcess>> hosts_;
};

TEST_F(NatsHostTest, RawSubscriberSeesEveryEventOnceInOrderAndRequestReplyMatchesHttp) {
  ASSERT_TRUE(server_.running()) << server_.log();
  HostProcess* host = nullptr;
  start_host(host, "node-1");
  RawClient raw(server_.url());
  ASSERT_NE(raw.nc, nullptr);
  Collected got;
  natsSubscription* sub = nullptr;
  ASSERT_EQ(natsConnection_Subscribe(&sub, raw.nc, "aether.default.events.>", collect, &got), NATS_OK);
  natsConnection_Flush(raw.nc);

  httplib::Client http("127.0.0.1", host->port());
  constexpr int kActors = 20, kPerActor = 15;
  for (int i = 0; i < kPerActor; ++i) {
    for (int a = 0; a < kActors; ++a) {
      auto r = http.Post("/v1/default/actors/Counter/raw" + std::to_string(a) + "/commands",
                         R"({"command":"Increment","payload":{"by":)" + std::to_string(a + 1) + "}}",
                         "application/json");
      ASSERT_TRUE(r && r->status == 200) << (r ? r->body : "no reply");
    }
  }
  // Every committed event, exactly once per actor, in version order.
  std::map<std::string, std::vector<uint64_t>> versions;
  test::eventually([&] {
    std::lock_guard lock(got.mu);
    return got.commits.size() >= kActors * kPerActor;
  });
  {
    std::lock_guard lock(got.mu);
    ASSERT_EQ(got.commits.size(), static_cast<size_t>(kActors * kPerActor));
    for (const auto& c : got.commits) {
      ASSERT_FALSE(c.is_discarded());
      for (const auto& e : c["events"]) versions[c["actor_id"]].push_back(e["version"]);
      EXPECT_EQ(c["events"][0]["type"], "Incremented");
    }
  }
  ASSERT_EQ(versions.size(), static_cast<size_t>(kActors));
  for (const auto& [actor, vs] : versions) {
    ASSERT_EQ(vs.size(), static_cast<size_t>(kPerActor)) << actor;
    for (size_t i = 0; i < vs.size(); ++i) EXPECT_EQ(vs[i], i + 1) << actor << ": out of order or repeated";
  }
  natsSubscription_Destroy(sub);

  // The same command over HTTP and over a raw NATS request: the same answer.
  auto via_http = http.Post("/v1/default/actors/BankAccount/same/commands",
                            R"({"command":"Withdraw","payload":{"amount":5}})", "application/json");
  natsMsg* reply = nullptr;
  const std::string req = R"({"command":"Withdraw","payload":{"amount":5}})";
  ASSERT_EQ(natsConnection_Request(&reply, raw.nc, "aether.default.cmd.BankAccount.same", req.data(),
                                   static_cast<int>(req.size()), 5000),
            NATS_OK);
  const std::string via_nats(natsMsg_GetData(reply), static_cast<size_t>(natsMsg_GetDataLength(reply)));
  const char* st = nullptr;
  natsMsgHeader_Get(reply, "Aether-Status", &st);
  EXPECT_EQ(via_nats, via_http->body);
  EXPECT_STREQ(st, "422");
  natsMsg_Destroy(reply);
  // And a successful one: Open over NATS, then the same state over HTTP.
  const std::string open = R"({"command":"Open","payload":{"owner":"nats"}})";
  ASSERT_EQ(natsConnection_Request(&reply, raw.nc, "aether.default.cmd.BankAccount.viaNats", open.data(),
                                   static_cast<int>(open.size()), 5000),
            NATS_OK);
  json j = json::parse(natsMsg_GetData(reply), natsMsg_GetData(reply) + natsMsg_GetDataLength(reply));
  natsMsg_Destroy(reply);
  EXPECT_EQ(j["version"], 1);
  EXPECT_EQ(j["events"][0]["type"], "Opened");
  auto http_open = http.Post("/v1/default/actors/BankAccount/viaHttp/commands", open, "application/json");
  json h = json::parse(http_open->body);
  h["id"] = "viaNats";
  h["events"][0]["id"] = "default.BankAccount.viaNats.1";
  EXPECT_EQ(j, h);
}

TEST_F(NatsHostTest, TwoHostsWriteTheSameActors) {
  HostProcess *a = nullptr, *b = nullptr;
  start_host(a, "node-a");
  start_host(b, "node-b");
  constexpr int kActors = 200, kPerThread = 300;
  std::mutex mu;
  std::map<std::string, std::set<uint64_t>> acked;
  std::atomic<int> failed{0};
  auto drive = [&](HostProcess* h, int seed) {
    httplib::Client c("127.0.0.1", h->port());
    c.set_keep_alive(true);
    c.set_tcp_nodelay(true);
    for (int i = 0; i < kPerThread; ++i) {
      const std::string id = "shared" + std::to_string((i * 7 + seed) % kActors);
      auto r = c.Post("/v1/default/actors/Counter/" + id + "/commands", R"({"command":"Increment"})",
                      "application/json");
      if (!r || r->status != 200) {
        failed.fetch_add(1);
        continue;
      }
      const uint64_t v = json::parse(r->body)["version"];
      std::lock_guard lock(mu);
      EXPECT_TRUE(acked[id].insert(v).second) << id << " v" << v << " acknowledged twice";
    }
  };
  std::vector<std::thread> ts;
  for (int t = 0; t < 4; ++t) ts.emplace_back(drive, t % 2 == 0 ? a : b, t * 13);
  for (auto& t : ts) t.join();
  EXPECT_EQ(failed.load(), 0) << "conflicts beyond the retries, or errors";
  httplib::Client check("127.0.0.1", a->port());
  size_t total = 0;
  for (const auto& [id, versions] : acked) {
    auto r = check.Get("/v1/default/actors/Counter/" + id + "/events?limit=10000");
    ASSERT_TRUE(r && r->status == 200);
    const json ev = json::parse(r->body)["events"];
    std::set<uint64_t> stored;
    for (size_t i = 0; i < ev.size(); ++i) {
      ASSERT_EQ(ev[i]["version"], i + 1) << id << ": duplicate or missing version";
      stored.insert(ev[i]["version"].get<uint64_t>());
    }
    for (uint64_t v : versions) EXPECT_TRUE(stored.count(v)) << id << " v" << v << " acknowledged but missing";
    EXPECT_EQ(stored.size(), versions.size()) << id << ": events nobody acknowledged";
    total += versions.size();
  }
  EXPECT_EQ(total, 4u * kPerThread);
}

TEST_F(NatsHostTest, ServerOutageFailsFastAndRecovers) {
  HostProcess* host = nullptr;
  start_host(host, "node-1");
  httplib::Client http("127.0.0.1", host->port());
  http.set_read_timeout(10);
  std::mutex mu;
  std::map<std::string, uint64_t> acked;  // highest acknowledged version per actor
  auto send = [&](const std::string& id) {
    auto r = http.Post("/v1/default/actors/Counter/" + id + "/commands", R"({"command":"Increment"})",
                       "application/json");
    if (r && r->status == 200) {
      std::lock_guard lock(mu);
      acked[id] = std::max<uint64_t>(acked[id], json::parse(r->body)["version"]);
    }
    return r;
  };
  for (int i = 0; i < 200; ++i) ASSERT_EQ(send("o" + std::to_string(i % 20))->status, 200);

  server_.kill9();
  // Commands during the outage: a clear 503 that says the connection is
  // down, answered from the connection's state (not a timeout of a request
  // that was sent, which would say so with another code).
  for (int i = 0; i < 5; ++i) {
    auto r = send("o" + std::to_string(i));
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 503) << r->body;
    EXPECT_EQ(json::parse(r->body)["error"]["code"], "nats_disconnected") << r->body;
    EXPECT_NE(r->body.find("NATS"), std::string::npos) << r->body;
  }
  ASSERT_TRUE(server_.start()) << server_.log();
  // The host serves again by itself, within seconds.
  bool back = false;
  for (int i = 0; i < 100 && !back; ++i) {
    auto r = send("o0");
    back = r && r->status == 200;
    if (!back) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_TRUE(back) << "the host did not recover";
  for (int i = 0; i < 100; ++i) {
    auto r = send("o" + std::to_string(i % 20));
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200) << r->body;
  }
  // Nothing acknowledged was lost.
  for (const auto& [id, v] : acked) {
    auto r = http.Get("/v1/default/actors/Counter/" + id);
    ASSERT_TRUE(r && r->status == 200) << id;
    EXPECT_GE(json::parse(r->body)["version"].get<uint64_t>(), v) << id;
    const json ev = json::parse(http.Get("/v1/default/actors/Counter/" + id + "/events?limit=10000")->body)["events"];
    for (size_t i = 0; i < ev.size(); ++i) ASSERT_EQ(ev[i]["version"], i + 1) << id;
  }
}

// A host started before its NATS server waits for it (nats.startup_wait),
// saying so in its log, and serves once the server is up.
TEST_F(NatsHostTest, HostStartedBeforeNatsWaitsForIt) {
  server_.stop();
  HostProcess host({"--config", kJetStreamConfig}, env_for(server_, dir_), dir_.file("early.log"));
  host.launch();
  // Bounded: until the host has logged a failed attempt (or gave up).
  test::eventually([&] { return host.log().find("not ready (attempt") != std::string::npos; }, test::kWaitSeconds, 20);
  EXPECT_NE(host.log().find("not ready (attempt"), std::string::npos) << host.log();
  ASSERT_TRUE(server_.start()) << server_.log();
  ASSERT_TRUE(host.wait_listening(60)) << host.log();
  EXPECT_NE(host.log().find("cannot connect to " + server_.url()), std::string::npos) << host.log();
  httplib::Client http("127.0.0.1", host.port());
  auto r = http.Post("/v1/default/actors/Counter/early/commands", R"({"command":"Increment"})", "application/json");
  ASSERT_TRUE(r) << httplib::to_string(r.error()) << "\n" << host.log();
  EXPECT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(host.stop(), 0) << host.log();
}

// With no NATS server at all, the host gives up after nats.startup_wait with
// an error that names the server, and exits non-zero.
TEST_F(NatsHostTest, HostWithoutNatsGivesUpAfterTheStartupWait) {
  server_.stop();
  auto env = env_for(server_, dir_);
  env["AETHER_NATS_STARTUP_WAIT"] = "1s";
  HostProcess host({"--config", kJetStreamConfig}, env, dir_.file("none.log"));
  EXPECT_FALSE(host.start(30)) << host.log();
  EXPECT_EQ(host.exit_code(), 1) << host.log();
  EXPECT_NE(host.log().find("nats: cannot connect to " + server_.url()), std::string::npos) << host.log();
  EXPECT_NE(host.log().find("not ready (attempt 1)"), std::string::npos) << host.log();
}

// sqlite store + NATS: events are broadcast from the outbox after the commit;
// while NATS is away, commands still succeed and their broadcast waits.
TEST(NatsOutbox, SqliteCommitsAreBroadcastAfterAnOutage) {
  test::TempDir dir;
  NatsServer server;
  const std::string config = dir.file("host.yaml");
  std::ofstream(config) << "nats:\n  enabled: true\n  servers: [\"" << server.url() << "\"]\n"
                        << "store:\n  backend: sqlite\n  sqlite:\n    path: " << dir.file("aether.db") << "\n"
                        << "plugins:\n  dir: " << AETHER_PLUGIN_DIR << "\n  list: [counter]\n"
                        << "api:\n  http:\n    listen: 127.0.0.1:0\n";
  HostProcess host({"--config", config}, {}, dir.file("host.log"));
  ASSERT_TRUE(host.start()) << host.log();
  httplib::Client http("127.0.0.1", host.port());
  auto increment = [&](const std::string& id) {
    auto r = http.Post("/v1/default/actors/Counter/" + id + "/commands", R"({"command":"Increment"})",
                       "application/json");
    return r && r->status == 200;
  };
  // The broadcast is at-least-once (docs/nats.md): a commit whose relay was
  // cut before the server's acknowledgement comes again after the outage.
  // Like any consumer, the test drops a commit it has seen (by its event
  // ids, i.e. versions); what it keeps must be every version once, in order.
  std::map<std::string, std::vector<uint64_t>> seen;
  auto drain_into = [&](natsSubscription* sub, size_t want) {
    size_t got = 0;
    for (natsMsg* m = nullptr; got < want && natsSubscription_NextMsg(&m, sub, 5000) == NATS_OK;) {
      json c = json::parse(natsMsg_GetData(m), natsMsg_GetData(m) + natsMsg_GetDataLength(m));
      natsMsg_Destroy(m);
      auto& vs = seen[c["actor_id"]];
      if (!vs.empty() && c["version"].get<uint64_t>() <= vs.back()) continue;  // seen before
      for (const auto& e : c["events"]) vs.push_back(e["version"]);
      ++got;
    }
    return got;
  };
  {
    RawClient raw(server.url());
    natsSubscription* sub = nullptr;
    ASSERT_EQ(natsConnection_SubscribeSync(&sub, raw.nc, "aether.default.events.>"), NATS_OK);
    natsConnection_Flush(raw.nc);
    for (int i = 0; i < 30; ++i) ASSERT_TRUE(increment("ob" + std::to_string(i % 3)));
    EXPECT_EQ(drain_into(sub, 30), 30u);
    natsSubscription_Destroy(sub);
  }
  server.kill9();
  // NATS is away: the sqlite store still commits; the broadcast waits.
  for (int i = 0; i < 30; ++i) ASSERT_TRUE(increment("ob" + std::to_string(i % 3)));
  ASSERT_TRUE(server.start()) << server.log();
  RawClient raw(server.url());
  natsSubscription* sub = nullptr;
  ASSERT_EQ(natsConnection_SubscribeSync(&sub, raw.nc, "aether.default.events.>"), NATS_OK);
  natsConnection_Flush(raw.nc);
  EXPECT_EQ(drain_into(sub, 30), 30u) << "the outbox was not relayed after NATS came back";
  natsSubscription_Destroy(sub);
  for (int a = 0; a < 3; ++a) {
    const auto& vs = seen["ob" + std::to_string(a)];
    ASSERT_EQ(vs.size(), 20u);
    for (size_t i = 0; i < vs.size(); ++i) EXPECT_EQ(vs[i], i + 1) << "version order";
  }
  EXPECT_EQ(host.stop(), 0) << host.log();
}

// The shipped config/nats-tenants.conf (tests/adversarial/nats_access_test
// tries every other denial).
TEST(NatsTenants, ATenantCannotSubscribeToAnotherTenantsEvents) {
  NatsServer server(test::nats_tenants_config(AETHER_SOURCE_DIR));
  ASSERT_TRUE(server.running()) << server.log();
  RawClient b(server.url(), "tenant-b", "b-secret");
  ASSERT_NE(b.nc, nullptr);
  natsSubscription* own = nullptr;
  ASSERT_EQ(natsConnection_SubscribeSync(&own, b.nc, "aether.b.events.>"), NATS_OK);
  ASSERT_EQ(natsConnection_Flush(b.nc), NATS_OK);
  const char* err_text = nullptr;
  EXPECT_EQ(natsConnection_GetLastError(b.nc, &err_text), NATS_OK) << "its own namespace is allowed";
  natsSubscription* other = nullptr;
  natsConnection_SubscribeSync(&other, b.nc, "aether.a.events.>");
  natsConnection_Flush(b.nc);
  // The server answers the subscription with a permissions violation.
  natsStatus s = NATS_OK;
  const char* text = nullptr;
  test::eventually([&] {
    s = natsConnection_GetLastError(b.nc, &text);
    return s != NATS_OK;
  });
  EXPECT_EQ(s, NATS_NOT_PERMITTED);
  EXPECT_NE(std::string(text ? text : "").find("Permissions Violation for Subscription to \"aether.a.events.>\""),
            std::string::npos)
      << (text ? text : "");
  natsSubscription_Destroy(other);
  natsSubscription_Destroy(own);
}

}  // namespace
}  // namespace aether
