// The runtime against hostile use, on a real aether-host over HTTP:
// - reads of actors that do not exist must leave nothing in memory;
// - plugin calls that hang must not stall other actors or /healthz.
#include <gtest/gtest.h>
#include <httplib.h>

#include <filesystem>
#include <fstream>
#include <future>
#include <nlohmann/json.hpp>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "support/host_process.hpp"
#include "support/raw_http.hpp"
#include "support/temp_dir.hpp"

namespace aether {
namespace {

using json = nlohmann::json;
using test::HostProcess;

// A host on a free port with the given plugins copied from the build tree
// into its own plugin directory, and `actors` as the config's actors block.
class Host {
 public:
  Host(const std::vector<std::string>& plugins, const std::string& actors) {
    std::filesystem::create_directories(dir_.file("plugins"));
    std::string list;
    for (const auto& p : plugins) {
      const bool example = std::filesystem::exists(std::string(AETHER_PLUGIN_DIR) + "/" + p + ".so");
      const std::string from = std::string(example ? AETHER_PLUGIN_DIR : AETHER_TEST_PLUGIN_DIR) + "/" + p + ".so";
      std::filesystem::copy_file(from, dir_.file("plugins/" + p + ".so"));
      list += (list.empty() ? "" : ", ") + p;
    }
    std::ofstream(dir_.file("aether.yaml"))
        << "node:\n  id: node-1\n  namespace: default\n"
        << "store:\n  backend: sqlite\n  sqlite:\n    path: " << dir_.file("data/aether.db") << "\n"
        << "plugins:\n  dir: " << dir_.file("plugins") << "\n  list: [" << list << "]\n"
        << "actors:\n" << actors
        << "api:\n  http:\n    listen: 127.0.0.1:0\n";
    process_ = std::make_unique<HostProcess>(std::vector<std::string>{"--config", dir_.file("aether.yaml")},
                                             std::map<std::string, std::string>{},
                                             dir_.file("host.log"));
  }

  bool start() { return process_->start(); }
  HostProcess& process() { return *process_; }
  std::unique_ptr<httplib::Client> client(int read_timeout_s = 30) const {
    auto c = std::make_unique<httplib::Client>("127.0.0.1", process_->port());
    c->set_read_timeout(read_timeout_s);
    return c;
  }
  std::string file(const std::string& name) const { return dir_.file(name); }

