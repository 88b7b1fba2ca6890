// A cluster of real aether-host processes on a 3-server NATS cluster, under
// steady load over 2,000 actors: a node joins, a node leaves gracefully, a
// node is killed, the leader is killed.
#include <gtest/gtest.h>
#include <httplib.h>
#include <nats/nats.h>

#include <atomic>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "support/host_process.hpp"
#include "support/nats_cluster.hpp"
#include "support/temp_dir.hpp"

namespace aether {
namespace {

using json = nlohmann::json;
using test::HostProcess;
using Clock = std::chrono::steady_clock;

const std::string kClusterConfig = std::string(AETHER_SOURCE_DIR) + "/config/cluster.yaml";
constexpr int kActors = 2000;
constexpr int kLoadThreads = 16;
constexpr int64_t kNodeTtlMs = 3000;

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

// Steady load: kLoadThreads clients, each sending Increment to its own slice
// of the actors in turn over NATS request/reply (the queue group spreads them
// over the hosts). Every reply is counted per actor.
class Load {
 public:
  explicit Load(const std::string& url) {
    natsConnection_ConnectTo(&nc_, url.c_str());
    acked_.assign(kActors, 0);
    unknown_.assign(kActors, 0);
  }
  ~Load() {
    stop();
    natsConnection_Destroy(nc_);
  }

  void start() {
    for (int t = 0; t < kLoadThreads; ++t) threads_.emplace_back([this, t] { run(t); });
  }
  void stop() {
    stop_.store(true);
    for (auto& t : threads_) t.join();
    threads_.clear();
  }

  uint64_t sent() const { return sent_.load(); }
  // Waits (bounded) until every actor has had a command: the load is warm.
  bool wait_warm(int timeout_seconds = 90) {
    const auto deadline = Clock::now() + std::chrono::seconds(timeout_seconds);
    while (Clock::now() < deadline) {
      bool all = true;
      for (int t = 0; t < kLoadThreads; ++t) all = all && rounds_[t].load() > 0;
      if (all) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
  }
  int acked(int actor) const { return acked_[static_cast<size_t>(actor)]; }
  int unknown(int actor) const { return unknown_[static_cast<size_t>(actor)]; }
  std::vector<std::pair<double, std::string>> errors() {
    std::lock_guard lock(mu_);
    return errors_;
  }
  void mark_start() { t0_ = Clock::now(); }

 private:
  void run(int t) {
    const std::string body = R"({"command":"Increment","payload":{"by":1}})";
    for (int round = 0; !stop_.load() && round < 1000000; ++round) {
      for (int a = t; a < kActors && !stop_.load(); a += kLoadThreads) {
        const std::string subject = "aether.default.cmd.Counter.c-" + std::to_string(a);
        natsMsg* reply = nullptr;
        sent_.fetch_add(1);
        natsStatus s = natsConnection_Request(&reply, nc_, subject.c_str(), body.data(),
                                              static_cast<int>(body.size()), 10000);
        std::string error;
        if (s != NATS_OK) {
          error = std::string("transport: ") + natsStatus_GetText(s);
        } else {
          const char* st = nullptr;
          const int status = natsMsgHeader_Get(reply, "Aether-Status", &st) == NATS_OK && st ? std::atoi(st) : 0;
          if (status == 200) {
            ++acked_[static_cast<size_t>(a)];
          } else {
            error = "status " + std::to_string(status) + ": " +
                    std::string(natsMsg_GetData(reply), static_cast<size_t>(natsMsg_GetDataLength(reply)));
          }
          natsMsg_Destroy(reply);
        }
        if (!error.empty()) {
          ++unknown_[static_cast<size_t>(a)];
          std::lock_guard lock(mu_);
          errors_.push_back({seconds_since(t0_), "c-" + std::to_string(a) + ": " + error});
        }
      }
      rounds_[t].fetch_add(1);
    }
  }

  natsConnection* nc_ = nullptr;
  std::vector<std::thread> threads_;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> sent_{0};
  std::atomic<int> rounds_[kLoadThreads] = {};  // full passes over its actors, per thread
  std::vector<int> acked_;    // each actor is written by one thread only
  std::vector<int> unknown_;  // failed or unanswered: may or may not have been stored
  std::mutex mu_;
  std::vector<std::pair<double, std::string>> errors_;
  Clock::time_point t0_ = Clock::now();
};

class ClusterTest : public testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(nats_.wait_ready()) << "the NATS cluster did not become ready";
    for (int i = 1; i <= 3; ++i) start_host("node-" + std::to_string(i));
    ASSERT_TRUE(wait_converged(3, 60)) << last_status_.dump(1);
  }

