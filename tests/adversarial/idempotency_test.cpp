// Exactly-once against a real aether-host: a retried keyed command is a
// duplicate, a key reused for another command is refused (sqlite, jetstream),
// and a keyed commit whose key never reached the key-value bucket (its leader
// paused on a 3-server NATS cluster) is still a duplicate after the stream's
// duplicate window and a restart of the host.
#include <gtest/gtest.h>
#include <httplib.h>
#include <nats/nats.h>
#include <signal.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "support/host_process.hpp"
#include "support/nats_cluster.hpp"
#include "support/nats_server.hpp"
#include "support/temp_dir.hpp"

namespace aether {
namespace {

using json = nlohmann::json;
using test::HostProcess;

const std::string kDefaultConfig = std::string(AETHER_SOURCE_DIR) + "/config/aether.yaml";
const std::string kJetStreamConfig = std::string(AETHER_SOURCE_DIR) + "/config/jetstream.yaml";
const std::string kAccount = "/v1/default/actors/BankAccount/acc/commands";

std::map<std::string, std::string> host_env(const test::TempDir& dir, const std::string& nats_url = "") {
  std::map<std::string, std::string> env = {{"AETHER_DATA", dir.file("data")},
                                            {"AETHER_LISTEN", "127.0.0.1:0"},
                                            {"AETHER_PLUGIN_DIR", AETHER_PLUGIN_DIR}};
  if (!nats_url.empty()) env["NATS_URL"] = nats_url;
  return env;
}

std::string keyed(const std::string& command, int64_t amount, const std::string& key) {
  return json{{"command", command}, {"payload", {{"amount", amount}}}, {"idempotency_key", key}}.dump();
}

// POSTs and returns (status, body as JSON).
std::pair<int, json> post(HostProcess& host, const std::string& path, const std::string& body) {
  httplib::Client c("127.0.0.1", host.port());
  c.set_read_timeout(30);
  auto r = c.Post(path, body, "application/json");
  if (!r) return {0, json()};
  return {r->status, json::parse(r->body, nullptr, false)};
}

json get_state(HostProcess& host) {
  httplib::Client c("127.0.0.1", host.port());
  auto r = c.Get("/v1/default/actors/BankAccount/acc");
  return r ? json::parse(r->body, nullptr, false) : json();
}

// The retry of a keyed command answers the first result; the same key for
// another payload or another command answers 422; nothing is written twice.
void retries_and_reuses(HostProcess& host) {
  ASSERT_EQ(post(host, kAccount, R"({"command":"Open","payload":{"owner":"o"}})").first, 200);
  auto [s1, first] = post(host, kAccount, keyed("Deposit", 100, "dep-1"));
  ASSERT_EQ(s1, 200) << first.dump();
  EXPECT_EQ(first["duplicate"], false);
  EXPECT_EQ(first["version"], 2);
  // Same command, the payload written differently, the key as a header.
  httplib::Client c("127.0.0.1", host.port());
  auto again = c.Post(kAccount, {{"Idempotency-Key", "dep-1"}},
                      R"({ "payload" : { "amount" : 100 }, "command" : "Deposit" })", "application/json");
  ASSERT_TRUE(again);
  ASSERT_EQ(again->status, 200) << again->body;
  const json dup = json::parse(again->body);
  EXPECT_EQ(dup["duplicate"], true);
  EXPECT_EQ(dup["version"], 2);
  EXPECT_EQ(dup["events"], first["events"]);
  for (const std::string& other : {keyed("Deposit", 5, "dep-1"), keyed("Withdraw", 100, "dep-1")}) {
    auto [status, body] = post(host, kAccount, other);
    EXPECT_EQ(status, 422) << body.dump();
    EXPECT_EQ(body["error"]["code"], "idempotency_key_reused") << body.dump();
    EXPECT_EQ(body["error"]["rejected"], false);
  }
  const json st = get_state(host);
  EXPECT_EQ(st["version"], 2) << st.dump();
  EXPECT_EQ(st["state"]["balance"], 100) << st.dump();
}

// retries_and_reuses, then the same after a restart: the keys and digests
// come from the journal.
void retries_and_reuses_across_a_restart(HostProcess& host) {
  ASSERT_TRUE(host.start()) << host.log();
  retries_and_reuses(host);
  host.stop();
  ASSERT_TRUE(host.start()) << host.log();
  EXPECT_EQ(post(host, kAccount, keyed("Deposit", 100, "dep-1")).second["duplicate"], true);
  EXPECT_EQ(post(host, kAccount, keyed("Deposit", 7, "dep-1")).first, 422);
}

TEST(IdempotencyOverHttp, SqliteRetryIsADuplicateAndAReusedKeyIs422) {
  test::TempDir dir;
  HostProcess host({"--config", kDefaultConfig}, host_env(dir), dir.file("host.log"));
  retries_and_reuses_across_a_restart(host);
}

TEST(IdempotencyOverHttp, JetStreamRetryIsADuplicateAndAReusedKeyIs422) {
  test::NatsServer nats;
  ASSERT_TRUE(nats.running()) << nats.log();
  test::TempDir dir;
  HostProcess host({"--config", kJetStreamConfig}, host_env(dir, nats.url()), dir.file("host.log"));
  retries_and_reuses_across_a_restart(host);
}

// actors.idempotency.retention and store.jetstream.duplicate_window are
// checked with the file and line of a wrong value.
TEST(IdempotencyConfig, WrongValuesNameFileAndLine) {
  test::TempDir dir;
  const std::string plugins = "plugins:\n  dir: " + std::string(AETHER_PLUGIN_DIR) + "\n  list: [bank]\n";
  const std::pair<std::string, std::string> cases[] = {
      {"actors:\n  idempotency:\n    retention:\n      keys: 0\n",
       "7: actors.idempotency.retention.keys: must be between 1 and 100000, got 0"},
      {"actors:\n  idempotency:\n    retention:\n      age: soon\n",
       "7: actors.idempotency.retention.age: expected a duration"},
      {"actors:\n  idempotency:\n    window: 5\n", "6: actors.idempotency.window: unknown key (known here: retention)"},
      {"store:\n  jetstream:\n    duplicate_window: -1s\n", "6: store.jetstream.duplicate_window: expected a duration"},
      {"store:\n  jetstream:\n    max_age: 1m\n    duplicate_window: 2m\n",
       "7: store.jetstream.duplicate_window: must not be longer than max_age"},
  };
  for (const auto& [yaml, message] : cases) {
    const std::string file = dir.file("bad.yaml");
    std::ofstream(file) << plugins << yaml;
    auto r = test::run_process({test::host_binary(), "--check-config", file}, host_env(dir));
    EXPECT_EQ(r.exit_code, 1) << yaml;
    EXPECT_NE(r.err.find(file + ":" + message), std::string::npos) << "wanted " << message << " in: " << r.err;
  }
  const std::string good = dir.file("good.yaml");
  std::ofstream(good) << plugins
                      << "actors:\n  idempotency:\n    retention:\n      keys: 500\n      age: 24h\n"
                         "store:\n  jetstream:\n    duplicate_window: 10m\n";
  auto ok = test::run_process({test::host_binary(), "--check-config", good}, host_env(dir));
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
}

// --- the key-value bucket's leader paused ------------------------------------

// A raw client of the cluster's JetStream API.
class JsApi {
 public:
  explicit JsApi(const std::string& url) { natsConnection_ConnectTo(&nc_, url.c_str()); }
  ~JsApi() { natsConnection_Destroy(nc_); }
  bool connected() const { return nc_ != nullptr; }

