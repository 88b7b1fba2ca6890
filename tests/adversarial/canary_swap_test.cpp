// Per-namespace plugin versions (canaries) against a real aether-host, over
// HTTP and the CLI: a canary from the configuration, GET /v1/plugins and
// `aether plugins` showing which version serves which namespace, promote,
// a rollback of one namespace, and requests and configurations that name
// what is not there, refused with the reason.
#include <gtest/gtest.h>
#include <httplib.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "support/host_process.hpp"
#include "support/plugin_files.hpp"
#include "support/temp_dir.hpp"

namespace aether {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using test::HostProcess;
using test::run_process;
using test::test_plugin;

std::string config_text(const test::TempDir& dir, const fs::path& plugins, const std::string& canaries) {
  return "node:\n  namespaces: [default, staging]\n"
         "store:\n  backend: sqlite\n  sqlite:\n    path: " + dir.file("aether.db") +
         "\nplugins:\n  dir: " + plugins.string() + "\n  list: [tally]\n"
         "  allowed_dirs: [" + AETHER_TEST_PLUGIN_DIR + "]\n" + canaries +
         "api:\n  http:\n    listen: 127.0.0.1:0\n";
}

class CanarySwap : public testing::Test {
 protected:
  void SetUp() override {
    fs::create_directories(plugins_);
    fs::copy_file(test_plugin("tally_v1"), plugins_ / "tally.so");
    const std::string config = dir_.file("host.yaml");
    std::ofstream(config) << config_text(dir_, plugins_, "  namespaces:\n    staging: [" + test_plugin("tally_v2_exact") + "]\n");
    host_ = std::make_unique<HostProcess>(std::vector<std::string>{"--config", config},
                                          std::map<std::string, std::string>{}, dir_.file("host.log"));
    ASSERT_TRUE(host_->start()) << host_->log();
    client_ = std::make_unique<httplib::Client>("127.0.0.1", host_->port());
    client_->set_read_timeout(30);
  }

  void add(const std::string& ns, const std::string& id, int n) {
    auto r = client_->Post("/v1/" + ns + "/actors/Tally/" + id + "/commands",
                           json{{"command", "Add"}, {"payload", {{"n", n}}}}.dump(), "application/json");
    ASSERT_TRUE(r) << host_->log();
    ASSERT_EQ(r->status, 200) << r->body;
  }

  json state(const std::string& ns, const std::string& id) {
    auto r = client_->Get("/v1/" + ns + "/actors/Tally/" + id);
    if (!r) return nullptr;
    const json j = json::parse(r->body, nullptr, false);
    return j.is_object() && j.contains("state") ? j["state"] : j;
  }

  std::pair<int, json> post(const std::string& path, const std::string& body) {
    auto r = client_->Post(path, body, "application/json");
    if (!r) return {-1, json::object()};
    return {r->status, json::parse(r->body, nullptr, false)};
  }

  // namespace -> version, from GET /v1/plugins.
  std::map<std::string, std::string> versions() {
    std::map<std::string, std::string> out;
    auto r = client_->Get("/v1/plugins");
    if (!r) return out;
    const json all = json::parse(r->body, nullptr, false);
    if (!all.is_object()) return out;
    for (const auto& v : all["plugins"][0]["versions"]) {
      for (const auto& ns : v["namespaces"]) out[ns.get<std::string>()] = v["version"].get<std::string>();
    }
    return out;
  }

  test::ProcessResult cli(std::vector<std::string> args) {
    std::vector<std::string> argv = {test::cli_binary(), "--url", host_->url()};
    argv.insert(argv.end(), args.begin(), args.end());
    return run_process(argv);
  }

