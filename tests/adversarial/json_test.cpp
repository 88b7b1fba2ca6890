// Hostile JSON over HTTP against a real aether-host (sqlite store): payloads
// nested 70,000 deep, bodies that are not UTF-8, requests naming made-up
// actor types by the thousand, huge versions, amounts that would overflow.
// The host answers each with a clear 4xx and goes on serving.
#include <gtest/gtest.h>
#include <httplib.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "support/host_process.hpp"
#include "support/temp_dir.hpp"

namespace aether {
namespace {

using json = nlohmann::json;
using test::HostProcess;

// `depth` levels of arrays.
std::string nested(size_t depth) { return std::string(depth, '[') + std::string(depth, ']'); }

// A Deposit whose payload nests `depth` levels (the payload object is level
// 1, so the body nests depth + 1).
std::string deep_deposit(size_t depth) {
  return R"({"command":"Deposit","payload":{"amount":1,"x":)" + nested(depth - 1) + "}}";
}

class JsonAdversarialTest : public testing::Test {
 protected:
  void start(const std::string& extra_api = "") {
    const std::string config = dir_.file("aether.yaml");
    std::ofstream(config) << "node: {id: json-1}\n"
                          << "store: {backend: sqlite, sqlite: {path: " << dir_.file("aether.db") << "}}\n"
                          << "plugins: {dir: " << AETHER_PLUGIN_DIR << ", list: [bank, counter]}\n"
                          << "api:\n  http: {listen: \"127.0.0.1:0\"}\n"
                          << extra_api;
    host_ = std::make_unique<HostProcess>(std::vector<std::string>{"--config", config},
                                          std::map<std::string, std::string>{}, dir_.file("host.log"));
    ASSERT_TRUE(host_->start()) << "host did not start:\n" << host_->log();
    client_ = std::make_unique<httplib::Client>("127.0.0.1", host_->port());
    client_->set_read_timeout(30);
  }

  httplib::Result post(const std::string& path, const std::string& body, httplib::Headers headers = {}) {
    return client_->Post(path, headers, body, "application/json");
  }

  httplib::Result command(const std::string& type, const std::string& id, const std::string& body) {
    return post("/v1/default/actors/" + type + "/" + id + "/commands", body);
  }

  // Asserts a 400 invalid_argument whose message contains `text`.
  static void expect_invalid(const httplib::Result& r, const std::string& text) {
    ASSERT_TRUE(r) << "no reply: " << httplib::to_string(r.error());
    EXPECT_EQ(r->status, 400) << r->body;
    const json j = json::parse(r->body, nullptr, false);
    ASSERT_TRUE(j.is_object()) << r->body;
    EXPECT_EQ(j["error"]["code"], "invalid_argument") << r->body;
    EXPECT_NE(j["error"]["message"].get<std::string>().find(text), std::string::npos) << r->body;
  }

  // The host still runs commands.
  void expect_serving() {
    auto h = client_->Get("/healthz");
    ASSERT_TRUE(h) << "host gone:\n" << host_->log();
    EXPECT_EQ(h->status, 200);
    auto r = command("Counter", "alive", R"({"command":"Increment"})");
    ASSERT_TRUE(r) << "host gone:\n" << host_->log();
    EXPECT_EQ(r->status, 200) << r->body;
  }

  void open_account(const std::string& id) {
    auto r = command("BankAccount", id, R"({"command":"Open","payload":{"owner":"ann"}})");
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 200) << r->body;
  }

  test::TempDir dir_;
  std::unique_ptr<HostProcess> host_;
  std::unique_ptr<httplib::Client> client_;
};

TEST_F(JsonAdversarialTest, PayloadNested70000DeepIsRefusedNamingTheLimit) {
  start();
  open_account("deep");
  for (int i = 0; i < 3; ++i) {
    expect_invalid(command("BankAccount", "deep", deep_deposit(70000)),
                   "request body nests deeper than 64 levels (api.max_json_depth)");
  }
  // Deep outside the payload too, and as a reload body.
  expect_invalid(command("BankAccount", "deep", nested(70000)), "nests deeper than 64 levels");
  expect_invalid(post("/v1/plugins/bank/reload", R"({"file":)" + nested(70000) + "}"),
                 "request body nests deeper than 64 levels");
  expect_serving();
}

TEST_F(JsonAdversarialTest, DepthLimitIsExactAndConfigurable) {
  start();
  open_account("edge");
  expect_invalid(command("BankAccount", "edge", deep_deposit(65)), "nests deeper than 64 levels");
  auto r = command("BankAccount", "edge", deep_deposit(60));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200) << r->body;
  // The body at exactly the limit passes; one level more does not.
  r = command("BankAccount", "edge", deep_deposit(63));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200) << r->body;
  expect_invalid(command("BankAccount", "edge", deep_deposit(64)), "nests deeper than 64 levels");
  host_->stop();

  start("  max_json_depth: 8\n");
  expect_invalid(command("BankAccount", "edge", deep_deposit(8)), "nests deeper than 8 levels (api.max_json_depth)");
  r = command("BankAccount", "edge", deep_deposit(7));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200) << r->body;
}