  HostProcess* start_host(const std::string& node) {
    const size_t server = hosts_.size() % nats_.size();
    std::map<std::string, std::string> env = {{"NATS_URL", nats_.server(server).url()},
                                              {"AETHER_LISTEN", "127.0.0.1:0"},
                                              {"AETHER_PLUGIN_DIR", AETHER_PLUGIN_DIR},
                                              {"AETHER_NODE_ID", node},
                                              {"AETHER_NODE_TTL", std::to_string(kNodeTtlMs) + "ms"},
                                              {"AETHER_HEARTBEAT", "500ms"},
                                              {"AETHER_LOG_LEVEL", "info"}};
    hosts_[node] = std::make_unique<HostProcess>(std::vector<std::string>{"--config", kClusterConfig}, env,
                                                  dir_.file(node + ".log"));
    HostProcess* h = hosts_[node].get();
    EXPECT_TRUE(h->start()) << h->log();
    return h;
  }

  json cluster_status(const std::string& via) {
    auto it = hosts_.find(via);
    if (it == hosts_.end()) return {};
    httplib::Client c("127.0.0.1", it->second->port());
    c.set_read_timeout(5, 0);
    auto r = c.Get("/v1/cluster");
    if (!r || r->status != 200) return {};
    return json::parse(r->body, nullptr, false);
  }

  // A host that is up, to ask.
  std::string any_live(const std::string& besides = "") {
    for (auto& [id, h] : hosts_) {
      if (id != besides) return id;
    }
    return "";
  }

  // Takes a host out of the cluster: SIGTERM (graceful) or SIGKILL.
  int stop_host(const std::string& id, bool kill) {
    auto h = std::move(hosts_.at(id));
    hosts_.erase(id);
    int code = 0;
    if (kill) h->kill_now();
    else code = h->stop(90);
    if (code != 0) ADD_FAILURE() << id << " exited with " << code << ":\n" << h->log();
    gone_.push_back(std::move(h));
    return code;
  }

