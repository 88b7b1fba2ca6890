// NATS access control with the configuration that ships
// (config/nats-tenants.conf), against a real nats-server and a real
// aether-host: a tenant commands and watches its own namespace and nothing of
// another tenant's (events, replies, stream); a client sends commands but
// cannot append history, so a forged commit never becomes state.
#include <gtest/gtest.h>
#include <httplib.h>
#include <nats/nats.h>

#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "support/host_process.hpp"
#include "support/nats_server.hpp"
#include "support/temp_dir.hpp"

namespace aether {
namespace {

using json = nlohmann::json;
using test::HostProcess;
using test::NatsClient;
using test::NatsServer;

const NatsClient::Login kHost{"aether-host", "host-secret", ""};
const NatsClient::Login kClient{"aether-client", "client-secret", "_INBOX_aether-client"};
const NatsClient::Login kTenantA{"tenant-a", "a-secret", ""};
const NatsClient::Login kTenantB{"tenant-b", "b-secret", ""};

// config/jetstream.yaml serving the namespaces of the tenants too.
std::string host_config(const test::TempDir& dir) {
  std::string yaml = test::read_file(std::string(AETHER_SOURCE_DIR) + "/config/jetstream.yaml");
  const std::string from = "  namespace: default\n";
  const auto at = yaml.find(from);
  if (at == std::string::npos) return "";
  yaml.replace(at, from.size(), "  namespaces: [default, a, b]\n  data_dir: " + dir.file("data") + "\n");
  const std::string path = dir.file("host.yaml");
  std::ofstream(path) << yaml;
  return path;
}

struct Reply {
  natsStatus status = NATS_OK;
  std::string aether_status;
  json body;
};

Reply request(const NatsClient& c, const std::string& subject, const std::string& data, int timeout_ms = 5000) {
  Reply r;
  natsMsg* m = nullptr;
  r.status = natsConnection_Request(&m, c.nc(), subject.c_str(), data.data(), static_cast<int>(data.size()),
                                    timeout_ms);
  if (r.status != NATS_OK) return r;
  const char* v = nullptr;
  if (natsMsgHeader_Get(m, "Aether-Status", &v) == NATS_OK && v != nullptr) r.aether_status = v;
  r.body = json::parse(natsMsg_GetData(m), natsMsg_GetData(m) + natsMsg_GetDataLength(m), nullptr, false);
  natsMsg_Destroy(m);
  return r;
}

std::string violation(const char* what, const std::string& subject) {
  return std::string("Permissions Violation for ") + what + " to \"" + subject + "\"";
}

class NatsAccessTest : public testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(server_.running()) << server_.log();
    const std::string conf = host_config(dir_);
    ASSERT_FALSE(conf.empty()) << "config/jetstream.yaml has no 'namespace: default' line";
    host_ = std::make_unique<HostProcess>(
        std::vector<std::string>{"--config", conf},
        std::map<std::string, std::string>{{"NATS_URL", server_.url()},
                                           {"NATS_USER", kHost.user},
                                           {"NATS_PASSWORD", kHost.password},
                                           {"AETHER_LISTEN", "127.0.0.1:0"},
                                           {"AETHER_PLUGIN_DIR", AETHER_PLUGIN_DIR},
                                           {"AETHER_NODE_ID", "node-1"}},
        dir_.file("host.log"));
    ASSERT_TRUE(host_->start()) << host_->log() << server_.log();
  }

  // Connects; the connection must be accepted.
  std::unique_ptr<NatsClient> login(const NatsClient::Login& who) {
    auto c = std::make_unique<NatsClient>(server_.url(), who);
    EXPECT_EQ(c->connect_status(), NATS_OK) << who.user << ": " << natsStatus_GetText(c->connect_status());
    return c;
  }

  // A command from a tenant: 200 and the version it reached.
  void command(const NatsClient& c, const std::string& ns, const std::string& id, uint64_t version) {
    Reply r = request(c, "aether." + ns + ".cmd.Counter." + id, R"({"command":"Increment","payload":{"by":2}})");
    ASSERT_EQ(r.status, NATS_OK) << natsStatus_GetText(r.status);
    EXPECT_EQ(r.aether_status, "200") << r.body.dump();
    EXPECT_EQ(r.body.value("version", 0u), version) << r.body.dump();
  }

  test::TempDir dir_;
  NatsServer server_{test::nats_tenants_config(AETHER_SOURCE_DIR)};
  std::unique_ptr<HostProcess> host_;
};

