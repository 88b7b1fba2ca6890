// Per-namespace plugin versions in a cluster: three aether-host processes on
// a 3-server NATS cluster. A canary, a promote and a rollback of one
// namespace, each asked of a different node, end with every node running
// the same version per namespace (cluster/plugin_sync.hpp); a node that
// joins later takes them on at start, and one that cannot load a version
// refuses that namespace and says why.
#include <gtest/gtest.h>
#include <httplib.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <string>

#include "support/cluster_harness.hpp"
#include "support/plugin_files.hpp"

namespace aether {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using Versions = std::map<std::string, std::string>;

class ClusterCanary : public testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(cluster_.nats_ready()) << cluster_.nats_why();
    // config/cluster.yaml with two namespaces and the tally plugin.
    std::ifstream in(std::string(AETHER_SOURCE_DIR) + "/config/cluster.yaml");
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    text = std::regex_replace(text, std::regex("namespace: default"), "namespaces: [default, staging]");
    text = std::regex_replace(text, std::regex("list: \\[bank, order, counter\\]"), "list: [tally]");
    std::ofstream(dir_.file("canary.yaml")) << text;
    cluster_.set_config(dir_.file("canary.yaml"));
    fs::create_directories(plugins_);
    fs::copy_file(test::test_plugin("tally_v1"), plugins_ / "tally.so");
    cluster_.set_env("AETHER_PLUGIN_DIR", plugins_.string());
  }

  std::pair<int, json> post(const std::string& node, const std::string& path, const json& body) {
    httplib::Client c("127.0.0.1", cluster_.host(node).port());
    c.set_read_timeout(60, 0);
    auto r = c.Post(path, body.dump(), "application/json");
    if (!r) return {-1, json()};
    return {r->status, json::parse(r->body, nullptr, false)};
  }

  json plugin(const std::string& node) {
    httplib::Client c("127.0.0.1", cluster_.host(node).port());
    c.set_read_timeout(5, 0);
    auto r = c.Get("/v1/plugins");
    if (!r || r->status != 200) return json();
    const json all = json::parse(r->body, nullptr, false);
    return all.is_object() && !all["plugins"].empty() ? all["plugins"][0] : json();
  }

  Versions versions(const std::string& node) {
    Versions out;
    const json p = plugin(node);
    if (!p.is_object()) return out;
    for (const auto& v : p["versions"]) {
      for (const auto& ns : v["namespaces"]) out[ns.get<std::string>()] = v["version"].get<std::string>();
    }
    return out;
  }

  // Waits (bounded) until every running node runs `want`.
  bool converged(const Versions& want, int timeout_seconds = 60) {
    const auto deadline = test::SteadyClock::now() + std::chrono::seconds(timeout_seconds);
    while (test::SteadyClock::now() < deadline) {
      bool all = true;
      for (const auto& n : cluster_.running()) {
        last_[n] = versions(n);
        all = all && last_[n] == want;
      }
      if (all) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return false;
  }

  std::string seen() const {
    std::string out;
    for (const auto& [n, v] : last_) {
      out += n + ":";
      for (const auto& [ns, ver] : v) out += " " + ns + "=" + ver;
      out += "\n";
    }
    return out;
  }

  json command(const std::string& node, const std::string& ns, const std::string& id, int n) {
    auto [status, body] = post(node, "/v1/" + ns + "/actors/Tally/" + id + "/commands",
                               {{"command", "Add"}, {"payload", {{"n", n}}}});
    EXPECT_EQ(status, 200) << node << " " << ns << "/" << id << ": " << body.dump();
    httplib::Client c("127.0.0.1", cluster_.host(node).port());
    auto r = c.Get("/v1/" + ns + "/actors/Tally/" + id);
    if (!r) return json();
    const json j = json::parse(r->body, nullptr, false);
    return j.is_object() ? j["state"] : json();
  }

  test::ClusterHarness cluster_;
  test::TempDir dir_;
  fs::path plugins_ = dir_.path() / "plugins";
  std::map<std::string, Versions> last_;
};

