// Routing between real aether-host nodes on a 3-server NATS cluster: a
// forwarded command never goes back to a node it passed, the route headers
// of a client's command mean nothing, and a command that cannot reach its
// owner in time fails with an error that says whether it may have run.
#include <gtest/gtest.h>
#include "support/cluster_harness.hpp"

namespace aether {
namespace {

using json = nlohmann::json;

struct Reply {
  int status = 0;  // 0: no reply
  std::string redirect;
  json body;
};

class RoutingTest : public testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(cluster_.nats_ready()) << "the NATS cluster did not become ready";
    cluster_.set_env("AETHER_FORWARD_TIMEOUT", "1500ms");
    cluster_.set_env("AETHER_ROUTE_WAIT", "1500ms");
    for (const char* node : {"node-a", "node-b"}) {
      std::string why;
      ASSERT_NE(cluster_.start_host(node, &why), nullptr) << why;
    }
    ASSERT_TRUE(cluster_.wait_converged(2, 60)) << cluster_.last_status().dump(1);
    ASSERT_EQ(natsConnection_ConnectTo(&nc_, cluster_.nats(0).url().c_str()), NATS_OK);
  }
  void TearDown() override { natsConnection_Destroy(nc_); }

  // A NATS request with headers; the reply's status, redirect header and body.
  Reply request(const std::string& subject, const std::vector<std::pair<std::string, std::string>>& headers,
                const std::string& body = R"({"command":"Increment","payload":{"by":1}})") {
    natsMsg* m = nullptr;
    natsMsg_Create(&m, subject.c_str(), nullptr, body.data(), static_cast<int>(body.size()));
    for (const auto& [k, v] : headers) natsMsgHeader_Set(m, k.c_str(), v.c_str());
    natsMsg* reply = nullptr;
    Reply out;
    if (natsConnection_RequestMsg(&reply, nc_, m, 10000) == NATS_OK) {
      const char* v = nullptr;
      out.status = natsMsgHeader_Get(reply, "Aether-Status", &v) == NATS_OK && v ? std::atoi(v) : 200;
      if (natsMsgHeader_Get(reply, "Aether-Redirect", &v) == NATS_OK && v) out.redirect = v;
      out.body = json::parse(std::string(natsMsg_GetData(reply), static_cast<size_t>(natsMsg_GetDataLength(reply))),
                             nullptr, false);
      natsMsg_Destroy(reply);
    }
    natsMsg_Destroy(m);
    return out;
  }

  // As if `from` had forwarded the command for Counter `id` to `to`.
  Reply forward(const std::string& to, const std::string& id, const std::string& path) {
    return request("aether._cluster.fwd." + to + ".default.Counter." + id, {{"Aether-Path", path}});
  }

  uint64_t version_of(const std::string& id) {
    httplib::Client c("127.0.0.1", cluster_.host("node-a").port());
    c.set_read_timeout(10, 0);
    auto r = c.Get("/v1/default/actors/Counter/" + id + "/events?limit=1000");
    if (!r || r->status != 200) return 0;
    return json::parse(r->body)["events"].size();
  }

  // An actor whose shard node-a owns: node-b, told that node-a already
  // passed the command on, sends it back unrun.
  std::string owned_by_a() {
    for (int i = 0; i < 64; ++i) {
      const std::string id = "probe-" + std::to_string(i);
      if (forward("node-b", id, "node-a").status == 503) return id;
    }
    return "";
  }

  // A node TTL far past the forward timeout: a paused owner stays a member
  // until its forward has timed out, however slow the build.
  test::ClusterHarness cluster_{15000, "500ms"};
  natsConnection* nc_ = nullptr;
};

TEST_F(RoutingTest, AForwardIsNeverSentBackToANodeOnItsPath) {
  for (int i = 0; i < 8; ++i) {
    const std::string id = "loop-" + std::to_string(i);
    // Each node hears that the other one forwarded the command: the owner
    // runs it, the other must not pass it back.
    const Reply to_a = forward("node-a", id, "node-b");
    const Reply to_b = forward("node-b", id, "node-a");
    ASSERT_NE(to_a.status, 0);
    ASSERT_NE(to_b.status, 0);
    const Reply& ran = to_a.status == 200 ? to_a : to_b;
    const Reply& bounced = to_a.status == 200 ? to_b : to_a;
    EXPECT_EQ(ran.status, 200) << ran.body.dump();
    ASSERT_EQ(bounced.status, 503) << bounced.body.dump();
    EXPECT_EQ(bounced.body["error"]["code"], "owner_unreachable") << bounced.body.dump();
    EXPECT_EQ(bounced.body["error"]["may_have_been_applied"], false) << bounced.body.dump();
    EXPECT_FALSE(bounced.redirect.empty()) << "the sender is told to refresh its map";
    EXPECT_EQ(version_of(id), 1u) << id << ": run once, by its owner";
  }
}

TEST_F(RoutingTest, RouteHeadersOnAClientsCommandAreIgnored) {
  // Whichever node the queue group picks, owner or not, the command runs.
  for (int i = 0; i < 16; ++i) {
    const std::string id = "hdr-" + std::to_string(i);
    const Reply r = request("aether.default.cmd.Counter." + id, {{"Aether-Hops", "999"},
                                                                  {"Aether-Path", "node-a,node-b"},
                                                                  {"Aether-Epoch", "999999999"},
                                                                  {"Aether-Budget-Ms", "0"}});
    EXPECT_EQ(r.status, 200) << id << ": " << r.body.dump();
    EXPECT_EQ(version_of(id), 1u) << id;
  }
}

TEST_F(RoutingTest, ForwardHeadersAreCheckedAndAForgedEpochDoesNoHarm) {
  const Reply bad = request("aether._cluster.fwd.node-a.default.Counter.x-1", {{"Aether-Path", "node.b"}});
  EXPECT_EQ(bad.status, 400) << bad.body.dump();
  EXPECT_NE(bad.body["error"]["message"].get<std::string>().find("Aether-Path"), std::string::npos);
  const Reply junk = request("aether._cluster.fwd.node-a.default.Counter.x-1", {{"Aether-Epoch", "12ab"}});
  EXPECT_EQ(junk.status, 400) << junk.body.dump();
  // An epoch no node has: a map read, then the command goes where the map says.
  for (int i = 0; i < 4; ++i) {
    const std::string id = "epoch-" + std::to_string(i);
    const Reply r = request("aether._cluster.fwd.node-b.default.Counter." + id, {{"Aether-Epoch", "999999999"}});
    EXPECT_EQ(r.status, 200) << id << ": " << r.body.dump();
  }
}

TEST_F(RoutingTest, ACommandForAPausedOwnerFailsSayingItMayHaveRun) {
  const std::string id = owned_by_a();
  ASSERT_FALSE(id.empty()) << "no probed actor is owned by node-a";
  test::Paused paused(cluster_.host("node-a").pid());
  httplib::Client c("127.0.0.1", cluster_.host("node-b").port());
  c.set_read_timeout(20, 0);
  auto r = c.Post("/v1/default/actors/Counter/" + id + "/commands",
                  R"({"command":"Increment","payload":{"by":1}})", "application/json");
  paused.resume();
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 503) << r->body;
  const json j = json::parse(r->body);
  EXPECT_EQ(j["error"]["code"], "owner_unreachable") << r->body;
  EXPECT_EQ(j["error"]["may_have_been_applied"], true) << r->body;
}

}  // namespace
}  // namespace aether
