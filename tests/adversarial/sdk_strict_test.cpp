// Values a plugin would have to change, sent over HTTP to a real aether-host
// serving tests/plugins/strict_values.cpp: every one is answered 400
// invalid_argument with the SDK's message naming the field, the expected type
// and the value, and nothing is stored.
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

class SdkStrictTest : public testing::Test {
 protected:
  void SetUp() override {
    const std::string config = dir_.file("aether.yaml");
    std::ofstream(config) << "node: {id: strict-1}\n"
                          << "store: {backend: memory}\n"
                          << "plugins: {dir: " << AETHER_TEST_PLUGIN_DIR << ", list: [strict]}\n"
                          << "api:\n  http: {listen: \"127.0.0.1:0\"}\n";
    host_ = std::make_unique<HostProcess>(std::vector<std::string>{"--config", config},
                                          std::map<std::string, std::string>{}, dir_.file("host.log"));
    ASSERT_TRUE(host_->start()) << "host did not start:\n" << host_->log();
    client_ = std::make_unique<httplib::Client>("127.0.0.1", host_->port());
    client_->set_read_timeout(30);
  }

  httplib::Result command(const std::string& id, const std::string& name, const std::string& payload) {
    return client_->Post("/v1/default/actors/Strict/" + id + "/commands",
                         R"({"command":")" + name + R"(","payload":)" + payload + "}",
                         "application/json");
  }

  // Asserts 400 invalid_argument with exactly `message`.
  static void expect_invalid(const httplib::Result& r, const std::string& message) {
    ASSERT_TRUE(r) << "no reply: " << httplib::to_string(r.error());
    EXPECT_EQ(r->status, 400) << r->body;
    const json j = json::parse(r->body, nullptr, false);
    ASSERT_TRUE(j.is_object()) << r->body;
    EXPECT_EQ(j["error"]["code"], "invalid_argument") << r->body;
    EXPECT_EQ(j["error"]["message"], message) << r->body;
  }

  test::TempDir dir_;
  std::unique_ptr<HostProcess> host_;
  std::unique_ptr<httplib::Client> client_;
};

TEST_F(SdkStrictTest, RefusedValuesAre400WithTheSdkMessage) {
  const std::string i64 = "field 'v': expected an integer between -9223372036854775808 and "
                          "9223372036854775807, got ";
  expect_invalid(command("a", "SetI64", R"({"v":2.5})"), i64 + "2.5");
  expect_invalid(command("a", "SetI64", R"({"v":1e300})"), i64 + "1e+300");
  expect_invalid(command("a", "SetI64", R"({"v":18446744073709551615})"), i64 + "18446744073709551615");
  expect_invalid(command("a", "SetI64", R"({"v":"7"})"), i64 + "\"7\"");
  expect_invalid(command("a", "SetI64", R"({"v":true})"), i64 + "true");
  expect_invalid(command("a", "SetI64", R"({"v":null})"), i64 + "null");
  expect_invalid(command("a", "SetU64", R"({"v":-1})"),
                 "field 'v': expected an unsigned integer between 0 and 18446744073709551615, got -1");
  expect_invalid(command("a", "SetU32", R"({"v":4294967296})"),
                 "field 'v': expected an unsigned integer between 0 and 4294967295, got 4294967296");
  expect_invalid(command("a", "SetText", R"({"v":7})"), "field 'v': expected a string, got 7");
  expect_invalid(command("a", "SetFlag", R"({"v":1})"), "field 'v': expected a boolean, got 1");
  expect_invalid(command("a", "SetReal", R"({"v":null})"), "field 'v': expected a number, got null");
  expect_invalid(command("a", "Deposit", R"({"amount":2.5,"units":1,"memo":"m"})"),
                 "field 'amount': expected an integer between -9223372036854775808 and "
                 "9223372036854775807, got 2.5");
  expect_invalid(command("a", "Deposit", R"({"amount":5,"units":-1,"memo":"m"})"),
                 "field 'units': expected an unsigned integer between 0 and 18446744073709551615, got -1");

  // Nothing was stored; exact values go through.
  auto r = command("a", "SetI64", R"({"v":-9223372036854775808})");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(json::parse(r->body)["version"], 1) << r->body;
  r = command("a", "Deposit", R"({"amount":12,"units":3,"memo":"m"})");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  auto s = client_->Get("/v1/default/actors/Strict/a");
  ASSERT_TRUE(s);
  const json state = json::parse(s->body, nullptr, false);
  EXPECT_EQ(state["state"]["i64"], INT64_MIN) << s->body;
  EXPECT_EQ(state["state"]["deposited"], 12) << s->body;
}

}  // namespace
}  // namespace aether