TEST_F(NatsAccessTest, ATenantCommandsWatchesAndReadsItsOwnNamespace) {
  auto a = login(kTenantA);
  natsSubscription* events = nullptr;
  ASSERT_EQ(natsConnection_SubscribeSync(&events, a->nc(), "aether.a.events.>"), NATS_OK);
  ASSERT_EQ(natsConnection_Flush(a->nc()), NATS_OK);
  command(*a, "a", "c1", 1);
  natsMsg* m = nullptr;
  ASSERT_EQ(natsSubscription_NextMsg(&m, events, 5000), NATS_OK) << "the commit reaches the tenant's account";
  const json commit = json::parse(natsMsg_GetData(m), natsMsg_GetData(m) + natsMsg_GetDataLength(m));
  natsMsg_Destroy(m);
  EXPECT_EQ(commit["ns"], "a");
  EXPECT_EQ(commit["events"][0]["type"], "Incremented");
  natsSubscription_Destroy(events);

  // Its stored history, read-only, by direct get.
  Reply last = request(*a, "$JS.API.DIRECT.GET.AETHER_a.aether.a.events.Counter.c1", "");
  ASSERT_EQ(last.status, NATS_OK) << natsStatus_GetText(last.status) << a->errors();
  EXPECT_EQ(last.body.value("actor_id", ""), "c1") << last.body.dump();
  EXPECT_EQ(a->errors(), "");
}

TEST_F(NatsAccessTest, ATenantCannotWatchAnotherTenantsEventsOrReplies) {
  auto a = login(kTenantA);
  auto b = login(kTenantB);
  natsSubscription* other = nullptr;
  natsSubscription* client_inbox = nullptr;
  natsSubscription* own_inboxes = nullptr;
  natsSubscription* own_events = nullptr;
  // One at a time: the error handler reads the connection's last error.
  natsConnection_SubscribeSync(&other, b->nc(), "aether.a.events.>");
  natsConnection_Flush(b->nc());
  EXPECT_TRUE(b->wait_error(violation("Subscription", "aether.a.events.>"))) << b->errors();
  natsConnection_SubscribeSync(&client_inbox, b->nc(), "_INBOX_aether-client.>");
  natsConnection_Flush(b->nc());
  EXPECT_TRUE(b->wait_error(violation("Subscription", "_INBOX_aether-client.>"))) << b->errors();
  ASSERT_EQ(natsConnection_SubscribeSync(&own_inboxes, b->nc(), "_INBOX.>"), NATS_OK);
  ASSERT_EQ(natsConnection_SubscribeSync(&own_events, b->nc(), "aether.b.events.>"), NATS_OK);
  natsConnection_Flush(b->nc());

  // A's command and its reply happen in another account: B's inbox
  // wildcard and B's namespace see nothing of them. (A's reply was
  // delivered before A's request returned; B's flush round trip comes after
  // anything the server would have sent B by then.)
  command(*a, "a", "c2", 1);
  ASSERT_EQ(natsConnection_Flush(b->nc()), NATS_OK);
  int pending = -1;
  natsSubscription_GetPending(own_inboxes, &pending, nullptr);
  EXPECT_EQ(pending, 0) << "B received a reply of A";
  natsSubscription_GetPending(own_events, &pending, nullptr);
  EXPECT_EQ(pending, 0) << "B received an event of A";
  for (natsSubscription* s : {other, client_inbox, own_inboxes, own_events}) natsSubscription_Destroy(s);
}

TEST_F(NatsAccessTest, ATenantCannotPurgeDeleteOrReadAnotherTenantsStreamNorWriteHistory) {
  auto a = login(kTenantA);
  auto b = login(kTenantB);
  command(*a, "a", "c3", 1);
  const std::vector<std::string> attacks = {
      "$JS.API.STREAM.PURGE.AETHER_a",     "$JS.API.STREAM.DELETE.AETHER_a",
      "$JS.API.STREAM.MSG.DELETE.AETHER_a", "$JS.API.STREAM.MSG.GET.AETHER_a",
      "$JS.API.CONSUMER.CREATE.AETHER_a",  "$JS.API.DIRECT.GET.AETHER_a.aether.a.events.Counter.c3",
      "$JS.API.STREAM.INFO.AETHER_a",
  };
  for (const auto& subject : attacks) {
    Reply r = request(*b, subject, R"({"seq":1})", 300);
    EXPECT_NE(r.status, NATS_OK) << subject << " was answered: " << r.body.dump();
    EXPECT_TRUE(b->wait_error(violation("Publish", subject))) << subject << "\n" << b->errors();
  }
  // A tenant writes no history either, not even its own.
  const std::string forged = R"({"events":[{"type":"Incremented","payload":{"by":1000000}}]})";
  natsConnection_PublishString(a->nc(), "aether.a.events.Counter.c3", forged.c_str());
  natsConnection_Flush(a->nc());
  EXPECT_TRUE(a->wait_error(violation("Publish", "aether.a.events.Counter.c3"))) << a->errors();

  // A's stream is whole: the host still reads c3 at version 1 and goes on.
  auto host = login(kHost);
  Reply last = request(*host, "$JS.API.DIRECT.GET.AETHER_a.aether.a.events.Counter.c3", "");
  ASSERT_EQ(last.status, NATS_OK);
  EXPECT_EQ(last.body.value("version", 0u), 1u) << last.body.dump();
  command(*a, "a", "c3", 2);
}

