// Hostile NATS messages against a real aether-host (a one-node cluster on
// JetStream, with NATS ingress) and a real nats-server: command messages
// nested 70,000 deep, bodies and headers that are not UTF-8, garbage on the
// subject other nodes forward commands on, forged commits on the events
// subject. Every request gets a reply, and the host lives on.
#include <gtest/gtest.h>
#include <httplib.h>
#include <nats/nats.h>

#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "support/host_process.hpp"
#include "support/nats_server.hpp"
#include "support/temp_dir.hpp"

namespace aether {
namespace {

using json = nlohmann::json;
using test::HostProcess;
using test::NatsServer;

constexpr const char* kNode = "adv-1";

std::string nested(size_t depth) { return std::string(depth, '[') + std::string(depth, ']'); }

struct Reply {
  natsStatus status = NATS_ERR;
  int http = 0;
  std::string body;
};

class NatsMessageTest : public testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(server_.running()) << server_.log();
    natsOptions* o = nullptr;
    natsOptions_Create(&o);
    natsOptions_SetURL(o, server_.url().c_str());
    ASSERT_EQ(natsConnection_Connect(&nc_, o), NATS_OK);
    natsOptions_Destroy(o);
    const std::map<std::string, std::string> env = {{"NATS_URL", server_.url()},
                                                    {"AETHER_LISTEN", "127.0.0.1:0"},
                                                    {"AETHER_PLUGIN_DIR", AETHER_PLUGIN_DIR},
                                                    {"AETHER_NODE_ID", kNode},
                                                    {"AETHER_SHARDS", "16"}};
    host_ = std::make_unique<HostProcess>(
        std::vector<std::string>{"--config", std::string(AETHER_SOURCE_DIR) + "/config/cluster.yaml"}, env,
        dir_.file("host.log"));
    ASSERT_TRUE(host_->start()) << host_->log();
    // The one node owns every shard once it has published its map.
    for (int i = 0; i < 300; ++i) {
      if (request(cmd_subject("Counter", "warmup"), R"({"command":"Increment"})").http == 200) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    FAIL() << "the host never served a command over NATS:\n" << host_->log();
  }

  void TearDown() override {
    if (nc_ != nullptr) natsConnection_Destroy(nc_);
  }

  static std::string cmd_subject(const std::string& type, const std::string& id) {
    return "aether.default.cmd." + type + "." + id;
  }
  static std::string fwd_subject(const std::string& type, const std::string& id) {
    return std::string("aether._cluster.fwd.") + kNode + ".default." + type + "." + id;
  }

  Reply request(const std::string& subject, const std::string& body,
                const std::vector<std::pair<std::string, std::string>>& headers = {}) {
    natsMsg* m = nullptr;
    natsMsg_Create(&m, subject.c_str(), nullptr, body.data(), static_cast<int>(body.size()));
    for (const auto& [k, v] : headers) natsMsgHeader_Set(m, k.c_str(), v.c_str());
    natsMsg* reply = nullptr;
    Reply r;
    r.status = natsConnection_RequestMsg(&reply, nc_, m, 10000);
    natsMsg_Destroy(m);
    if (r.status != NATS_OK) return r;
    const char* st = nullptr;
    if (natsMsgHeader_Get(reply, "Aether-Status", &st) == NATS_OK && st != nullptr) r.http = std::atoi(st);
    r.body.assign(natsMsg_GetData(reply), static_cast<size_t>(natsMsg_GetDataLength(reply)));
    natsMsg_Destroy(reply);
    return r;
  }

  // Asserts a 400 invalid_argument reply whose message contains `text`.
  static void expect_invalid(const Reply& r, const std::string& text) {
    ASSERT_EQ(r.status, NATS_OK) << "no reply: " << natsStatus_GetText(r.status);
    EXPECT_EQ(r.http, 400) << r.body;
    const json j = json::parse(r.body, nullptr, false);
    ASSERT_TRUE(j.is_object()) << r.body;
    EXPECT_EQ(j["error"]["code"], "invalid_argument") << r.body;
    EXPECT_NE(j["error"]["message"].get<std::string>().find(text), std::string::npos) << r.body;
  }

  // The host still runs commands, over NATS and HTTP.
  void expect_serving(const std::string& id) {
    const Reply r = request(cmd_subject("Counter", id), R"({"command":"Increment"})");
    ASSERT_EQ(r.status, NATS_OK) << "host gone?\n" << host_->log();
    EXPECT_EQ(r.http, 200) << r.body;
    httplib::Client http("127.0.0.1", host_->port());
    auto h = http.Get("/healthz");
    ASSERT_TRUE(h) << host_->log();
    EXPECT_EQ(h->status, 200);
  }

