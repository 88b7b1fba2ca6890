// Faults against a real cluster: 3 nats-servers (streams with 3 replicas)
// and 3 aether-host nodes under a steady load of uniquely numbered commands
// with unique idempotency keys. Each fault lasts a few seconds; at the end
// every actor's history is read from every node and checked: every
// acknowledged command once, at the version it was acknowledged with; no
// event that was not sent, none of a command answered "not applied"; all
// nodes agree. The error window and the indeterminate outcomes per fault are
// printed.
#include <gtest/gtest.h>

#include <algorithm>
#include <iostream>

#include "support/cluster_harness.hpp"

namespace aether {
namespace {

using json = nlohmann::json;
using test::SteadyClock;

constexpr int kActors = 48;
constexpr int kThreads = 6;

// One command as the client saw it.
struct Sent {
  int actor = 0;
  uint64_t n = 0;        // its "by", unique over the run
  double at = 0;         // sent, seconds since the load started
  double done = 0;       // answered (or gave up)
  uint64_t version = 0;  // acknowledged version (0: not acknowledged)
  bool not_applied = false;  // an error that says it was not applied
};

class HistoryLoad {
 public:
  explicit HistoryLoad(const std::string& url) { natsConnection_ConnectTo(&nc_, url.c_str()); }
  ~HistoryLoad() {
    stop();
    natsConnection_Destroy(nc_);
  }
  void start() {
    for (int t = 0; t < kThreads; ++t) threads_.emplace_back([this, t] { run(t); });
  }
  void stop() {
    stop_.store(true);
    for (auto& t : threads_) t.join();
    threads_.clear();
  }
  double now() const { return test::seconds_since(t0_); }
  std::vector<Sent> history() {
    std::lock_guard lock(mu_);
    return sent_;
  }

 private:
  void run(int t) {
    while (!stop_.load()) {
      for (int a = t; a < kActors && !stop_.load(); a += kThreads) one(a);
    }
  }
  void one(int a) {
    Sent s;
    s.actor = a;
    s.n = next_.fetch_add(1) + 1;
    const std::string body = R"({"command":"Increment","payload":{"by":)" + std::to_string(s.n) +
                             R"(},"idempotency_key":"k-)" + std::to_string(s.n) + "\"}";
    const std::string subject = "aether.default.cmd.Counter.f-" + std::to_string(a);
    s.at = now();
    natsMsg* reply = nullptr;
    if (natsConnection_Request(&reply, nc_, subject.c_str(), body.data(), static_cast<int>(body.size()), 10000) ==
        NATS_OK) {
      const char* st = nullptr;
      const int status = natsMsgHeader_Get(reply, "Aether-Status", &st) == NATS_OK && st ? std::atoi(st) : 0;
      json j = json::parse(std::string(natsMsg_GetData(reply), static_cast<size_t>(natsMsg_GetDataLength(reply))),
                           nullptr, false);
      if (status == 200 && j.is_object()) s.version = j.value("version", uint64_t{0});
      if (status != 200 && j.is_object() && j["error"].is_object()) {
        s.not_applied = j["error"].value("may_have_been_applied", true) == false;
      }
      natsMsg_Destroy(reply);
    }
    s.done = now();
    std::lock_guard lock(mu_);
    sent_.push_back(s);
  }