// Item 14: a client may send commands and read history, not append it.
TEST_F(NatsAccessTest, AClientsForgedCommitIsRefusedAndNeverBecomesState) {
  httplib::Client http("127.0.0.1", host_->port());
  auto post = [&](const std::string& cmd, const std::string& payload) {
    auto r = http.Post("/v1/default/actors/BankAccount/acc-1/commands",
                       R"({"command":")" + cmd + R"(","payload":)" + payload + "}", "application/json");
    ASSERT_TRUE(r && r->status == 200) << (r ? r->body : "no reply");
  };
  post("Open", R"({"owner":"ann"})");
  post("Deposit", R"({"amount":100})");

  auto client = login(kClient);
  Reply sent = request(*client, "aether.default.cmd.BankAccount.acc-1", R"({"command":"Deposit","payload":{"amount":5}})");
  ASSERT_EQ(sent.status, NATS_OK) << natsStatus_GetText(sent.status) << client->errors();
  EXPECT_EQ(sent.aether_status, "200") << sent.body.dump();

  natsMsg* m = nullptr;
  const std::string subject = "aether.default.events.BankAccount.acc-1";
  const std::string body = R"({"ns":"default","type":"BankAccount","actor_id":"acc-1","first_version":4,)"
                           R"("version":4,"events":[{"type":"Deposited","payload":{"amount":1000000000}}]})";
  natsMsg_Create(&m, subject.c_str(), nullptr, body.data(), static_cast<int>(body.size()));
  natsMsgHeader_Set(m, "Aether-First-Version", "4");
  natsMsgHeader_Set(m, "Aether-Version", "4");
  natsConnection_PublishMsg(client->nc(), m);
  natsMsg_Destroy(m);
  natsConnection_Flush(client->nc());
  EXPECT_TRUE(client->wait_error(violation("Publish", subject))) << client->errors();
  for (const std::string& js : {std::string("$JS.API.STREAM.PURGE.AETHER_default"),
                                std::string("$JS.API.STREAM.MSG.DELETE.AETHER_default")}) {
    EXPECT_NE(request(*client, js, R"({"seq":1})", 300).status, NATS_OK) << js;
    EXPECT_TRUE(client->wait_error(violation("Publish", js))) << client->errors();
  }
  natsSubscription* snoop = nullptr;
  natsConnection_SubscribeSync(&snoop, client->nc(), "_INBOX.>");
  natsConnection_Flush(client->nc());
  EXPECT_TRUE(client->wait_error(violation("Subscription", "_INBOX.>"))) << "the host's replies";
  natsSubscription_Destroy(snoop);
  Reply read = request(*client, "$JS.API.DIRECT.GET.AETHER_default." + subject, "");
  ASSERT_EQ(read.status, NATS_OK) << "reading history is allowed";
  EXPECT_EQ(read.body.value("version", 0u), 3u);

  // After a restart the account is rebuilt from the stream: 105, not 10^9.
  ASSERT_EQ(host_->stop(), 0) << host_->log();
  ASSERT_TRUE(host_->start()) << host_->log();
  httplib::Client again("127.0.0.1", host_->port());
  auto state = again.Get("/v1/default/actors/BankAccount/acc-1");
  ASSERT_TRUE(state && state->status == 200) << (state ? state->body : "no reply");
  const json s = json::parse(state->body);
  EXPECT_EQ(s["version"], 3);
  EXPECT_EQ(s["state"]["balance"], 105);
}

}  // namespace
}  // namespace aether
