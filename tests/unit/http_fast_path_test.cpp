// The parts of the HTTP command path written for speed give the answers of
// what they replaced: the command route without a regex, the success reply
// without a JSON tree, the command metrics from cached references.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <regex>
#include <string>
#include <vector>

#include "api/command_api.hpp"
#include "api/http_routes.hpp"
#include "api/metrics.hpp"

namespace aether {
namespace {

using json = nlohmann::json;

TEST(HttpFastPath, CommandRouteMatchesAsTheRegexDoes) {
  const std::regex pattern(R"(/v1/([^/]+)/actors/([^/]+)/(.*)/commands)");
  const std::vector<std::string> paths = {
      "/v1/default/actors/Counter/c1/commands",
      "/v1/ns/actors/T/a/b/c/commands",
      "/v1/ns/actors/T//commands",
      "/v1/ns/actors/T/commands",
      "/v1/ns/actors/T/x/commands/commands",
      "/v1/ns/actors/T/x/commandsx",
      "/v1/ns/actors/T/x/command",
      "/v1//actors/T/x/commands",
      "/v1/ns/actors//x/commands",
      "/v1/ns/actor/T/x/commands",
      "/v1/a/b/actors/T/x/commands",
      "/v2/ns/actors/T/x/commands",
      "v1/ns/actors/T/x/commands",
      "/v1/ns/actors/T/x\n/commands",
      "/v1/ns/actors/T/x\r/commands",
      "/v1/n\ns/actors/T\r/x/commands",
      "/v1/ns/actors/T/\xc3\xa9/commands",
      "/v1/ns/actors/T/x/commands?x",
      "",
      "/",
      "/v1/",
      "/v1/ns/actors/",
      "/v1/ns/actors/T",
      "/v1/ns/actors/T/",
      "/v1/ns/actors/T//",
      "/v1/ns/actors/T/x/events",
  };
  for (const auto& path : paths) {
    std::smatch sm;
    const bool want = std::regex_match(path, sm, pattern);
    std::vector<std::string> got;
    ASSERT_EQ(match_command_path(path, got), want) << path;
    if (want) {
      EXPECT_EQ(got, std::vector<std::string>(sm.begin(), sm.end())) << path;
    }
  }
}

CommandResult two_events() {
  CommandResult r;
  r.version = 7;
  StoredEvent a;
  a.version = 6;
  a.type = "Deposited";
  a.payload = R"({"amount":5,"memo":"caf\u00e9 \"x\""})";
  StoredEvent b;
  b.version = 7;
  b.type = "Noted";
  b.payload = "not json";
  r.events = {a, b};
  return r;
}

TEST(HttpFastPath, SuccessReplyIsTheJsonOfTheResult) {
  const ApiReply reply = command_reply("default", "BankAccount", "a/1", two_events());
  ASSERT_EQ(reply.status, 200);
  const json got = json::parse(reply.body);
  const json want = {
      {"ns", "default"},
      {"type", "BankAccount"},
      {"id", "a/1"},
      {"version", 7},
      {"duplicate", false},
      {"events",
       {{{"id", "default.BankAccount.a/1.6"},
         {"version", 6},
         {"type", "Deposited"},
         {"payload", {{"amount", 5}, {"memo", "caf\xc3\xa9 \"x\""}}}},
        {{"id", "default.BankAccount.a/1.7"}, {"version", 7}, {"type", "Noted"}, {"payload", "not json"}}}}};
  EXPECT_EQ(got, want) << reply.body;
}

TEST(HttpFastPath, SuccessReplyEscapesNamesAndReplacesBrokenUtf8) {
  CommandResult r;
  r.version = 1;
  r.duplicate = true;
  StoredEvent e;
  e.version = 1;
  e.type = "Ty\"pe\n";
  e.payload = "\xff{";  // neither JSON nor UTF-8: a string, the byte replaced
  r.events = {e};
  const ApiReply reply = command_reply("ns", "T\\", "id\x01", r);
  ASSERT_EQ(reply.status, 200);
  const json got = json::parse(reply.body);
  EXPECT_EQ(got["type"], "T\\");
  EXPECT_EQ(got["id"], "id\x01");
  EXPECT_EQ(got["duplicate"], true);
  EXPECT_EQ(got["events"][0]["type"], "Ty\"pe\n");
  EXPECT_EQ(got["events"][0]["payload"], "\xef\xbf\xbd{");
}

TEST(HttpFastPath, CommandMetricsCountByTypeAndOutcome) {
  Metrics m;
  m.set_known_types([](std::string_view t) { return t == "Counter"; });
  for (int i = 0; i < 3; ++i) m.on_command("Counter", "ok", 0.001);
  m.on_command("Counter", "rejected", 0.001);
  m.on_command("Made-up", "ok", 0.001);
  m.on_command("Other", "free text", 0.001);
  m.on_events_appended("Counter", 4);
  m.on_events_appended("Made-up", 2);
  const std::string text = m.render();
  auto has = [&](const std::string& line) {
    EXPECT_NE(text.find(line), std::string::npos) << line << "\n" << text;
  };
  has(R"(aether_commands_total{outcome="ok",type="Counter"} 3)");
  has(R"(aether_commands_total{outcome="rejected",type="Counter"} 1)");
  has(R"(aether_commands_total{outcome="ok",type="_unknown"} 1)");
  has(R"(aether_commands_total{outcome="other",type="_unknown"} 1)");
  has(R"(aether_command_duration_seconds_count{type="Counter"} 4)");
  has(R"(aether_command_duration_seconds_count{type="_unknown"} 2)");
  has(R"(aether_events_appended_total{type="Counter"} 4)");
  has(R"(aether_events_appended_total{type="_unknown"} 2)");
  EXPECT_EQ(text.find("Made-up"), std::string::npos);
}

}  // namespace
}  // namespace aether