  natsConnection* nc_ = nullptr;
  std::vector<std::thread> threads_;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> next_{0};
  std::mutex mu_;
  std::vector<Sent> sent_;
  SteadyClock::time_point t0_ = SteadyClock::now();
};

struct Phase {
  std::string fault;
  double from = 0, to = 0;
};

class FaultsTest : public testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(cluster_.nats_ready());
    cluster_.set_env("AETHER_REPLICAS", "3");
    cluster_.set_env("AETHER_SHARDS", "64");
    for (int i = 1; i <= 3; ++i) {
      std::string why;
      ASSERT_NE(cluster_.start_host("node-" + std::to_string(i), &why), nullptr) << why;
    }
    ASSERT_TRUE(cluster_.wait_converged(3, 60)) << cluster_.last_status().dump(1);
  }

  // Every actor's "by" values in version order, as `node` reads them.
  std::vector<std::vector<uint64_t>> histories(const std::string& node) {
    std::vector<std::vector<uint64_t>> out(kActors);
    httplib::Client c("127.0.0.1", cluster_.host(node).port());
    c.set_read_timeout(10, 0);
    for (int a = 0; a < kActors; ++a) {
      auto r = c.Get("/v1/default/actors/Counter/f-" + std::to_string(a) + "/events?limit=10000");
      if (!r || r->status != 200) {
        ADD_FAILURE() << node << ": events of f-" << a << ": " << (r ? r->body : "no reply");
        continue;
      }
      const json ev = json::parse(r->body)["events"];
      for (size_t i = 0; i < ev.size(); ++i) {
        EXPECT_EQ(ev[i]["version"].get<uint64_t>(), i + 1) << node << " f-" << a << ": a gap or a repeat";
        out[static_cast<size_t>(a)].push_back(ev[i]["payload"]["by"].get<uint64_t>());
      }
    }
    return out;
  }

  // The check of the whole run; returns the anomalies found.
  int check(const std::vector<Sent>& sent) {
    int anomalies = 0;
    const auto nodes = cluster_.running();
    const auto reference = histories(nodes.front());
    for (size_t i = 1; i < nodes.size(); ++i) {
      if (histories(nodes[i]) != reference) {
        ++anomalies;
        ADD_FAILURE() << nodes[i] << " reads other histories than " << nodes.front();
      }
    }
    std::map<uint64_t, const Sent*> by_n;
    for (const auto& s : sent) by_n[s.n] = &s;
    for (int a = 0; a < kActors; ++a) {
      const auto& h = reference[static_cast<size_t>(a)];
      std::set<uint64_t> seen;
      for (size_t v = 0; v < h.size(); ++v) {
        auto it = by_n.find(h[v]);
        const bool phantom = it == by_n.end() || it->second->actor != a || it->second->not_applied;
        const bool twice = !seen.insert(h[v]).second;
        const bool moved = !phantom && it->second->version != 0 && it->second->version != v + 1;
        if (phantom || twice || moved) {
          ++anomalies;
          ADD_FAILURE() << "f-" << a << " version " << v + 1 << ": command " << h[v]
                        << (phantom ? " was never sent or was answered 'not applied'" : twice ? " stored twice"
                                                                                               : " acknowledged at another version");
        }
      }
      for (const auto& s : sent) {
        if (s.actor == a && s.version != 0 && seen.count(s.n) == 0) {
          ++anomalies;
          ADD_FAILURE() << "f-" << a << ": acknowledged command " << s.n << " (version " << s.version << ") is missing";
        }
      }
    }
    return anomalies;
  }

  // Prints, for the phase of one fault: errors, indeterminate outcomes, and
  // per actor the longest time without an acknowledgement (p50, p99, max
  // over the actors): the unavailability a client of that actor saw.
  static void report(const std::vector<Sent>& sent, const Phase& p) {
    int errors = 0, unknown = 0;
    std::vector<std::vector<double>> acks(kActors);
    for (const auto& s : sent) {
      if (s.done < p.from || s.at > p.to) continue;
      if (s.version != 0) {
        acks[static_cast<size_t>(s.actor)].push_back(s.done);
        continue;
      }
      ++errors;
      unknown += s.not_applied ? 0 : 1;
    }
    std::vector<double> gaps;
    for (auto& a : acks) {
      std::sort(a.begin(), a.end());
      double prev = p.from, gap = 0;
      for (double t : a) {
        gap = std::max(gap, t - prev);
        prev = t;
      }
      gaps.push_back(std::max(gap, p.to - prev));
    }
    std::sort(gaps.begin(), gaps.end());
    auto pct = [&](double q) { return gaps[std::min(gaps.size() - 1, static_cast<size_t>(q * gaps.size()))]; };
    std::cout << "fault '" << p.fault << "': " << errors << " errors (" << unknown << " indeterminate); "
              << "longest wait for an ack per actor: p50 " << pct(0.5) << " s, p99 " << pct(0.99) << " s, max "
              << gaps.back() << " s\n";
  }

  test::ClusterHarness cluster_{3000, "500ms"};
};

TEST_F(FaultsTest, ShortFaultsLoseNoAcknowledgedCommandAndInventNone) {
  HistoryLoad load(cluster_.nats(0).url());
  load.start();
  std::this_thread::sleep_for(std::chrono::seconds(1));
  std::vector<Phase> phases;
  auto pause = [&](const std::string& name, pid_t pid, int ms) {
    Phase p{name, load.now(), 0};
    {
      test::Paused paused(pid);
      std::this_thread::sleep_for(std::chrono::milliseconds(ms));
    }
    std::this_thread::sleep_for(std::chrono::seconds(2));
    p.to = load.now();
    phases.push_back(p);
  };
  pause("SIGSTOP nats-server s2 for 2.5 s", cluster_.nats(1).pid(), 2500);
  pause("SIGSTOP node-2 for 2 s", cluster_.host("node-2").pid(), 2000);
  {
    Phase p{"kill -9 node-3", load.now(), 0};
    cluster_.stop_host("node-3", true);
    std::this_thread::sleep_for(std::chrono::seconds(5));
    p.to = load.now();
    phases.push_back(p);
  }
  load.stop();
  const auto sent = load.history();
  uint64_t acked = 0;
  for (const auto& s : sent) acked += s.version != 0;
  for (const auto& p : phases) report(sent, p);
  std::cout << sent.size() << " commands, " << acked << " acknowledged\n";
  EXPECT_GT(acked, 0u);
  EXPECT_EQ(check(sent), 0);
}

}  // namespace
}  // namespace aether