  json request(const std::string& subject) {
    natsMsg* reply = nullptr;
    if (natsConnection_RequestString(&reply, nc_, subject.c_str(), "", 5000) != NATS_OK) return json();
    json j = json::parse(natsMsg_GetData(reply), natsMsg_GetData(reply) + natsMsg_GetDataLength(reply), nullptr,
                         false);
    natsMsg_Destroy(reply);
    return j;
  }
  // The server name ("s1".."s3") that leads a stream, "" while none does.
  std::string leader(const std::string& stream) {
    const json info = request("$JS.API.STREAM.INFO." + stream);
    if (!info.is_object() || !info.contains("cluster") || !info["cluster"].contains("leader")) return "";
    return info["cluster"]["leader"].get<std::string>();
  }
  // Asks the stream's leader to step down; waits (bounded) for a new one.
  std::string step_down(const std::string& stream) {
    const std::string old = leader(stream);
    request("$JS.API.STREAM.LEADER.STEPDOWN." + stream);
    for (int i = 0; i < 100; ++i) {
      const std::string now = leader(stream);
      if (!now.empty() && now != old) return now;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return leader(stream);
  }
  // Removes a key from the bucket's stream (all its revisions).
  bool purge_key(const std::string& bucket, const std::string& key) {
    kvStore* kv = nullptr;
    jsCtx* js = nullptr;
    bool ok = natsConnection_JetStream(&js, nc_, nullptr) == NATS_OK && js_KeyValue(&kv, js, bucket.c_str()) == NATS_OK &&
              kvStore_Purge(kv, key.c_str(), nullptr) == NATS_OK;
    kvStore_Destroy(kv);
    jsCtx_Destroy(js);
    return ok;
  }

 private:
  natsConnection* nc_ = nullptr;
};

using test::Paused;

TEST(IdempotencyOnACluster, AKeyThatNeverReachedTheBucketIsADuplicateAfterTheWindowAndARestart) {
  test::NatsCluster cluster(3);
  ASSERT_TRUE(cluster.wait_ready()) << cluster.server(0).log();
  test::TempDir dir;
  // Replicated streams, a 1 s duplicate window; the host talks to s1 only.
  const std::string config = dir.file("host.yaml");
  {
    std::ifstream in(kJetStreamConfig);
    std::string text((std::istreambuf_iterator<char>(in)), {});
    const std::string from = "    replicas: 1\n";
    ASSERT_NE(text.find(from), std::string::npos);
    text.replace(text.find(from), from.size(), "    replicas: 3\n    duplicate_window: 1s\n");
    std::ofstream(config) << text;
  }
  HostProcess host({"--config", config}, host_env(dir, cluster.server(0).url()), dir.file("host.log"));
  ASSERT_TRUE(host.start(90)) << host.log();
  ASSERT_EQ(post(host, kAccount, R"({"command":"Open","payload":{"owner":"o"}})").first, 200);

  // The bucket's leader on a server that neither the host talks to nor
  // leads the events stream, so that commits go on while it is paused.
  JsApi api(cluster.server(0).url());
  ASSERT_TRUE(api.connected());
  const std::string bucket_stream = "KV_AETHER_default_IDEM";
  std::string kv_leader = api.leader(bucket_stream);
  for (int i = 0; i < 20 && (kv_leader.empty() || kv_leader == "s1" || kv_leader == api.leader("AETHER_default"));
       ++i) {
    kv_leader = api.step_down(bucket_stream);
  }
  ASSERT_FALSE(kv_leader.empty());
  ASSERT_NE(kv_leader, "s1");
  ASSERT_NE(kv_leader, api.leader("AETHER_default"));
  const size_t paused_index = static_cast<size_t>(kv_leader[1] - '1');
  ASSERT_LT(paused_index, cluster.size());

  json first;
  {
    Paused pause(cluster.server(paused_index).pid());
    auto [status, body] = post(host, kAccount, keyed("Deposit", 100, "dep-pause"));
    ASSERT_EQ(status, 200) << body.dump() << "\n" << host.log();
    EXPECT_EQ(body["duplicate"], false);
    EXPECT_EQ(body["version"], 2);
    first = body;
    // Held long enough for the host's bucket write to give up.
    std::this_thread::sleep_for(std::chrono::seconds(2));
  }
  // Whatever reached the bucket meanwhile, the key is not there now.
  ASSERT_TRUE(api.purge_key("AETHER_default_IDEM", "BankAccount.acc.6465702d7061757365"));
  ASSERT_EQ(post(host, kAccount, R"({"command":"Deposit","payload":{"amount":1}})").second["version"], 3);

  // Past the stream's duplicate window, and past a restart of the host.
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  host.stop();
  ASSERT_TRUE(host.start(90)) << host.log();
  auto [status, retry] = post(host, kAccount, keyed("Deposit", 100, "dep-pause"));
  ASSERT_EQ(status, 200) << retry.dump();
  EXPECT_EQ(retry["duplicate"], true) << retry.dump();
  EXPECT_EQ(retry["version"], 2);
  EXPECT_EQ(retry["events"], first["events"]);
  EXPECT_EQ(post(host, kAccount, keyed("Deposit", 5, "dep-pause")).first, 422);
  const json st = get_state(host);
  EXPECT_EQ(st["version"], 3) << "nothing written again: " << st.dump();
  EXPECT_EQ(st["state"]["balance"], 101);
}

}  // namespace
}  // namespace aether
