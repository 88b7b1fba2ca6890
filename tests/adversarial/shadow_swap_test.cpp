// The shadow check of a reload against a real aether-host, over HTTP and the
// CLI: a subtly wrong new version (an apply that folds an event differently,
// an upgrade_state that drops a field) is refused with 422 shadow_mismatch
// and a report naming the actors and fields, the old version keeps serving;
// a dry run swaps nothing; accepted differences swap; a correct version
// passes.
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

class ShadowSwap : public testing::Test {
 protected:
  void SetUp() override {
    fs::create_directories(plugins_);
    fs::copy_file(test_plugin("tally_v1"), plugins_ / "tally.so");
    const std::string config = dir_.file("host.yaml");
    std::ofstream(config) << "store:\n  backend: sqlite\n  sqlite:\n    path: " << dir_.file("aether.db")
                          << "\nplugins:\n  dir: " << plugins_.string() << "\n  list: [tally]\n"
                          << "  allowed_dirs: [" << AETHER_TEST_PLUGIN_DIR << "]\n"
                          << "api:\n  http:\n    listen: 127.0.0.1:0\n";
    host_ = std::make_unique<HostProcess>(std::vector<std::string>{"--config", config},
                                          std::map<std::string, std::string>{}, dir_.file("host.log"));
    ASSERT_TRUE(host_->start()) << host_->log();
    client_ = std::make_unique<httplib::Client>("127.0.0.1", host_->port());
    client_->set_read_timeout(30);
    // a0..a3 get Add 10 and Add 20; a1 and a3 also Sub 5.
    for (int i = 0; i < 4; ++i) {
      send(i, "Add", 10);
      send(i, "Add", 20);
      if (i % 2 == 1) send(i, "Sub", 5);
    }
  }

  void send(int actor, const std::string& command, int n) {
    auto r = client_->Post("/v1/default/actors/Tally/a" + std::to_string(actor) + "/commands",
                           json{{"command", command}, {"payload", {{"n", n}}}}.dump(), "application/json");
    ASSERT_TRUE(r) << host_->log();
    ASSERT_EQ(r->status, 200) << r->body;
  }

  std::pair<int, json> reload(json body) {
    auto r = client_->Post("/v1/plugins/tally/reload", body.dump(), "application/json");
    if (!r) return {-1, json::object()};
    return {r->status, json::parse(r->body, nullptr, false)};
  }

  test::ProcessResult cli(std::vector<std::string> args) {
    std::vector<std::string> argv = {test::cli_binary(), "--url", host_->url(), "reload", "tally"};
    argv.insert(argv.end(), args.begin(), args.end());
    return run_process(argv);
  }

  std::string version() {
    auto r = client_->Get("/v1/plugins");
    if (!r) return "";
    const json all = json::parse(r->body, nullptr, false);
    if (!all.is_object()) return "";
    for (const auto& p : all["plugins"]) {
      if (p["name"] == "tally") return p["version"].get<std::string>();
    }
    return "";
  }

  static std::string file(const std::string& name) { return std::string(AETHER_TEST_PLUGIN_DIR) + "/" + name + ".so"; }

  test::TempDir dir_;
  fs::path plugins_ = dir_.path() / "plugins";
  std::unique_ptr<HostProcess> host_;
  std::unique_ptr<httplib::Client> client_;
};

TEST_F(ShadowSwap, AnApplyThatFoldsAnEventDifferentlyIsRefusedUntilAccepted) {
  auto dry = cli({"--file", file("tally_v1_fold"), "--dry-run"});
  EXPECT_EQ(dry.exit_code, 0) << dry.err;
  EXPECT_NE(dry.out.find("shadow check of tally 1.0.0 -> 1.2.0-fold: 4 actors checked"), std::string::npos) << dry.out;
  EXPECT_NE(dry.out.find("2 actors differ"), std::string::npos) << dry.out;
  EXPECT_NE(dry.out.find("/count: expected 25, got 35"), std::string::npos) << dry.out;
  EXPECT_NE(dry.out.find("dry run: tally 1.2.0-fold was not swapped in"), std::string::npos) << dry.out;
  EXPECT_EQ(version(), "1.0.0");

  auto [status, body] = reload({{"file", file("tally_v1_fold")}});
  ASSERT_EQ(status, 422) << body.dump();
  EXPECT_EQ(body["error"]["code"], "shadow_mismatch");
  EXPECT_NE(body["error"]["message"].get<std::string>().find("the loaded version keeps serving"), std::string::npos);
  const json& report = body["error"]["report"];
  EXPECT_EQ(report["actors_checked"], 4);
  EXPECT_EQ(report["events_replayed"], 10);
  EXPECT_EQ(report["actors_differing"], 2);
  std::set<std::string> differing;
  for (const auto& d : report["differences"]) {
    differing.insert(d["actor"].get<std::string>());
    EXPECT_EQ(d["path"], "replay");
    EXPECT_EQ(d["diff"], json::parse(R"([{"field":"/count","expected":25,"got":35}])"));
  }
  EXPECT_EQ(differing, (std::set<std::string>{"default/Tally/a1", "default/Tally/a3"}));
  EXPECT_EQ(version(), "1.0.0");
  send(1, "Sub", 5);  // the old version still serves

  auto refused = cli({"--file", file("tally_v1_fold")});
  EXPECT_EQ(refused.exit_code, 3);
  EXPECT_NE(refused.err.find("error 422 shadow_mismatch"), std::string::npos) << refused.err;
  EXPECT_NE(refused.err.find("default/Tally/a3 v3, replay path vs old:\n      /count: expected 25, got 35"),
            std::string::npos)
      << refused.err;

  auto accepted = cli({"--file", file("tally_v1_fold"), "--accept-differences"});
  EXPECT_EQ(accepted.exit_code, 0) << accepted.err;
  EXPECT_NE(accepted.out.find("differences accepted"), std::string::npos) << accepted.out;
  EXPECT_NE(accepted.out.find("reloaded tally: 1.0.0 -> 1.2.0-fold"), std::string::npos) << accepted.out;
  EXPECT_EQ(version(), "1.2.0-fold");
}

