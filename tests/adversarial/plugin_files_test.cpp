// Hostile plugin files against a real aether-host: truncated and half-written
// images (at start, on reload, under plugins.watch), files outside the
// plugin directory (by path, "..", or symlink), piles of private copies, and
// what /v1/plugins says after a rollback.
#include <gtest/gtest.h>
#include <httplib.h>
#include <signal.h>
#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <thread>

#include "support/host_process.hpp"
#include "support/plugin_files.hpp"
#include "support/temp_dir.hpp"
#include "support/wait.hpp"

namespace aether {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using test::HostProcess;
using test::bytes_of;
using test::run_process;
using test::test_plugin;
using test::write_in_place;

// Files directly in `dir` (0 if it does not exist).
size_t files_in(const fs::path& dir) {
  std::error_code ec;
  size_t n = 0;
  for (const auto& e : fs::directory_iterator(dir, ec)) n += e.is_regular_file() ? 1 : 0;
  return n;
}

using test::eventually;

size_t count_of(const std::string& text, const std::string& part) {
  size_t n = 0;
  for (size_t at = text.find(part); at != std::string::npos; at = text.find(part, at + 1)) ++n;
  return n;
}

// A host that loads the tally plugin from <tmp>/plugins/tally.so (v1), with
// its data directory in <tmp>/data, and the marker plugin's variable set.
class PluginFiles : public testing::Test {
 protected:
  void SetUp() override {
    fs::create_directories(plugins_);
    fs::create_directories(outside_);
    fs::copy_file(test_plugin("tally_v1"), plugins_ / "tally.so");
  }

  std::string config(const std::string& extra_plugins = "", const std::string& node = "") {
    const std::string file = dir_.file("host.yaml");
    std::ofstream(file) << "node:\n  data_dir: " << dir_.file("data") << "\n"
                        << node << "store:\n  backend: memory\nplugins:\n  dir: " << plugins_.string()
                        << "\n  list: [tally]\n"
                        << extra_plugins << "api:\n  http:\n    listen: 127.0.0.1:0\n";
    return file;
  }

  void start(const std::string& extra_plugins = "", std::map<std::string, std::string> env = {}) {
    env["AETHER_TEST_CTOR_MARKER"] = marker_.string();
    host_ = std::make_unique<HostProcess>(std::vector<std::string>{"--config", config(extra_plugins)},
                                          env, dir_.file("host.log"));
    ASSERT_TRUE(host_->start()) << "host did not start:\n" << host_->log();
    client_ = std::make_unique<httplib::Client>("127.0.0.1", host_->port());
    client_->set_read_timeout(30);
  }

  // A reply; status -1 when the host did not answer.
  struct Reply {
    int status = -1;
    std::string body;
  };
  Reply reload(const std::string& body) {
    auto r = client_->Post("/v1/plugins/tally/reload", body, "application/json");
    return r ? Reply{r->status, r->body} : Reply{-1, "no reply; host log:\n" + host_->log()};
  }
  Reply reload_file(const fs::path& file) { return reload(json{{"file", file.string()}}.dump()); }

  // The host still serves: a command commits and the plugin is `version`.
  void expect_serving(const std::string& version) {
    auto r = client_->Post("/v1/default/actors/Tally/t/commands", R"({"command":"Add","payload":{"n":1}})",
                           "application/json");
    ASSERT_TRUE(r) << "the host is gone:\n" << host_->log();
    EXPECT_EQ(r->status, 200) << r->body;
    EXPECT_EQ(tally()["version"], version);
  }

  json tally() {
    auto r = client_->Get("/v1/plugins");
    if (!r || r->status != 200) return json::object();
    const json all = json::parse(r->body);
    for (const auto& p : all["plugins"]) {
      if (p["name"] == "tally") return p;
    }
    return json::object();
  }