 private:
  test::TempDir dir_;
  std::unique_ptr<HostProcess> process_;
};

httplib::Result command(httplib::Client& c, const std::string& type, const std::string& id,
                        const std::string& name, const std::string& payload = "{}") {
  return c.Post("/v1/default/actors/" + type + "/" + id + "/commands",
                R"({"command":")" + name + R"(","payload":)" + payload + "}", "application/json");
}

size_t count(const std::string& text, const std::string& part) {
  size_t n = 0;
  for (size_t at = text.find(part); at != std::string::npos; at = text.find(part, at + 1)) ++n;
  return n;
}

// The value of an unlabelled gauge in /metrics, or -1.
double gauge(httplib::Client& c, const std::string& name) {
  auto r = c.Get("/metrics");
  if (!r || r->status != 200) return -1;
  std::smatch m;
  if (!std::regex_search(r->body, m, std::regex("\n" + name + " ([0-9.e+]+)"))) return -1;
  return std::stod(m[1]);
}

// GETs `count` absent actors from `threads` clients; returns how many did
// not answer 404 "has no events".
int read_absent(Host& host, int first, int count, int threads) {
  std::vector<std::future<int>> parts;
  for (int t = 0; t < threads; ++t) {
    parts.push_back(std::async(std::launch::async, [&, t] {
      auto c = host.client();
      int bad = 0;
      for (int i = first + t; i < first + count; i += threads) {
        auto r = c->Get("/v1/default/actors/Counter/ghost-" + std::to_string(i));
        if (!r || r->status != 404 || r->body.find("has no events") == std::string::npos) ++bad;
      }
      return bad;
    }));
  }
  int bad = 0;
  for (auto& p : parts) bad += p.get();
  return bad;
}

TEST(AdversarialRuntime, ReadsOfAbsentActorsLeaveNothingResident) {
  Host host({"counter"}, "  idle_timeout: 5m\n");
  ASSERT_TRUE(host.start()) << host.process().log();
  auto c = host.client();
  // Warm up (allocator arenas, sqlite page cache), then measure.
  ASSERT_EQ(read_absent(host, 0, 2000, 2), 0);
  const long before = static_cast<long>(test::rss_kib(host.process().pid()));
  ASSERT_GT(before, 0);
  ASSERT_EQ(read_absent(host, 2000, 30000, 2), 0);
  EXPECT_EQ(gauge(*c, "aether_active_actors"), 0) << "a read of an absent actor activated it";
  const long grown = static_cast<long>(test::rss_kib(host.process().pid())) - before;
  std::cout << "RSS before " << before << " KiB, growth over 30,000 reads of absent actors: "
            << grown << " KiB\n";
  // Resident actors cost about 300 bytes each (30,000: ~9 MiB); the bound
  // leaves room for allocator noise only.
  if (test::kRssBoundsApply) {
    EXPECT_LT(grown, 4 * 1024) << "KiB";
  }
  // Actors that exist are read as before.
  ASSERT_EQ(command(*c, "Counter", "real", "Increment", R"({"by":3})")->status, 200);
  auto r = c->Get("/v1/default/actors/Counter/real");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(json::parse(r->body)["state"]["value"], 3);
}

// Two decides that sleep far longer than call_timeout on a host with two
// workers: the calls are given up after 500 ms, and the host keeps serving
// /healthz and other actors while they still sleep.
TEST(AdversarialRuntime, SleepingDecidesDoNotStallTheHost) {
  Host host({"sleepy", "counter"},
            "  workers: 2\n  call_timeout: 5s\n  types:\n    Sleepy:\n      call_timeout: 500ms\n");
  ASSERT_TRUE(host.start()) << host.process().log();
  constexpr const char* kSleep = R"({"ms":10000})";
  std::vector<std::future<httplib::Result>> sleepers;
  for (const char* id : {"s1", "s2"}) {
    sleepers.push_back(std::async(std::launch::async, [&host, id] {
      return command(*host.client(), "Sleepy", id, "Sleep", kSleep);
    }));
  }
  // Both workers are in a decide.
  for (int i = 0; i < 1000 && count(host.process().log(), "sleepy: decide sleeps") < 2; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_EQ(count(host.process().log(), "sleepy: decide sleeps"), 2) << host.process().log();
  // Answered well within the 10 s the decides sleep (the clients give up
  // after 8 s): served by the replacement workers while they still sleep.
  std::vector<std::future<int>> others;
  for (int i = 0; i < 12; ++i) {
    others.push_back(std::async(std::launch::async, [&host, i] {
      auto r = command(*host.client(8), "Counter", "busy-" + std::to_string(i), "Increment");
      return r ? r->status : -1;
    }));
  }
  auto c = host.client(8);
  auto health = c->Get("/healthz");
  ASSERT_TRUE(health) << "no /healthz answer while two decides sleep";
  EXPECT_EQ(health->status, 200);
  for (auto& o : others) EXPECT_EQ(o.get(), 200);
  for (auto& s : sleepers) {
    auto r = s.get();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 503) << r->body;
    const json e = json::parse(r->body)["error"];
    EXPECT_EQ(e["code"], "plugin_timeout");
    EXPECT_NE(e["message"].get<std::string>().find(
                  "Sleepy.decide took longer than 500ms (actors.types.Sleepy.call_timeout); actor "
                  "default/Sleepy/s"),
              std::string::npos)
        << e;
  }
  // The quarantined actor fails fast with the reason; the decides still sleep.
  auto again = command(*c, "Sleepy", "s1", "Tick");
  ASSERT_TRUE(again);
  EXPECT_EQ(again->status, 503);
  EXPECT_NE(again->body.find("actor default/Sleepy/s1 is quarantined until plugin sleepy is reloaded"),
            std::string::npos)
      << again->body;
  ASSERT_EQ(command(*c, "Sleepy", "s3", "Tick")->status, 200) << "other actors of the type are served";
  // A reload lifts the quarantine; the late decides never commit.
  auto reload = c->Post("/v1/plugins/sleepy/reload", "{}", "application/json");
  ASSERT_TRUE(reload);
  ASSERT_EQ(reload->status, 200) << reload->body;
  auto after = command(*c, "Sleepy", "s1", "Tick");
  ASSERT_TRUE(after);
  EXPECT_EQ(after->status, 200) << after->body;
  EXPECT_EQ(json::parse(after->body)["version"], 1) << "no event of the given-up decide";
}

TEST(AdversarialRuntime, CallTimeoutErrorsNameFileAndLine) {
  test::TempDir dir;
  struct Case {
    std::string yaml, message;
  };
  for (const Case& k : {
           Case{"actors:\n  call_timeout: soon\n",
                ":2: actors.call_timeout: expected a duration like 250ms, 30s, 5m or 1h, got 'soon'"},
           Case{"actors:\n  types:\n    Counter:\n      call_timeout: -1s\n",
                ":4: actors.types.Counter.call_timeout: expected a duration"},
           Case{"actors:\n  max_stuck_calls: 0\n",
                ":2: actors.max_stuck_calls: must be between 1 and 1024, got 0"},
       }) {
    const std::string file = dir.file("bad.yaml");
    std::ofstream(file) << k.yaml;
    auto r = test::run_process({test::host_binary(), "--check-config", file});
    EXPECT_EQ(r.exit_code, 1) << k.yaml;
    EXPECT_NE(r.err.find(file + k.message), std::string::npos) << "wanted " << k.message << " in " << r.err;
  }
}

}  // namespace
}  // namespace aether