TEST_F(ShadowSwap, AnUpgradeThatDropsAFieldIsRefusedAndACorrectOnePasses) {
  auto [status, body] = reload({{"file", file("tally_v2_drops")}});
  ASSERT_EQ(status, 422) << body.dump();
  EXPECT_EQ(body["error"]["code"], "shadow_mismatch");
  const json& report = body["error"]["report"];
  EXPECT_EQ(report["actors_differing"], 4);
  ASSERT_FALSE(report["differences"].empty());
  EXPECT_EQ(report["differences"][0]["path"], "upgrade");
  EXPECT_EQ(report["differences"][0]["diff"][0]["field"], "/total");
  EXPECT_NE(report["notes"][0].get<std::string>().find("compared by upgrade path only"), std::string::npos);
  EXPECT_EQ(version(), "1.0.0");

  std::tie(status, body) = reload({{"file", file("tally_v2_exact")}});
  ASSERT_EQ(status, 200) << body.dump();
  EXPECT_EQ(body["shadow"]["passed"], true);
  EXPECT_EQ(body["shadow"]["actors_checked"], 4);
  EXPECT_EQ(body["accepted_differences"], false);
  EXPECT_EQ(version(), "2.1.0-exact");
}

TEST_F(ShadowSwap, BadReloadFieldsAreRefused) {
  auto [status, body] = reload({{"file", file("tally_v1_fold")}, {"accept", "everything"}});
  EXPECT_EQ(status, 400) << body.dump();
  EXPECT_EQ(body["error"]["message"], "field 'accept' only takes \"differences\"");
  std::tie(status, body) = reload({{"dry_run", "yes"}});
  EXPECT_EQ(status, 400) << body.dump();
  EXPECT_EQ(body["error"]["message"], "field 'dry_run' must be true or false");
  EXPECT_EQ(version(), "1.0.0");
}

// The plugins.shadow_check keys are checked like every other key: a bad
// value is refused with the file, the line and the key.
TEST(ShadowSwapConfig, BadShadowCheckKeysAreRefusedWithTheirLine) {
  test::TempDir dir;
  const std::string file = dir.file("host.yaml");
  std::ofstream(file) << "store:\n  backend: memory\nplugins:\n  dir: " << dir.path().string() << "\n  shadow_check:\n"
                      << "    sample_percent: 101\n";
  auto r = run_process({test::host_binary(), "--check-config", file}, {}, 20);
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find(file + ":6: plugins.shadow_check.sample_percent"), std::string::npos) << r.err;

  std::ofstream(file) << "store:\n  backend: memory\nplugins:\n  dir: " << dir.path().string() << "\n  shadow_check:\n"
                      << "    enabled: false\n    sample: 10\n    time_limit: 2s\n    memory_limit: 1048576\n"
                      << "    max_differences: 5\n    max_active: 0\n    cpu_percent: 30\n";
  r = run_process({test::host_binary(), "--check-config", file}, {}, 20);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  for (const char* share : {"0", "101", "0.5"}) {
    std::ofstream(file) << "store:\n  backend: memory\nplugins:\n  dir: " << dir.path().string()
                        << "\n  shadow_check:\n    cpu_percent: " << share << "\n";
    r = run_process({test::host_binary(), "--check-config", file}, {}, 20);
    EXPECT_EQ(r.exit_code, 1) << share << ": " << r.err;
    EXPECT_NE(r.err.find(file + ":6: plugins.shadow_check.cpu_percent"), std::string::npos) << r.err;
  }
  std::ofstream(file) << "store:\n  backend: memory\nplugins:\n  dir: " << dir.path().string() << "\n  shadow_check:\n    samples: 10\n";
  r = run_process({test::host_binary(), "--check-config", file}, {}, 20);
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find(":6: plugins.shadow_check.samples"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace aether