  test::TempDir dir_;
  NatsServer server_;
  natsConnection* nc_ = nullptr;
  std::unique_ptr<HostProcess> host_;
};

TEST_F(NatsMessageTest, DeepPayloadGetsA400Reply) {
  const std::string deep = R"({"command":"Increment","payload":{"by":1,"x":)" + nested(70000) + "}}";
  for (int i = 0; i < 3; ++i) {
    expect_invalid(request(cmd_subject("Counter", "deep"), deep),
                   "request body nests deeper than 64 levels (api.max_json_depth)");
  }
  expect_invalid(request(fwd_subject("Counter", "deep"), deep), "nests deeper than 64 levels");
  expect_invalid(request(cmd_subject("Counter", "deep"), nested(70000)), "nests deeper than 64 levels");
  expect_serving("after-deep");
}

TEST_F(NatsMessageTest, InvalidUtf8GetsA400ReplyAndTheHostLives) {
  for (const std::string& body : {std::string("{\"command\":\"Increment\",\"payload\":{\"by\":\"\xff\"}}"),
                                 std::string("{\"command\":\"Incr\xc3\x28\"}"), std::string("\xfe\xff"),
                                 std::string("{\"command\":\"\xed\xa0\x80\"}")}) {
    expect_invalid(request(cmd_subject("Counter", "utf8"), body), "is not valid UTF-8");
    expect_invalid(request(fwd_subject("Counter", "utf8"), body), "is not valid UTF-8");
  }
  expect_serving("after-utf8");
}

TEST_F(NatsMessageTest, GarbageInHeadersIsAnsweredNotFatal) {
  const std::string inc = R"({"command":"Increment"})";
  expect_invalid(request(cmd_subject("Counter", "hdr"), inc, {{"Idempotency-Key", "k\xff\xfe"}}),
                 "Idempotency-Key is not valid UTF-8");
  // A key the runtime refuses (too long) is refused, not forwarded as is.
  const Reply longkey = request(cmd_subject("Counter", "hdr"), inc, {{"Idempotency-Key", std::string(5000, 'k')}});
  ASSERT_EQ(longkey.status, NATS_OK);
  EXPECT_EQ(longkey.http, 400) << longkey.body;
  // Forward hop counts that are not numbers or absurd: every one answered.
  for (const char* hops : {"abc", "-1", "99999999999999999999999", "", "4294967297"}) {
    const Reply r = request(fwd_subject("Counter", "hops"), inc, {{"Aether-Hops", hops}});
    ASSERT_EQ(r.status, NATS_OK) << "hops '" << hops << "': no reply";
    EXPECT_TRUE(r.http == 200 || r.http == 503) << "hops '" << hops << "': " << r.http << " " << r.body;
  }
  expect_serving("after-headers");
}

TEST_F(NatsMessageTest, GarbageOnTheForwardSubjectIsAnswered) {
  for (const std::string& body : {std::string(""), std::string("not json"), std::string("[1,2,3]"),
                                 std::string("{\"command\":42}"), std::string(4096, '{'),
                                 std::string("{\"command\":\"Increment\",\"payload\":[]}"),
                                 std::string("{\"command\":\"Increment\",\"expected_version\":-1}")}) {
    const Reply r = request(fwd_subject("Counter", "garbage"), body);
    ASSERT_EQ(r.status, NATS_OK) << "no reply to '" << body.substr(0, 40) << "'";
    EXPECT_EQ(r.http, 400) << body.substr(0, 40) << ": " << r.body;
  }
  // Unknown types and unsafe ids on the forward subject.
  Reply r = request(fwd_subject("NoSuchType", "x"), R"({"command":"Go"})");
  ASSERT_EQ(r.status, NATS_OK);
  EXPECT_EQ(r.http, 404) << r.body;
  // Without a reply subject: nothing to answer, nothing to crash.
  const std::string deep = nested(70000);
  natsConnection_Publish(nc_, fwd_subject("Counter", "noreply").c_str(), deep.data(), static_cast<int>(deep.size()));
  natsConnection_Publish(nc_, cmd_subject("Counter", "noreply").c_str(), "\xff", 1);
  natsConnection_Flush(nc_);
  expect_serving("after-forward-garbage");
}

// A forged commit on the events subject (what anyone allowed to publish
// there can do) that nests deeper than any stored record may, or is not
// UTF-8, or says no versions: reading that actor answers 500 corruption;
// the host lives on. Forged both as commits of today's store (versions in
// the body) and of an earlier one (versions in headers).
TEST_F(NatsMessageTest, ForgedDeepOrNonUtf8CommitReadsAsCorruption) {
  auto commit = [](const std::string& id, const std::string& payload, const std::string& version) {
    return R"({"actor_id":")" + id + R"(","commit_id":"forged","events":[{"id":"x","payload":)" + payload +
           R"(,"type":"Deposited","version":1}],"first_version":)" + version +
           R"(,"node":"n","ns":"default","timestamp":0,"type":"BankAccount","version":)" + version + "}";
  };
  const std::vector<std::pair<std::string, std::string>> forged = {
      {"deep", R"({"events":[{"type":"Deposited","payload":{"amount":)" + nested(400000) + "}}]}"},
      {"utf8", "{\"events\":[{\"type\":\"Deposited\",\"payload\":{\"amount\":\"\xff\"}}]}"},
      {"deep-body", commit("deep-body", "{\"amount\":" + nested(400000) + "}", "1")},
      {"utf8-body", commit("utf8-body", "{\"amount\":\"\xff\"}", "1")},
      {"versionless-body", commit("versionless-body", "{\"amount\":1}", "-1")}};
  for (const auto& [id, body] : forged) {
    natsMsg* m = nullptr;
    natsMsg_Create(&m, ("aether.default.events.BankAccount." + id).c_str(), nullptr, body.data(),
                   static_cast<int>(body.size()));
    if (id.find("-body") == std::string::npos) {
      natsMsgHeader_Set(m, "Aether-First-Version", "1");
      natsMsgHeader_Set(m, "Aether-Version", "1");
    }
    natsMsg* ack = nullptr;
    // Through JetStream (a request to the stream's subject gets its ack).
    ASSERT_EQ(natsConnection_RequestMsg(&ack, nc_, m, 10000), NATS_OK);
    natsMsg_Destroy(ack);
    natsMsg_Destroy(m);
    const Reply r = request(cmd_subject("BankAccount", id), R"({"command":"Deposit","payload":{"amount":1}})");
    ASSERT_EQ(r.status, NATS_OK) << id << ": no reply\n" << host_->log();
    EXPECT_EQ(r.http, 500) << id << ": " << r.body;
    EXPECT_NE(r.body.find("corruption"), std::string::npos) << r.body;
    httplib::Client http("127.0.0.1", host_->port());
    auto ev = http.Get("/v1/default/actors/BankAccount/" + id + "/events");
    ASSERT_TRUE(ev) << host_->log();
    EXPECT_EQ(ev->status, 500) << ev->body;
    EXPECT_NE(ev->body.find("corruption"), std::string::npos) << ev->body;
  }
  expect_serving("after-forged");
}

// Cluster entries forged by anyone who may write the cluster's buckets: a
// member entry of the wrong shape, a handoff whose epoch is not a number, a
// shard map with a migration of a shard that does not exist. Each is
// ignored with a log line; the node keeps serving.
TEST_F(NatsMessageTest, ForgedClusterEntriesAreIgnored) {
  jsCtx* js = nullptr;
  ASSERT_EQ(natsConnection_JetStream(&js, nc_, nullptr), NATS_OK);
  kvStore* nodes = nullptr;
  kvStore* map = nullptr;
  ASSERT_EQ(js_KeyValue(&nodes, js, "AETHER_CLUSTER_NODES"), NATS_OK);
  ASSERT_EQ(js_KeyValue(&map, js, "AETHER_CLUSTER_MAP"), NATS_OK);
  uint64_t rev = 0;
  ASSERT_EQ(kvStore_PutString(&rev, nodes, "intruder", R"({"id":"intruder","leaving":"yes","load":"x"})"), NATS_OK);
  ASSERT_EQ(kvStore_PutString(&rev, map, "handoff.3", R"({"planned_epoch":"soon"})"), NATS_OK);
  ASSERT_EQ(kvStore_PutString(&rev, map, "map",
                              R"({"epoch":999999,"nodes":["adv-1"],"owners":[0],"migrations":[[4000000,"adv-1","x",1]]})"),
            NATS_OK);
  kvStore_Destroy(nodes);
  kvStore_Destroy(map);
  jsCtx_Destroy(js);
  // Both the member watcher and the map watcher have seen them.
  bool seen = false;
  for (int i = 0; i < 300 && !seen; ++i) {
    const std::string log = host_->log();
    seen = log.find("ignoring an undecodable entry for member 'intruder'") != std::string::npos &&
           log.find("undecodable shard map") != std::string::npos;
    if (!seen) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_TRUE(seen) << host_->log();
  httplib::Client http("127.0.0.1", host_->port());
  auto c = http.Get("/v1/cluster");
  ASSERT_TRUE(c) << host_->log();
  EXPECT_EQ(c->status, 200) << c->body;
  EXPECT_EQ(c->body.find("intruder"), std::string::npos) << c->body;
  expect_serving("after-forged-cluster");
}

}  // namespace
}  // namespace aether
