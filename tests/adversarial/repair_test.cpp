// A record that does not decode in an actor's stored history makes the actor
// answer 500 `corruption` on every command; `aether repair TYPE ID
// --truncate-after V --yes` removes what follows version V and the actor
// serves again with its state at V. Without --yes the CLI only says what it
// would remove. Against a real host, on JetStream (a real nats-server, the
// record published by a raw client) and on sqlite (a row written with the
// sqlite3 API while the host is stopped).
#include <gtest/gtest.h>
#include <httplib.h>
#include <nats/nats.h>
#include <sqlite3.h>

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
using test::NatsServer;

struct Answer {
  int status = 0;
  json body;
};

class RepairTest : public testing::Test {
 protected:
  void start_host(const std::string& config, std::map<std::string, std::string> env) {
    env["AETHER_LISTEN"] = "127.0.0.1:0";
    env["AETHER_PLUGIN_DIR"] = AETHER_PLUGIN_DIR;
    env["AETHER_NODE_ID"] = "node-1";
    host_ = std::make_unique<HostProcess>(
        std::vector<std::string>{"--config", std::string(AETHER_SOURCE_DIR) + "/config/" + config}, env,
        dir_.file("host.log"));
    ASSERT_TRUE(host_->start()) << host_->log();
  }

  Answer send(const std::string& command, const std::string& payload) {
    httplib::Client http("127.0.0.1", host_->port());
    auto r = http.Post("/v1/default/actors/BankAccount/acc-1/commands",
                       R"({"command":")" + command + R"(","payload":)" + payload + "}", "application/json");
    if (!r) return {};
    return {r->status, json::parse(r->body, nullptr, false)};
  }

  void open_and_deposit() {
    ASSERT_EQ(send("Open", R"({"owner":"ann"})").status, 200);
    ASSERT_EQ(send("Deposit", R"({"amount":100})").status, 200);
    ASSERT_EQ(send("Deposit", R"({"amount":20})").status, 200);
  }

  void expect_corrupt() {
    const Answer a = send("Deposit", R"({"amount":1})");
    EXPECT_EQ(a.status, 500) << a.body.dump();
    EXPECT_EQ(a.body["error"].value("code", ""), "corruption") << a.body.dump();
  }

  test::ProcessResult repair(const std::string& after, bool yes) {
    std::vector<std::string> argv = {test::cli_binary(), "--url", host_->url(), "repair", "BankAccount", "acc-1",
                                     "--truncate-after", after};
    if (yes) argv.push_back("--yes");
    return test::run_process(argv);
  }

  // Refused without --yes (saying what would go), done with it; then the
  // actor serves again from version 3 with balance 120.
  void repair_and_check(uint64_t records) {
    const auto dry = repair("3", false);
    EXPECT_EQ(dry.exit_code, 64) << dry.out << dry.err;
    EXPECT_NE(dry.out.find("would remove " + std::to_string(records) + " stored records of BankAccount/acc-1 "
                           "after version 3"), std::string::npos) << dry.out;
    EXPECT_NE(dry.err.find("--yes"), std::string::npos) << dry.err;
    expect_corrupt();  // nothing was removed

    const auto bad = repair("9", true);
    EXPECT_EQ(bad.exit_code, 6) << "a version the history does not reach: 400\n" << bad.out << bad.err;

    const auto done = repair("3", true);
    ASSERT_EQ(done.exit_code, 0) << done.out << done.err << host_->log();
    EXPECT_NE(done.out.find("now loads at version 3"), std::string::npos) << done.out;
    const Answer a = send("Deposit", R"({"amount":1})");
    ASSERT_EQ(a.status, 200) << a.body.dump();
    EXPECT_EQ(a.body["version"], 4);
    httplib::Client http("127.0.0.1", host_->port());
    auto state = http.Get("/v1/default/actors/BankAccount/acc-1");
    ASSERT_TRUE(state && state->status == 200);
    EXPECT_EQ(json::parse(state->body)["state"]["balance"], 121);
  }

  // A host on a fresh nats-server, with acc-1 at version 3 (balance 120).
  void start_on_jetstream() {
    ASSERT_TRUE(server_.running()) << server_.log();
    start_host("jetstream.yaml", {{"NATS_URL", server_.url()}});
    open_and_deposit();
  }

  // Stores a message on acc-1's subject as anyone allowed to publish there
  // would (an open server here); `version`: its version headers, or none.
  void publish_raw(const std::string& body, const char* version) {
    test::NatsClient raw(server_.url());
    ASSERT_EQ(raw.connect_status(), NATS_OK);
    jsCtx* js = nullptr;
    ASSERT_EQ(natsConnection_JetStream(&js, raw.nc(), nullptr), NATS_OK);
    natsMsg* m = nullptr;
    natsMsg_Create(&m, "aether.default.events.BankAccount.acc-1", nullptr, body.data(), static_cast<int>(body.size()));
    if (version != nullptr) {
      natsMsgHeader_Set(m, "Aether-First-Version", version);
      natsMsgHeader_Set(m, "Aether-Version", version);
    }
    EXPECT_EQ(js_PublishMsg(nullptr, js, m, nullptr, nullptr), NATS_OK);
    natsMsg_Destroy(m);
    jsCtx_Destroy(js);
  }