  // Every listed host reports the same epoch, `nodes` members, every shard
  // owned by one of them, and no migration in flight.
  bool wait_converged(size_t nodes, int timeout_seconds, const std::string& besides = "") {
    const auto deadline = Clock::now() + std::chrono::seconds(timeout_seconds);
    while (Clock::now() < deadline) {
      bool all = true;
      uint64_t epoch = 0;
      for (auto& [id, h] : hosts_) {
        if (id == besides) continue;
        json s = cluster_status(id);
        last_status_ = s;
        if (!s.is_object() || s["nodes"].size() != nodes || s["unowned_shards"] != 0 || !s["migrations"].empty()) {
          all = false;
          break;
        }
        uint32_t owned = 0;
        for (const auto& n : s["nodes"]) {
          if (n["shards"].get<uint32_t>() == 0) all = false;
          owned += n["shards"].get<uint32_t>();
        }
        if (owned != s["shards"].get<uint32_t>()) all = false;
        if (epoch != 0 && s["epoch"] != epoch) all = false;
        epoch = s["epoch"];
        if (!all) break;
      }
      if (all) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return false;
  }

  // Every actor's stored events against what the clients were told.
  // exact: stored == acknowledged; else acknowledged <= stored <= acknowledged + unknown.
  void verify(Load& load, bool exact) {
    httplib::Client c("127.0.0.1", hosts_[any_live()]->port());
    c.set_read_timeout(10, 0);
    int checked = 0;
    int touched = 0;
    for (int a = 0; a < kActors; ++a) {
      const std::string id = "c-" + std::to_string(a);
      auto r = c.Get("/v1/default/actors/Counter/" + id + "/events?limit=10000");
      ASSERT_TRUE(r) << id;
      ASSERT_EQ(r->status, 200) << id << ": " << r->body;
      json j = json::parse(r->body);
      const auto& ev = j["events"];
      for (size_t i = 0; i < ev.size(); ++i) {
        ASSERT_EQ(ev[i]["version"].get<uint64_t>(), i + 1) << id << ": a gap or a duplicate";
      }
      const int stored = static_cast<int>(ev.size());
      if (exact) {
        EXPECT_EQ(stored, load.acked(a)) << id;
      } else {
        EXPECT_GE(stored, load.acked(a)) << id << ": an acknowledged event is missing";
        EXPECT_LE(stored, load.acked(a) + load.unknown(a)) << id;
      }
      // The state (loaded on whichever node owns it now) carries every event.
      auto st = c.Get("/v1/default/actors/Counter/" + id);
      ASSERT_TRUE(st) << id;
      if (stored == 0) {
        EXPECT_EQ(st->status, 404) << id << ": " << st->body;
      } else {
        ASSERT_EQ(st->status, 200) << id << ": " << st->body;
        json sj = json::parse(st->body);
        EXPECT_EQ(sj["state"]["value"].get<int>(), stored) << id << ": " << st->body;
      }
      if (load.acked(a) + load.unknown(a) > 0) ++touched;
      ++checked;
    }
    EXPECT_EQ(checked, kActors);
    EXPECT_EQ(touched, kActors) << "the load reached every actor (" << load.sent() << " commands sent)";
  }

  static std::string describe(const std::vector<std::pair<double, std::string>>& errors) {
    std::string out;
    for (size_t i = 0; i < errors.size() && i < 10; ++i) {
      out += "  at " + std::to_string(errors[i].first) + " s: " + errors[i].second + "\n";
    }
    return out;
  }

  test::TempDir dir_;
  test::NatsCluster nats_{3};
  std::map<std::string, std::unique_ptr<HostProcess>> hosts_;
  std::vector<std::unique_ptr<HostProcess>> gone_;
  json last_status_;
};

TEST_F(ClusterTest, AFourthHostJoinsUnderLoad) {
  Load load(nats_.server(0).url());
  load.start();
  ASSERT_TRUE(load.wait_warm()) << load.sent() << " commands sent";
  start_host("node-4");
  ASSERT_TRUE(wait_converged(4, 60)) << last_status_.dump(1);
  std::this_thread::sleep_for(std::chrono::seconds(1));
  load.stop();
  EXPECT_GT(load.sent(), 2000u);
  const auto errors = load.errors();
  EXPECT_TRUE(errors.empty()) << errors.size() << " commands failed:\n" << describe(errors);
  json s = cluster_status("node-4");
  EXPECT_GT(s["migrations_done"].get<uint64_t>() + cluster_status("node-1")["migrations_done"].get<uint64_t>() +
                cluster_status("node-2")["migrations_done"].get<uint64_t>() +
                cluster_status("node-3")["migrations_done"].get<uint64_t>(),
            0u);
  verify(load, true);
  // The CLI shows the same picture.
  auto c = test::run_process({test::cli_binary(), "--url", hosts_["node-2"]->url(), "cluster"});
  EXPECT_EQ(c.exit_code, 0) << c.err;
  EXPECT_NE(c.out.find("cluster: leader node-"), std::string::npos) << c.out;
  EXPECT_NE(c.out.find("0 unowned"), std::string::npos) << c.out;
  EXPECT_NE(c.out.find("node-4"), std::string::npos) << c.out;
  EXPECT_NE(c.out.find("migrations in flight: 0"), std::string::npos) << c.out;
}

TEST_F(ClusterTest, AHostLeavesGracefullyUnderLoad) {
  Load load(nats_.server(0).url());
  load.start();
  ASSERT_TRUE(load.wait_warm()) << load.sent() << " commands sent";
  stop_host("node-3", false);
  ASSERT_TRUE(wait_converged(2, 60)) << last_status_.dump(1);
  std::this_thread::sleep_for(std::chrono::seconds(1));
  load.stop();
  const auto errors = load.errors();
  EXPECT_TRUE(errors.empty()) << errors.size() << " commands failed:\n" << describe(errors);
  verify(load, true);
}

TEST_F(ClusterTest, AKilledHostsShardsAreOwnedAgainWithinTheTtl) {
  Load load(nats_.server(0).url());
  load.mark_start();
  const auto started = Clock::now();
  load.start();
  ASSERT_TRUE(load.wait_warm()) << load.sent() << " commands sent";
  const auto killed_at = Clock::now();
  const double t_kill = seconds_since(started);
  stop_host("node-3", true);
  ASSERT_TRUE(wait_converged(2, 30)) << last_status_.dump(1);
  const double recovered = seconds_since(killed_at);
  EXPECT_LE(recovered, kNodeTtlMs / 1000.0 + 2.0) << "shards of the killed node owned again after " << recovered << " s";
  const uint64_t sent_at_recovery = load.sent();
  std::this_thread::sleep_for(std::chrono::seconds(2));
  load.stop();
  EXPECT_GT(load.sent(), sent_at_recovery + 100) << "commands resumed";
  // Failures are allowed only around the crash (requests the dead host had
  // taken, or waits that outlasted it), not after the shards were re-owned.
  for (const auto& [at, what] : load.errors()) {
    EXPECT_LT(at, t_kill + recovered + 11.0) << what;  // 10 s client timeout on the dead host's requests
  }
  verify(load, false);
}

TEST_F(ClusterTest, ANewLeaderAfterTheLeaderIsKilledAndRebalancingStillWorks) {
  json s = cluster_status("node-1");
  const std::string leader = s["leader"];
  ASSERT_FALSE(leader.empty()) << s.dump(1);
  Load load(nats_.server(0).url());
  load.start();
  ASSERT_TRUE(load.wait_warm()) << load.sent() << " commands sent";
  const auto killed_at = Clock::now();
  stop_host(leader, true);
  std::string next;
  while (seconds_since(killed_at) < 30) {
    json t = cluster_status(any_live(leader));
    if (t.is_object() && t["leader"].is_string() && t["leader"] != leader && !t["leader"].get<std::string>().empty()) {
      next = t["leader"];
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  const double took = seconds_since(killed_at);
  ASSERT_FALSE(next.empty()) << "no new leader";
  EXPECT_LE(took, kNodeTtlMs / 1000.0 + 1.0) << "new leader " << next << " after " << took << " s";
  ASSERT_TRUE(wait_converged(2, 30)) << last_status_.dump(1);
  start_host("node-4");
  ASSERT_TRUE(wait_converged(3, 60)) << last_status_.dump(1);
  std::this_thread::sleep_for(std::chrono::seconds(1));
  load.stop();
  verify(load, false);
}

}  // namespace
}  // namespace aether