TEST_F(ClusterCanary, EveryNodeConvergesOnTheVersionsPerNamespace) {
  for (const char* n : {"n1", "n2", "n3"}) {
    std::string why;
    ASSERT_NE(cluster_.start_host(n, &why), nullptr) << why;
  }
  ASSERT_TRUE(cluster_.wait_converged(3, 90)) << cluster_.last_status().dump();
  ASSERT_TRUE(converged({{"default", "1.0.0"}, {"staging", "1.0.0"}})) << seen();

  fs::copy_file(test::test_plugin("tally_v2_exact"), plugins_ / "tally-v2.so");
  auto [s1, canary] = post("n1", "/v1/plugins/tally/reload",
                           {{"file", (plugins_ / "tally-v2.so").string()}, {"namespaces", {"staging"}}});
  ASSERT_EQ(s1, 200) << canary.dump();
  ASSERT_TRUE(converged({{"default", "1.0.0"}, {"staging", "2.1.0-exact"}})) << seen();
  // Whichever node owns an actor, each namespace runs its version.
  for (int i = 0; i < 8; ++i) {
    const std::string id = "c" + std::to_string(i);
    EXPECT_EQ(command("n" + std::to_string(1 + i % 3), "staging", id, 2), json::parse(R"({"total":2})")) << id;
    EXPECT_EQ(command("n" + std::to_string(1 + (i + 1) % 3), "default", id, 3), json::parse(R"({"count":3})")) << id;
  }

  auto [s2, promoted] = post("n2", "/v1/plugins/tally/promote", {{"from", "staging"}});
  ASSERT_EQ(s2, 200) << promoted.dump();
  ASSERT_TRUE(converged({{"default", "2.1.0-exact"}, {"staging", "2.1.0-exact"}})) << seen();

  auto [s3, back] = post("n3", "/v1/plugins/tally/reload", {{"to", "previous"}, {"namespaces", {"staging"}}});
  ASSERT_EQ(s3, 200) << back.dump();
  ASSERT_TRUE(converged({{"default", "2.1.0-exact"}, {"staging", "1.0.0"}})) << seen();
  for (int i = 0; i < 8; ++i) {
    const std::string id = "c" + std::to_string(i);
    EXPECT_EQ(command("n" + std::to_string(1 + i % 3), "staging", id, 1), json::parse(R"({"count":3})")) << id;
    EXPECT_EQ(command("n" + std::to_string(1 + (i + 2) % 3), "default", id, 1), json::parse(R"({"total":4})")) << id;
  }

  // A node that joins later takes the cluster's versions on at start.
  std::string why;
  ASSERT_NE(cluster_.start_host("n4", &why), nullptr) << why;
  ASSERT_TRUE(converged({{"default", "2.1.0-exact"}, {"staging", "1.0.0"}})) << seen();
}

// A node whose plugin directory does not allow the cluster's file for a
// namespace keeps its version there, refuses that namespace's commands and
// says why.
TEST_F(ClusterCanary, ANodeThatCannotLoadAVersionRefusesThatNamespace) {
  for (const char* n : {"n1", "n2"}) {
    std::string why;
    ASSERT_NE(cluster_.start_host(n, &why), nullptr) << why;
  }
  // Inside n1's and n2's plugin directory, outside n5's.
  fs::copy_file(test::test_plugin("tally_v2_exact"), plugins_ / "tally-v2.so");
  auto [s1, canary] = post("n1", "/v1/plugins/tally/reload",
                           {{"file", (plugins_ / "tally-v2.so").string()}, {"namespaces", {"staging"}}});
  ASSERT_EQ(s1, 200) << canary.dump();
  ASSERT_TRUE(converged({{"default", "1.0.0"}, {"staging", "2.1.0-exact"}})) << seen();

  const fs::path other = dir_.path() / "other";
  fs::create_directories(other);
  fs::copy_file(test::test_plugin("tally_v1"), other / "tally.so");
  cluster_.set_env("AETHER_PLUGIN_DIR", other.string());
  std::string why;
  ASSERT_NE(cluster_.start_host("n5", &why), nullptr) << why;
  json refused;
  for (int i = 0; i < 600 && !(refused.is_object() && refused.contains("staging")); ++i) {
    refused = plugin("n5").value("refused_namespaces", json());
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_TRUE(refused.is_object() && refused.contains("staging")) << plugin("n5").dump();
  EXPECT_NE(refused["staging"].get<std::string>().find("cannot run version 2.1.0-exact of plugin tally"),
            std::string::npos) << refused.dump();
  EXPECT_NE(refused["staging"].get<std::string>().find("outside"), std::string::npos) << refused.dump();
  EXPECT_FALSE(refused.contains("default"));
  EXPECT_EQ(versions("n5"), (Versions{{"default", "1.0.0"}, {"staging", "1.0.0"}}));
  EXPECT_NE(cluster_.host("n5").log().find("cannot run version 2.1.0-exact"), std::string::npos);
}

}  // namespace
}  // namespace aether