  test::TempDir dir_;
  NatsServer server_;
  std::unique_ptr<HostProcess> host_;
};

TEST_F(RepairTest, JetStreamRecordThatDoesNotDecodeIsRemovedByRepair) {
  start_on_jetstream();
  publish_raw("\x01 not a commit", nullptr);
  expect_corrupt();
  expect_corrupt();  // and stays so
  repair_and_check(1);
}

// A forged commit that decodes (where the server lets anyone publish, see
// config/nats-tenants.conf for the permissions that prevent it) becomes
// state after a restart; repair removes it.
TEST_F(RepairTest, JetStreamForgedCommitIsRemovedByRepair) {
  start_on_jetstream();
  publish_raw(R"({"ns":"default","type":"BankAccount","actor_id":"acc-1","first_version":4,)"
              R"("version":4,"events":[{"type":"Deposited","payload":{"amount":1000000000}}]})",
              "4");
  ASSERT_EQ(host_->stop(), 0);
  ASSERT_TRUE(host_->start()) << host_->log();
  auto balance = [&] {
    httplib::Client http("127.0.0.1", host_->port());
    auto r = http.Get("/v1/default/actors/BankAccount/acc-1");
    return r && r->status == 200 ? json::parse(r->body)["state"].value("balance", int64_t{-1}) : int64_t{-1};
  };
  EXPECT_EQ(balance(), 1000000120) << "an open server lets the forgery in";
  const auto done = repair("3", true);
  ASSERT_EQ(done.exit_code, 0) << done.out << done.err;
  EXPECT_NE(done.out.find("removed 1 stored records of BankAccount/acc-1 after version 3 (up to version 4)"),
            std::string::npos) << done.out;
  EXPECT_EQ(balance(), 120);
}

TEST_F(RepairTest, SqliteRowThatDoesNotDecodeIsRemovedByRepair) {
  const std::string data = dir_.file("data");
  start_host("aether.yaml", {{"AETHER_DATA", data}});
  open_and_deposit();
  ASSERT_EQ(host_->stop(), 0) << host_->log();

  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open((data + "/aether.db").c_str(), &db), SQLITE_OK);
  char* err = nullptr;
  EXPECT_EQ(sqlite3_exec(db,
                         "INSERT INTO events(ns,type,id,version,event_type,payload,ts) "
                         "VALUES('default','BankAccount','acc-1',4,'',X'00ff',0)",
                         nullptr, nullptr, &err),
            SQLITE_OK)
      << (err != nullptr ? err : "");
  sqlite3_free(err);
  sqlite3_close(db);

  ASSERT_TRUE(host_->start()) << host_->log();
  expect_corrupt();
  repair_and_check(1);
}

// The repair route refuses what is not a repair request, before touching
// anything: 400 naming the problem, 404 for a type no plugin has.
TEST_F(RepairTest, BadRepairRequestsAreRefused) {
  start_host("aether.yaml", {{"AETHER_DATA", dir_.file("data")}});
  open_and_deposit();
  httplib::Client http("127.0.0.1", host_->port());
  const std::string path = "/v1/default/actors/BankAccount/acc-1/repair";
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"not json", "JSON object"},
      {"{}", "truncate_after"},
      {R"({"truncate_after":-1})", "truncate_after"},
      {R"({"truncate_after":"3"})", "truncate_after"},
      {R"({"truncate_after":9223372036854775808})", "truncate_after"},
      {R"({"truncate_after":3,"dry_run":"yes"})", "dry_run"},
      {R"({"truncate_after":3,"force":true})", "unknown field 'force'"},
      {R"({"truncate_after":3,"pad":")" + std::string(5000, 'x') + R"("})", "at most 4096 bytes"},
  };
  for (const auto& [body, says] : bad) {
    auto r = http.Post(path, body, "application/json");
    ASSERT_TRUE(r) << body;
    EXPECT_EQ(r->status, 400) << body.substr(0, 80) << " -> " << r->body;
    EXPECT_NE(r->body.find(says), std::string::npos) << r->body;
  }
  auto unknown = http.Post("/v1/default/actors/NoSuchType/x/repair", R"({"truncate_after":1})", "application/json");
  ASSERT_TRUE(unknown);
  EXPECT_EQ(unknown->status, 404) << unknown->body;
  const Answer still = send("Deposit", R"({"amount":1})");
  EXPECT_EQ(still.status, 200);
  EXPECT_EQ(still.body["version"], 4) << "nothing was removed";
}

}  // namespace
}  // namespace aether