TEST_F(JsonAdversarialTest, InvalidUtf8IsA400NotA500) {
  start();
  open_account("utf8");
  expect_invalid(command("BankAccount", "utf8", "{\"command\":\"Deposit\",\"payload\":{\"amount\":\"\xff\"}}"),
                 "request body is not valid UTF-8 (byte 42)");
  expect_invalid(command("BankAccount", "utf8", "{\"command\":\"Dep\xc3\x28osit\"}"), "not valid UTF-8");
  expect_invalid(command("BankAccount", "utf8", "{\"command\":\"\xed\xa0\x80\"}"), "not valid UTF-8");
  expect_invalid(post("/v1/default/actors/BankAccount/utf8/commands", R"({"command":"Deposit","payload":{"amount":1}})",
                      {{"Idempotency-Key", "k\xff\xfe"}}),
                 "Idempotency-Key is not valid UTF-8");
  expect_invalid(post("/v1/plugins/bank/reload", "{\"file\":\"\xff\"}"), "not valid UTF-8");
  // An escaped lone surrogate is malformed JSON, said as such.
  expect_invalid(command("BankAccount", "utf8", R"({"command":"\udc00"})"), "malformed JSON");
  expect_serving();
}

TEST_F(JsonAdversarialTest, UnknownTypesCountUnderOneBoundedLabel) {
  start();
  ASSERT_EQ(command("Counter", "known", R"({"command":"Increment"})")->status, 200);
  constexpr int kRequests = 20000;
  for (int i = 0; i < kRequests; ++i) {
    auto r = command("NoSuchType" + std::to_string(i), "x", R"({"command":"Go"})");
    ASSERT_TRUE(r) << "request " << i;
    ASSERT_EQ(r->status, 404) << r->body;
  }
  auto m = client_->Get("/metrics");
  ASSERT_TRUE(m);
  EXPECT_LT(m->body.size(), 100u * 1024) << "metrics grew with made-up type names";
  EXPECT_EQ(m->body.find("NoSuchType"), std::string::npos);
  EXPECT_NE(m->body.find("aether_commands_total{outcome=\"not_found\",type=\"_unknown\"} " +
                         std::to_string(kRequests)),
            std::string::npos)
      << m->body.substr(0, 4000);
  EXPECT_NE(m->body.find("type=\"Counter\""), std::string::npos);
}

TEST_F(JsonAdversarialTest, EventsFromPast2To63AreEmptyNotCorruption) {
  start();
  open_account("far");
  for (const char* from : {"9223372036854775807", "9223372036854775808", "18446744073709551615"}) {
    auto r = client_->Get(std::string("/v1/default/actors/BankAccount/far/events?from=") + from);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200) << from << ": " << r->body;
    const json j = json::parse(r->body, nullptr, false);
    EXPECT_TRUE(j["events"].is_array() && j["events"].empty()) << r->body;
  }
  auto r = client_->Get("/v1/default/actors/BankAccount/far/events?from=18446744073709551616");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400) << r->body;
  expect_serving();
}

TEST_F(JsonAdversarialTest, OverflowIsADomainRejection) {
  start();
  open_account("rich");
  auto r = command("BankAccount", "rich", R"({"command":"Deposit","payload":{"amount":9223372036854775807}})");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  r = command("BankAccount", "rich", R"({"command":"Deposit","payload":{"amount":1}})");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 422) << r->body;
  EXPECT_EQ(json::parse(r->body)["error"]["code"], "balance_overflow") << r->body;
  auto s = client_->Get("/v1/default/actors/BankAccount/rich");
  ASSERT_TRUE(s);
  EXPECT_EQ(json::parse(s->body)["state"]["balance"], INT64_MAX) << s->body;

  const std::string max_by = R"({"command":"Increment","payload":{"by":9223372036854775807}})";
  ASSERT_EQ(command("Counter", "big", max_by)->status, 200);
  r = command("Counter", "big", max_by);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 422) << r->body;
  EXPECT_EQ(json::parse(r->body)["error"]["code"], "would_overflow") << r->body;
  s = client_->Get("/v1/default/actors/Counter/big");
  ASSERT_TRUE(s);
  EXPECT_EQ(json::parse(s->body)["state"]["value"], INT64_MAX) << s->body;
}

TEST_F(JsonAdversarialTest, DepthLimitOutOfRangeIsAConfigError) {
  const std::string file = dir_.file("bad.yaml");
  std::ofstream(file) << "plugins: {dir: " << AETHER_PLUGIN_DIR << ", list: [bank]}\n"
                      << "api:\n  max_json_depth: 5000\n";
  const auto check = test::run_process({test::host_binary(), "--check-config", file});
  EXPECT_EQ(check.exit_code, 1);
  EXPECT_NE(check.err.find(file + ":3: api.max_json_depth: must be between 2 and 1000, got 5000"), std::string::npos)
      << check.err;
}

}  // namespace
}  // namespace aether
