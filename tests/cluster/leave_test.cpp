// A cluster node stopping with SIGTERM while clients send commands over HTTP
// straight to it, as through a load balancer that follows /readyz: the node
// answers /readyz 503 first, keeps answering (running or forwarding) every
// command it receives until its shards are handed off, and only then closes
// its listener. No command sent to it is refused or left without an answer.
#include <gtest/gtest.h>

#include <cstdio>

#include "support/cluster_harness.hpp"

namespace aether {
namespace {

using json = nlohmann::json;
using Clock = test::SteadyClock;

constexpr int kThreads = 8;
constexpr int kActors = 400;
// The clients go on sending to the leaving node this long after its /readyz
// turned 503, as a balancer does until its next probe: those commands arrive
// while the node hands its shards off (which takes several leader rounds).
constexpr std::chrono::milliseconds kBalancerLag{250};

// Outcomes of the commands sent to the leaving node.
struct Outcomes {
  std::atomic<int> ok{0};           // 200 from the leaving node
  std::atomic<int> refused{0};      // any other HTTP status from it
  std::atomic<int> dropped{0};      // connected, then no answer
  std::atomic<int> unreachable{0};  // could not connect: sent elsewhere instead
  std::atomic<int> elsewhere{0};    // 200 from the other node after that
  std::mutex mu;
  std::vector<std::string> errors;  // the first few, for the failure message

  void note(const std::string& what) {
    std::lock_guard lock(mu);
    if (errors.size() < 10) errors.push_back(what);
  }
};

// Polls /readyz of one node; remembers when it first answered 503.
class ReadyProbe {
 public:
  explicit ReadyProbe(int port) : thread_([this, port] { run(port); }) {}
  ~ReadyProbe() {
    stop_.store(true);
    thread_.join();
  }
  bool not_ready() const { return not_ready_.load(); }
  // /readyz has answered 503 for at least `lag` (the probe interval of a
  // balancer, which goes on sending meanwhile).
  bool not_ready_for(std::chrono::milliseconds lag) const {
    return not_ready() && Clock::now() - Clock::time_point(Clock::duration(first_503_.load())) >= lag;
  }

 private:
  void run(int port) {
    httplib::Client c("127.0.0.1", port);
    c.set_connection_timeout(1, 0);
    c.set_read_timeout(2, 0);
    while (!stop_.load()) {
      auto r = c.Get("/readyz");
      if (r && r->status == 503 && !not_ready_.load()) {
        first_503_.store(Clock::now().time_since_epoch().count());
        not_ready_.store(true);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }
  std::atomic<bool> stop_{false};
  std::atomic<bool> not_ready_{false};
  std::atomic<Clock::rep> first_503_{0};
  std::thread thread_;
};

class LeaveTest : public testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(cluster_.nats_ready()) << "the NATS cluster did not become ready";
    for (int i = 1; i <= 3; ++i) {
      std::string why;
      ASSERT_NE(cluster_.start_host("node-" + std::to_string(i), &why), nullptr) << why;
    }
    ASSERT_TRUE(cluster_.wait_converged(3, 60)) << cluster_.last_status().dump(1);
  }

  // One client thread: Increment on its slice of the actors d-*, to `leaving`
  // until its /readyz said 503 for kBalancerLag (or it cannot be reached),
  // then to `other`.
  void send(int t, int leaving, int other, const ReadyProbe& probe) {
    const std::string body = R"({"command":"Increment","payload":{"by":1}})";
    httplib::Client to_leaving("127.0.0.1", leaving);
    httplib::Client to_other("127.0.0.1", other);
    for (auto* c : {&to_leaving, &to_other}) c->set_read_timeout(30, 0);
    bool moved = false;
    for (int round = 0; !stop_.load() && round < 1000000; ++round) {
      for (int a = t; a < kActors && !stop_.load(); a += kThreads) {
        const std::string path = "/v1/default/actors/Counter/d-" + std::to_string(a) + "/commands";
        moved = moved || probe.not_ready_for(kBalancerLag);
        auto r = (moved ? to_other : to_leaving).Post(path, body, "application/json");
        if (r && r->status == 200) {
          ++(moved ? outcomes_.elsewhere : outcomes_.ok);
          ++acked_[static_cast<size_t>(a)];
        } else if (moved) {
          outcomes_.note("d-" + std::to_string(a) + " on the other node: " + (r ? r->body : httplib::to_string(r.error())));
        } else if (r) {
          ++outcomes_.refused;
          outcomes_.note("d-" + std::to_string(a) + ": " + std::to_string(r->status) + " " + r->body);
        } else if (r.error() == httplib::Error::Connection) {
          ++outcomes_.unreachable;
          moved = true;
        } else {
          ++outcomes_.dropped;
          outcomes_.note("d-" + std::to_string(a) + ": " + httplib::to_string(r.error()));
        }
      }
      sent_rounds_[t].fetch_add(1);
    }
  }