  using Versions = std::map<std::string, std::string>;
  test::TempDir dir_;
  fs::path plugins_ = dir_.path() / "plugins";
  std::unique_ptr<HostProcess> host_;
  std::unique_ptr<httplib::Client> client_;
};

TEST_F(CanarySwap, ConfiguredCanaryIsPromotedAndOneNamespaceRolledBackOverTheCli) {
  EXPECT_EQ(versions(), (Versions{{"default", "1.0.0"}, {"staging", "2.1.0-exact"}}));
  add("default", "a", 5);
  add("staging", "a", 7);
  EXPECT_EQ(state("default", "a"), json::parse(R"({"count":5})"));
  EXPECT_EQ(state("staging", "a"), json::parse(R"({"total":7})"));

  auto listed = cli({"plugins"});
  EXPECT_EQ(listed.exit_code, 0) << listed.err;
  EXPECT_NE(listed.out.find("main    1.0.0"), std::string::npos) << listed.out;
  EXPECT_NE(listed.out.find("namespaces: default"), std::string::npos) << listed.out;
  EXPECT_NE(listed.out.find("namespaces: staging"), std::string::npos) << listed.out;

  auto promoted = cli({"promote", "tally", "--from", "staging"});
  EXPECT_EQ(promoted.exit_code, 0) << promoted.err;
  EXPECT_NE(promoted.out.find("reloaded tally (promoted from staging): 1.0.0 -> 2.1.0-exact"), std::string::npos)
      << promoted.out;
  EXPECT_EQ(versions(), (Versions{{"default", "2.1.0-exact"}, {"staging", "2.1.0-exact"}}));
  EXPECT_EQ(state("default", "a"), json::parse(R"({"total":5})"));

  auto back = cli({"rollback", "tally", "--namespace", "staging"});
  EXPECT_EQ(back.exit_code, 0) << back.err;
  EXPECT_NE(back.out.find("reloaded tally (namespaces staging): 2.1.0-exact -> 1.0.0"), std::string::npos) << back.out;
  EXPECT_EQ(versions(), (Versions{{"default", "2.1.0-exact"}, {"staging", "1.0.0"}}));
  EXPECT_EQ(state("staging", "a"), json::parse(R"({"count":7})"));
  EXPECT_EQ(state("default", "a"), json::parse(R"({"total":5})"));

  auto canary = cli({"reload", "tally", "--namespace", "staging", "--file", test_plugin("tally_v1_1")});
  EXPECT_EQ(canary.exit_code, 0) << canary.err;
  EXPECT_EQ(versions(), (Versions{{"default", "2.1.0-exact"}, {"staging", "1.1.0"}}));
  add("staging", "a", 1);
  add("default", "a", 1);
}

TEST_F(CanarySwap, RequestsNamingWhatIsNotThereAreRefusedWithTheReason) {
  std::string many = "[";
  for (int i = 0; i < 257; ++i) many += std::string(i ? "," : "") + "\"n" + std::to_string(i) + "\"";
  many += "]";
  const std::vector<std::pair<std::string, std::string>> reloads = {
      {R"({"namespaces":"staging"})", "field 'namespaces' must be an array"},
      {R"({"namespaces":[]})", "field 'namespaces' must be an array"},
      {R"({"namespaces":[7]})", "must hold strings only"},
      {R"({"namespaces":["a b"]})", "invalid namespace"},
      {R"({"namespaces":["staging\u0000x"]})", "invalid namespace"},
      {"{\"namespaces\":" + many + "}", "1..256"},
      {R"({"namespaces":["prod"],"file":"x.so"})", "namespace prod is not served"},
      {R"({"namespaces":["staging","default"],"to":"previous"})", "run different versions"},
  };
  for (const auto& [body, why] : reloads) {
    auto [status, reply] = post("/v1/plugins/tally/reload", body);
    EXPECT_EQ(status, 400) << body << " -> " << reply.dump();
    EXPECT_NE(reply.dump().find(why), std::string::npos) << body << " -> " << reply.dump();
  }
  const std::vector<std::pair<std::string, std::string>> promotes = {
      {"{}", "like {\\\"from\\\":\\\"staging\\\"}"},
      {R"({"from":5})", "like {\\\"from\\\":\\\"staging\\\"}"},
      {R"({"from":"../x"})", "invalid namespace"},
      {R"({"from":"default"})", "nothing to promote"},
      {R"({"from":"prod"})", "namespace prod is not served"},
      {R"({"from":"staging","accept":"everything"})", "field 'accept'"},
      {"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]",
       "nest"},
  };
  for (const auto& [body, why] : promotes) {
    auto [status, reply] = post("/v1/plugins/tally/promote", body);
    EXPECT_EQ(status, 400) << body << " -> " << reply.dump();
    EXPECT_NE(reply.dump().find(why), std::string::npos) << body << " -> " << reply.dump();
  }
  auto [unknown, reply] = post("/v1/plugins/nosuch/promote", R"({"from":"staging"})");
  EXPECT_EQ(unknown, 404) << reply.dump();
  EXPECT_EQ(versions(), (Versions{{"default", "1.0.0"}, {"staging", "2.1.0-exact"}}));
  add("staging", "b", 1);
}

struct BadConfig {
  std::string canaries;
  std::string message;
};

TEST(CanaryConfig, BadNamespaceVersionsNameTheLine) {
  test::TempDir dir;
  const fs::path plugins = dir.path() / "plugins";
  fs::create_directories(plugins);
  fs::copy_file(test_plugin("tally_v1"), plugins / "tally.so");
  fs::copy_file(test_plugin("tally_v1"), dir.path() / "outside.so");
  const std::vector<BadConfig> cases = {
      {"  namespaces:\n    prod: [tally]\n", ":12: plugins.namespaces.prod: namespace 'prod' is not one of node.namespaces"},
      {"  namespaces:\n    staging: [" + dir.file("outside.so") + "]\n", ":12: plugins.namespaces.staging[0]: plugin file"},
      {"  namespaces:\n    staging: [nosuch]\n", ":12: plugins.namespaces.staging[0]: plugin file"},
      {"  namespaces: [staging]\n", ":11: plugins.namespaces: expected a mapping"},
      {"  namespaces:\n    staging: tally\n", ":12: plugins.namespaces.staging: expected a list"},
  };
  for (const auto& c : cases) {
    const std::string file = dir.file("bad.yaml");
    std::ofstream(file) << config_text(dir, plugins, c.canaries);
    auto check = run_process({test::host_binary(), "--check-config", file});
    EXPECT_EQ(check.exit_code, 1) << c.canaries;
    EXPECT_NE(check.err.find(file + c.message), std::string::npos) << "wanted " << c.message << " in: " << check.err;
  }
  const std::string file = dir.file("bad.yaml");
  std::ofstream(file) << config_text(dir, plugins, "  namespaces:\n    staging: [" + dir.file("outside.so") + "]\n");
  auto check = run_process({test::host_binary(), "--check-config", file});
  EXPECT_NE(check.err.find("is outside plugins.dir and plugins.allowed_dirs"), std::string::npos) << check.err;
}

}  // namespace
}  // namespace aether