  test::TempDir dir_;
  fs::path plugins_ = dir_.path() / "plugins";
  fs::path outside_ = dir_.path() / "outside";
  fs::path marker_ = dir_.path() / "constructor-ran";
  std::unique_ptr<HostProcess> host_;
  std::unique_ptr<httplib::Client> client_;
};

// A test plugin cut short (see test::truncated_image).
std::string prefix_of(const std::string& plugin) { return test::truncated_image(test_plugin(plugin)); }

TEST_F(PluginFiles, ATruncatedPluginAtStartIsAClearErrorExit) {
  write_in_place(plugins_ / "tally.so", prefix_of("tally_v1"));
  const std::string file = config();
  auto check = run_process({test::host_binary(), "--check-config", file});
  EXPECT_EQ(check.exit_code, 1) << check.err;
  EXPECT_NE(check.err.find(file + ":7: plugins.list[0]: plugin file " + (plugins_ / "tally.so").string() +
                           ": incomplete ELF image (truncated or still being written)"),
            std::string::npos)
      << check.err;
  auto run = run_process({test::host_binary(), "--config", file}, {}, 30);
  EXPECT_EQ(run.exit_code, 1) << "killed by a signal? " << run.err;
  EXPECT_NE((run.out + run.err).find("incomplete ELF image"), std::string::npos) << run.out << run.err;
}

TEST_F(PluginFiles, CheckConfigRefusesFifosDirectoriesAndNonElfFiles) {
  ASSERT_EQ(mkfifo((outside_ / "fifo.so").c_str(), 0600), 0);
  fs::create_directory(outside_ / "dir.so");
  const std::pair<std::string, std::string> cases[] = {
      {(outside_ / "fifo.so").string(), "not a regular file (a FIFO)"},
      {(outside_ / "dir.so").string(), "not a regular file (a directory)"},
      {"/etc/passwd", "not a shared library (no ELF header)"},
  };
  for (const auto& [path, why] : cases) {
    const std::string file = dir_.file("check.yaml");
    std::ofstream(file) << "store:\n  backend: memory\nplugins:\n  list:\n    - " << path << "\n";
    // A FIFO opened for reading would block this forever (bounded here).
    auto check = run_process({test::host_binary(), "--check-config", file}, {}, 20);
    EXPECT_EQ(check.exit_code, 1) << path << ": " << check.err;
    EXPECT_NE(check.err.find(file + ":5: plugins.list[0]: plugin file " + path + ": " + why), std::string::npos)
        << check.err;
  }
}

TEST_F(PluginFiles, ReloadOfATruncatedFileIsRefusedAndTheHostServes) {
  ASSERT_NO_FATAL_FAILURE(start());
  expect_serving("1.0.0");
  const fs::path cut = plugins_ / "tally_v2_half.so";
  write_in_place(cut, prefix_of("tally_v2"));
  auto r = reload_file(cut);
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_NE(r.body.find("plugin " + cut.string() + ": incomplete ELF image"), std::string::npos) << r.body;
  EXPECT_NE(r.body.find("the loaded version keeps serving"), std::string::npos) << r.body;
  expect_serving("1.0.0");

  // The loaded file itself cut short in place: a plain reload is refused too.
  write_in_place(plugins_ / "tally.so", prefix_of("tally_v1"));
  r = reload("");
  EXPECT_EQ(r.status, 400) << r.body;
  expect_serving("1.0.0");
}

TEST_F(PluginFiles, WatchWaitsForABuildWritingTheFileInPlace) {
  // tally 2.0.0 starts "ops" at 0 on upgrade (the shadow check would refuse
  // it for actor t); this test is about the file, not the states.
  ASSERT_NO_FATAL_FAILURE(start("  watch: true\n  watch_interval: 50ms\n  shadow_check:\n    enabled: false\n"));
  expect_serving("1.0.0");
  const std::string v2 = bytes_of(test_plugin("tally_v2"));
  {
    // The build has written the first part of the image and pauses (longer
    // than two polls: the host must see a stable but incomplete file).
    std::ofstream out(plugins_ / "tally.so", std::ios::binary | std::ios::in | std::ios::out | std::ios::trunc);
    const size_t first = prefix_of("tally_v2").size();
    out.write(v2.data(), static_cast<std::streamsize>(first));
    out.flush();
    ASSERT_TRUE(eventually([&] { return host_->log().find("changed but is not loadable yet") != std::string::npos; }))
        << host_->log();
    expect_serving("1.0.0");
    out.write(v2.data() + first, static_cast<std::streamsize>(v2.size() - first));
  }
  ASSERT_TRUE(eventually([&] { return tally()["version"] == "2.0.0"; })) << host_->log();
  expect_serving("2.0.0");
  EXPECT_EQ(count_of(host_->log(), "plugin tally reloaded after its file changed"), 1u) << host_->log();
  EXPECT_EQ(tally()["path"], (plugins_ / "tally.so").string());
}

TEST_F(PluginFiles, AFileOutsideThePluginDirectoryIsNeverOpened) {
  ASSERT_NO_FATAL_FAILURE(start());
  fs::copy_file(test_plugin("ctor_marker"), outside_ / "marker.so");
  fs::create_symlink(outside_ / "marker.so", plugins_ / "link.so");
  fs::create_directory_symlink(outside_, plugins_ / "linked-dir");
  for (const fs::path& file : {outside_ / "marker.so", plugins_ / ".." / "outside" / "marker.so",
                               plugins_ / "link.so", plugins_ / "linked-dir" / "marker.so"}) {
    auto r = reload_file(file);
    EXPECT_EQ(r.status, 400) << file << ": " << r.body;
    EXPECT_NE(r.body.find(R"("code":"invalid_argument")"), std::string::npos) << r.body;
    EXPECT_NE(r.body.find("is outside the directories plugins may be loaded from (" + plugins_.string() + ")"),
              std::string::npos)
        << r.body;
    EXPECT_FALSE(fs::exists(marker_)) << "the constructor of " << file << " ran";
  }
  expect_serving("1.0.0");
  // The same library inside the directory is opened (and then refused: it is
  // no aether plugin), and its constructor leaves the marker: the check above
  // would have seen it.
  fs::copy_file(test_plugin("ctor_marker"), plugins_ / "marker.so");
  auto r = reload_file(plugins_ / "marker.so");
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_NE(r.body.find("entry symbol"), std::string::npos) << r.body;
  EXPECT_TRUE(fs::exists(marker_));
  expect_serving("1.0.0");
}

TEST_F(PluginFiles, AllowedDirsLetTheOperatorAddDirectories) {
  const fs::path extra = dir_.path() / "extra";
  fs::create_directory(extra);
  fs::copy_file(test_plugin("tally_v2"), extra / "tally.so");
  ASSERT_NO_FATAL_FAILURE(start("  allowed_dirs: [" + extra.string() + "]\n"));
  auto r = reload_file(extra / "tally.so");
  EXPECT_EQ(r.status, 200) << r.body;
  expect_serving("2.0.0");
  fs::copy_file(test_plugin("tally_v1"), outside_ / "tally.so");
  r = reload_file(outside_ / "tally.so");
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_NE(r.body.find("(" + plugins_.string() + ", " + extra.string() + ")"), std::string::npos) << r.body;
}

TEST_F(PluginFiles, TwentyReloadsKeepAtMostTwoCopiesAndAKilledHostsCopiesGoAtTheNextStart) {
  fs::copy_file(test_plugin("tally_v2"), plugins_ / "tally_v2.so");
  ASSERT_NO_FATAL_FAILURE(start());
  const fs::path copies = dir_.path() / "data" / "plugins.loaded";
  EXPECT_EQ(files_in(copies), 1u);
  for (int i = 0; i < 20; ++i) {
    auto r = reload_file(plugins_ / (i % 2 == 0 ? "tally_v2.so" : "tally.so"));
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_LE(files_in(copies), 2u) << "after reload #" << i + 1;
  }
  expect_serving("1.0.0");
  host_->kill_now();  // no clean-up of its own
  EXPECT_EQ(files_in(copies), 2u);
  std::set<fs::path> before;
  for (const auto& e : fs::directory_iterator(copies)) before.insert(e.path());
  ASSERT_NO_FATAL_FAILURE(start());
  for (const auto& e : fs::directory_iterator(copies)) EXPECT_EQ(before.count(e.path()), 0u) << e.path();
  EXPECT_EQ(files_in(copies), 1u);
  EXPECT_EQ(host_->stop(), 0);
  EXPECT_FALSE(fs::exists(copies)) << "a clean stop leaves no copy";
}

TEST_F(PluginFiles, WithoutADataDirectoryAKilledHostsCopiesGoAtTheNextStart) {
  // jetstream-less memory store and no node.data_dir: copies under TMPDIR.
  const fs::path tmp = dir_.path() / "tmp";
  fs::create_directory(tmp);
  const std::string file = dir_.file("nodata.yaml");
  std::ofstream(file) << "store:\n  backend: memory\nplugins:\n  dir: " << plugins_.string()
                      << "\n  list: [tally]\napi:\n  http:\n    listen: 127.0.0.1:0\n";
  auto first = std::make_unique<HostProcess>(std::vector<std::string>{"--config", file},
                                             std::map<std::string, std::string>{{"TMPDIR", tmp.string()}},
                                             dir_.file("first.log"));
  ASSERT_TRUE(first->start()) << first->log();
  std::vector<fs::path> dirs;
  for (const auto& e : fs::directory_iterator(tmp)) dirs.push_back(e.path());
  ASSERT_EQ(dirs.size(), 1u);
  EXPECT_EQ(dirs[0].filename().string().rfind("aether-plugins-", 0), 0u) << dirs[0];
  first->kill_now();
  ASSERT_TRUE(fs::exists(dirs[0]));
  HostProcess second({"--config", file}, {{"TMPDIR", tmp.string()}}, dir_.file("second.log"));
  ASSERT_TRUE(second.start()) << second.log();
  EXPECT_FALSE(fs::exists(dirs[0])) << "the killed host's copies are still there";
  EXPECT_NE(second.log().find("removed 1 plugin copy directories of stopped hosts"), std::string::npos);
  EXPECT_EQ(second.stop(), 0);
  EXPECT_TRUE(fs::is_empty(tmp));
}

TEST_F(PluginFiles, RollbackReportsTheRolledBackVersionsOwnFile) {
  fs::copy_file(test_plugin("tally_v2"), plugins_ / "tally_v2.so");
  ASSERT_NO_FATAL_FAILURE(start());
  const std::string v1_file = (plugins_ / "tally.so").string();
  EXPECT_EQ(tally()["path"], v1_file);
  EXPECT_EQ(tally()["loaded_by"], "start");
  ASSERT_EQ(reload_file(plugins_ / "tally_v2.so").status, 200);
  EXPECT_EQ(tally()["path"], (plugins_ / "tally_v2.so").string());
  EXPECT_EQ(tally()["loaded_by"], "reload");

  auto r = reload(R"({"to":"previous"})");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(tally()["version"], "1.0.0");
  EXPECT_EQ(tally()["path"], v1_file) << "the rolled-back version's own file, nothing appended";
  EXPECT_EQ(tally()["loaded_by"], "rollback");

  // A plain reload now loads the configured file (v1), not the version the
  // rollback left.
  r = reload("");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_NE(r.body.find(R"("to_version":"1.0.0")"), std::string::npos) << r.body;
  EXPECT_EQ(tally()["path"], v1_file);
  expect_serving("1.0.0");
}

}  // namespace
}  // namespace aether