  bool wait_warm() {
    const auto deadline = Clock::now() + std::chrono::seconds(60);
    while (Clock::now() < deadline) {
      bool all = true;
      for (const auto& r : sent_rounds_) all = all && r.load() > 0;
      if (all) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return false;
  }

  test::ClusterHarness cluster_{3000};
  Outcomes outcomes_;
  std::atomic<bool> stop_{false};
  std::atomic<int> sent_rounds_[kThreads] = {};
  std::vector<int> acked_ = std::vector<int>(kActors, 0);  // each actor is written by one thread only
};

TEST_F(LeaveTest, ALeavingNodeAnswersEveryCommandSentToIt) {
  const int leaving = cluster_.host("node-3").port();
  const int other = cluster_.host("node-1").port();
  ReadyProbe probe(leaving);
  std::vector<std::thread> clients;
  for (int t = 0; t < kThreads; ++t) clients.emplace_back([&, t] { send(t, leaving, other, probe); });
  ASSERT_TRUE(wait_warm()) << "the clients did not get going";
  const int ok_before = outcomes_.ok.load();
  std::string log;
  const auto sigterm_at = Clock::now();
  const int code = cluster_.stop_host("node-3", false, &log);
  const double leave_seconds = test::seconds_since(sigterm_at);
  const bool saw_not_ready = probe.not_ready();
  // A little more load on the remaining nodes, then stop.
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  stop_.store(true);
  for (auto& c : clients) c.join();
  std::printf("leave under direct load: %d answered by the leaving node after SIGTERM, %d refused, %d dropped, "
              "%d could not connect, %d answered by node-1 after that; /readyz 503 before exit: %s; exit %.2f s after SIGTERM\n",
              outcomes_.ok.load() - ok_before, outcomes_.refused.load(), outcomes_.dropped.load(),
              outcomes_.unreachable.load(), outcomes_.elsewhere.load(), saw_not_ready ? "yes" : "no", leave_seconds);
  RecordProperty("refused", outcomes_.refused.load());
  RecordProperty("dropped", outcomes_.dropped.load());
  EXPECT_EQ(code, 0) << log;
  std::string errors;
  for (const auto& e : outcomes_.errors) errors += "  " + e + "\n";
  EXPECT_EQ(outcomes_.refused.load(), 0) << errors;
  EXPECT_EQ(outcomes_.dropped.load(), 0) << errors;
  EXPECT_EQ(outcomes_.unreachable.load(), 0) << "the node closed its listener before its /readyz said 503 for "
                                              << kBalancerLag.count() << " ms";
  EXPECT_TRUE(outcomes_.errors.empty()) << errors;
  EXPECT_TRUE(saw_not_ready) << "/readyz of the leaving node never answered 503 before it exited";
  ASSERT_TRUE(cluster_.wait_converged(2, 60)) << cluster_.last_status().dump(1);
  // Every acknowledged command is stored, once.
  httplib::Client c("127.0.0.1", other);
  c.set_read_timeout(10, 0);
  for (int a = 0; a < kActors; ++a) {
    const std::string id = "d-" + std::to_string(a);
    auto r = c.Get("/v1/default/actors/Counter/" + id + "/events?limit=10000");
    ASSERT_TRUE(r && r->status == 200) << id << ": " << (r ? r->body : "no reply");
    EXPECT_EQ(json::parse(r->body)["events"].size(), static_cast<size_t>(acked_[static_cast<size_t>(a)])) << id;
  }
}

}  // namespace
}  // namespace aether
