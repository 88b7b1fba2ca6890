// The whole adversarial suite against ONE aether-host, one attack after the
// other, while a steady client deposits into a set of accounts and records
// every acknowledged deposit. At the end the host is the same process, it
// serves, its resident set is bounded, and every acknowledged deposit is in
// the accounts' state.
#include <gtest/gtest.h>
#include <httplib.h>

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <iostream>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "support/host_process.hpp"
#include "support/plugin_files.hpp"
#include "support/raw_http.hpp"
#include "support/temp_dir.hpp"
#include "support/wait.hpp"

namespace aether {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using test::raw_get;
using test::raw_post;
using test::Socket;

constexpr int kAccounts = 8;
constexpr int kMaxConnections = 64;
constexpr uint64_t kRssBoundKib = 256 * 1024;

std::string account(int i) { return "/v1/default/actors/BankAccount/steady-" + std::to_string(i); }
std::string deposit(int64_t amount) { return json{{"command", "Deposit"}, {"payload", {{"amount", amount}}}}.dump(); }
const std::string kIncrement = R"({"command":"Increment"})";

std::unique_ptr<httplib::Client> client_of(int port) {
  auto c = std::make_unique<httplib::Client>("127.0.0.1", port);
  c->set_keep_alive(true);
  c->set_tcp_nodelay(true);  // a POST's headers and body go in two writes
  c->set_connection_timeout(5);
  c->set_read_timeout(20);
  return c;
}

// The host: the embedded default configuration's sqlite store and example
// plugins, with the plugins in a directory of its own (so that reloads can
// be tried against it) and small connection limits.
class GauntletHost {
 public:
  GauntletHost() {
    fs::create_directories(plugins_);
    fs::create_directories(outside_);
    for (const char* p : {"bank", "order", "counter"}) {
      fs::copy_file(std::string(AETHER_PLUGIN_DIR) + "/" + p + ".so", plugins_ / (std::string(p) + ".so"));
    }
    std::ofstream(dir_.file("aether.yaml"))
        << "node:\n  id: gauntlet-1\n  namespace: default\n  data_dir: " << dir_.file("data") << "\n"
        << "store:\n  backend: sqlite\n  sqlite:\n    path: " << dir_.file("data/aether.db")
        << "\n    synchronous: full\n"
        << "plugins:\n  dir: " << plugins_.string() << "\n  list: [bank, order, counter]\n"
        << "actors:\n  idle_timeout: 5m\n  mailbox_size: 1024\n  snapshot:\n    every: 100\n    keep: 2\n"
        << "api:\n  http:\n    listen: 127.0.0.1:0\n    max_body_bytes: 1048576\n"
        << "    max_connections: " << kMaxConnections << "\n    header_timeout: 1s\n    idle_timeout: 2s\n";
  }

  bool start() {
    process_ = std::make_unique<test::HostProcess>(std::vector<std::string>{"--config", dir_.file("aether.yaml")},
                                                   std::map<std::string, std::string>{}, dir_.file("host.log"));
    return process_->start();
  }

  test::HostProcess& process() { return *process_; }
  int port() const { return process_->port(); }
  std::unique_ptr<httplib::Client> client() const { return client_of(port()); }
  const fs::path& plugins() const { return plugins_; }
  const fs::path& outside() const { return outside_; }

 private:
  test::TempDir dir_;
  fs::path plugins_ = dir_.path() / "plugins";
  fs::path outside_ = dir_.path() / "outside";
  std::unique_ptr<test::HostProcess> process_;
};

// The steady client: Deposits of 1..9 to the accounts in turn, each with an
// idempotency key of its own, retried with that key (bounded) until it is
// acknowledged, so that a reply lost to an attack never leaves a deposit in
// doubt. Records the sum and count of the acknowledged deposits per account.
class Depositor {
 public:
  explicit Depositor(int port) : port_(port), thread_([this] { run(); }) {}
  ~Depositor() { stop(); }

  void stop() {
    stop_.store(true);
    if (thread_.joinable()) thread_.join();
  }

  struct Acknowledged {
    int64_t sum = 0;
    uint64_t count = 0;
  };
  struct Last {
    int account = -1;
    std::string key;
    int64_t amount = 0;
  };
  Acknowledged of(int account) const {
    std::lock_guard lock(mutex_);
    return acknowledged_[account];
  }
  Last last() const {
    std::lock_guard lock(mutex_);
    return last_;
  }
  uint64_t total() const { return total_.load(); }
  uint64_t retries() const { return retries_.load(); }
  uint64_t unacknowledged() const { return unacknowledged_.load(); }

 private:
  void run() {
    auto c = client_of(port_);
    for (uint64_t n = 0; !stop_.load(); ++n) {
      const int acc = static_cast<int>(n % kAccounts);
      const int64_t amount = static_cast<int64_t>(n % 9) + 1;
      const std::string key = "steady-" + std::to_string(n);
      if (!send(*c, acc, amount, key)) {
        ++unacknowledged_;
        continue;
      }
      std::lock_guard lock(mutex_);
      acknowledged_[acc].sum += amount;
      ++acknowledged_[acc].count;
      last_ = {acc, key, amount};
      ++total_;
    }
  }

  // True once a 200 came back (a duplicate answer included), within ~30 s.
  bool send(httplib::Client& c, int acc, int64_t amount, const std::string& key) {
    for (int attempt = 0; attempt < 300; ++attempt) {
      auto r = c.Post(account(acc) + "/commands", {{"Idempotency-Key", key}}, deposit(amount), "application/json");
      if (r && r->status == 200) return true;
      if (r && r->status != 503) {
        std::cerr << "steady deposit " << key << ": " << r->status << " " << r->body << "\n";
        return false;
      }
      ++retries_;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return false;
  }

  const int port_;
  std::atomic<bool> stop_{false};
  mutable std::mutex mutex_;
  Acknowledged acknowledged_[kAccounts];
  Last last_;
  std::atomic<uint64_t> total_{0}, retries_{0}, unacknowledged_{0};
  std::thread thread_;
};

using test::eventually;

// Runs `one(client, i)` for i in [0, count) from `threads` keep-alive
// clients; returns how many calls returned false.
int in_parallel(int port, int count, int threads, const std::function<bool(httplib::Client&, int)>& one) {
  std::vector<std::future<int>> parts;
  for (int t = 0; t < threads; ++t) {
    parts.push_back(std::async(std::launch::async, [&, t] {
      auto c = client_of(port);
      int bad = 0;
      for (int i = t; i < count; i += threads) bad += one(*c, i) ? 0 : 1;
      return bad;
    }));
  }
  int bad = 0;
  for (auto& p : parts) bad += p.get();
  return bad;
}

json body_of(const httplib::Result& r) { return r ? json::parse(r->body, nullptr, false) : json(); }

// Expects `r` to be `status` with error code `code` and (if given) a message
// containing `text`.
void expect_error(const httplib::Result& r, int status, const std::string& code, const std::string& text = "") {
  ASSERT_TRUE(r) << "no reply: " << httplib::to_string(r.error());
  EXPECT_EQ(r->status, status) << r->body;
  const json j = body_of(r);
  EXPECT_EQ(j["error"]["code"], code) << r->body;
  if (!text.empty()) {
    EXPECT_NE(j["error"]["message"].get<std::string>().find(text), std::string::npos) << r->body;
  }
}

// Expects a raw reply with `status` and error code `code`.
void expect_raw_error(const Socket::Reply& r, int status, const std::string& code) {
  EXPECT_EQ(r.status, status) << r.head << r.body;
  EXPECT_EQ(json::parse(r.body, nullptr, false)["error"]["code"], code) << r.body;
}

class Gauntlet : public testing::Test {
 protected:
  void deep_and_invalid_json() {
    auto c = host_.client();
    const std::string deep = R"({"command":"Deposit","payload":{"amount":1,"x":)" + std::string(70000, '[') +
                             std::string(70000, ']') + "}}";
    expect_error(c->Post(account(0) + "/commands", deep, "application/json"), 400, "invalid_argument",
                 "nests deeper than 64 levels (api.max_json_depth)");
    expect_error(c->Post(account(0) + "/commands", "{\"command\":\"Deposit\",\"payload\":{\"amount\":\"\xff\"}}",
                         "application/json"),
                 400, "invalid_argument", "not valid UTF-8");
  }

  void unknown_actor_types() {
    const int bad = in_parallel(host_.port(), 20000, 4, [](httplib::Client& c, int i) {
      auto r = c.Post("/v1/default/actors/NoSuchType" + std::to_string(i) + "/x/commands", kIncrement,
                      "application/json");
      return r && r->status == 404;
    });
    EXPECT_EQ(bad, 0) << "of 20,000 commands to unknown types were not answered 404";
    auto m = host_.client()->Get("/metrics");
    ASSERT_TRUE(m);
    std::cout << "gauntlet: /metrics is " << m->body.size() << " bytes after 20,000 unknown types\n";
    EXPECT_LT(m->body.size(), 100u * 1024);
    EXPECT_EQ(m->body.find("NoSuchType"), std::string::npos);
  }

  // Idle and slowloris connections fill the connection limit (the steady
  // client and one more keep theirs); those beyond it are answered or
  // refused, never left hanging; the host's timeouts close the hostile ones.
  void slow_and_idle_connections() {
    auto others = host_.client();
    ASSERT_EQ(others->Get("/healthz")->status, 200);
    std::vector<std::unique_ptr<Socket>> idle, slow;
    const int hostile = kMaxConnections - 2;  // the steady client and `others` hold the rest
    for (int i = 0; i < hostile / 2; ++i) {
      // The clients of the phases before have closed their connections; the
      // host may not have reaped the last of them yet (a 503 "too many
      // connections"): such a slot is asked for again until it is free.
      int status = 0;
      eventually([&] {
        idle.push_back(std::make_unique<Socket>(host_.port()));
        status = idle.back()->request(raw_get("/healthz")).status;
        if (status != 503) return true;
        idle.pop_back();
        return false;
      });
      EXPECT_EQ(status, 200) << "idle " << i;
      slow.push_back(std::make_unique<Socket>(host_.port()));
      slow.back()->send("GET /healthz HTTP/1.1\r\nHost: t\r\nX-Slow: ");
    }
    auto h = others->Get("/healthz");
    ASSERT_TRUE(h) << "a connected client was starved";
    EXPECT_EQ(h->status, 200);
    auto r = others->Post("/v1/default/actors/Counter/during-slowloris/commands", kIncrement, "application/json");
    ASSERT_TRUE(r) << "a connected client was starved";
    EXPECT_EQ(r->status, 200) << r->body;
    int served = 0, refused = 0;
    for (int i = 0; i < 16; ++i) {  // beyond the limit: served or refused at once, never queued
      Socket extra(host_.port());
      extra.send(raw_get("/healthz", "Connection: close\r\n"));
      EXPECT_TRUE(extra.closed_within(10)) << "connection " << i << " beyond the limit hangs";
      served += extra.received().find("HTTP/1.1 200") == 0 ? 1 : 0;
      refused += extra.received().find("HTTP/1.1 200") == 0 ? 0 : 1;
    }
    for (int drip = 0; drip < 15; ++drip) {  // a byte every 200 ms, the header never ends
      for (auto& s : slow) s->send("a");
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    int closed = 0;
    for (auto& s : slow) closed += s->closed_within(10) ? 1 : 0;
    for (auto& s : idle) closed += s->closed_within(10) ? 1 : 0;
    std::cout << "gauntlet: " << hostile << " idle/slowloris connections held, beyond the limit " << served
              << " served and " << refused << " refused; " << closed << " closed by the host's timeouts\n";
    EXPECT_EQ(closed, hostile) << "the host left idle or slowloris connections open";
    EXPECT_EQ(host_.client()->Get("/healthz")->status, 200);
  }

  void oversized_requests() {
    Socket chunked(host_.port());
    const int sent = test::send_chunked_body(chunked, account(1) + "/commands", 200);
    Socket::Reply r;
    ASSERT_TRUE(chunked.read_reply(r)) << "no reply to a chunked body after " << sent << " MiB";
    expect_raw_error(r, 413, "payload_too_large");
    std::cout << "gauntlet: 413 after " << sent << " MiB of a 200 MiB chunked body\n";
    std::string many;
    for (int i = 0; i < 150; ++i) many += "X-H" + std::to_string(i) + ": v\r\n";
    Socket a(host_.port());
    r = a.request(raw_get(account(1), many));
    expect_raw_error(r, 431, "headers_too_large");
    Socket b(host_.port());
    r = b.request(raw_post(account(1) + "/commands", deposit(1),
                           "Content-Type: application/json\r\nX-Big: " + std::string(20 << 10, 'b') + "\r\n"));
    expect_raw_error(r, 431, "headers_too_large");
  }

  void cross_site_requests() {
    Socket plain(host_.port());
    expect_raw_error(plain.request(raw_post(account(2) + "/commands", deposit(1), "Content-Type: text/plain\r\n")),
                     415, "unsupported_media_type");
    Socket reload(host_.port());
    expect_raw_error(reload.request(raw_post("/v1/plugins/bank/reload", "", "Content-Type: text/plain\r\n")), 415,
                     "unsupported_media_type");
    Socket origin(host_.port());
    expect_raw_error(origin.request(raw_post(account(2) + "/commands", deposit(1),
                                             "Content-Type: application/json\r\nOrigin: https://evil.example\r\n")),
                     403, "forbidden_origin");
  }

  void absent_actor_reads() {
    const int bad = in_parallel(host_.port(), 30000, 4, [](httplib::Client& c, int i) {
      auto r = c.Get("/v1/default/actors/Counter/ghost-" + std::to_string(i));
      return r && r->status == 404;
    });
    EXPECT_EQ(bad, 0) << "of 30,000 reads of absent actors were not answered 404";
  }

  void hostile_plugin_files() {
    auto c = host_.client();
    const fs::path half = host_.plugins() / "bank_half.so";
    test::write_in_place(half, test::truncated_image(host_.plugins() / "bank.so"));
    expect_error(c->Post("/v1/plugins/bank/reload", json{{"file", half.string()}}.dump(), "application/json"), 400,
                 "invalid_argument", "incomplete ELF image");
    const fs::path elsewhere = host_.outside() / "counter.so";
    fs::copy_file(host_.plugins() / "counter.so", elsewhere);
    expect_error(c->Post("/v1/plugins/counter/reload", json{{"file", elsewhere.string()}}.dump(), "application/json"),
                 400, "invalid_argument", "is outside the directories plugins may be loaded from");
  }

  void odd_reads_and_writes(const Depositor& depositor) {
    auto c = host_.client();
    auto r = c->Get(account(3) + "/events?from=9223372036854775808");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200) << r->body;
    EXPECT_EQ(body_of(r)["events"], json::array()) << r->body;
    const Depositor::Last last = depositor.last();  // a key still in its actor's window
    ASSERT_GE(last.account, 0);
    expect_error(c->Post(account(last.account) + "/commands", {{"Idempotency-Key", last.key}},
                         deposit(last.amount + 1000), "application/json"),
                 422, "idempotency_key_reused");
    const std::string rich = "/v1/default/actors/BankAccount/rich/commands";
    ASSERT_EQ(c->Post(rich, R"({"command":"Open","payload":{"owner":"rich"}})", "application/json")->status, 200);
    ASSERT_EQ(c->Post(rich, deposit(INT64_MAX), "application/json")->status, 200);
    expect_error(c->Post(rich, deposit(1), "application/json"), 422, "balance_overflow");
  }

  // Every account holds exactly its acknowledged deposits (and its Open).
  void expect_every_acknowledged_deposit(const Depositor& depositor) {
    auto c = host_.client();
    for (int i = 0; i < kAccounts; ++i) {
      auto r = c->Get(account(i));
      ASSERT_TRUE(r);
      ASSERT_EQ(r->status, 200) << r->body;
      const json state = body_of(r);
      const Depositor::Acknowledged ack = depositor.of(i);
      EXPECT_EQ(state["version"], 1 + ack.count) << account(i) << ": " << r->body;
      EXPECT_EQ(state["state"]["balance"], ack.sum) << account(i) << ": " << r->body;
    }
  }

  GauntletHost host_;
};

// The host is still the child we started (not a zombie, not replaced).
bool alive(pid_t pid) {
  const std::string stat = test::read_file("/proc/" + std::to_string(pid) + "/stat");
  const size_t close = stat.rfind(')');
  return stat.find("(aether-host)") != std::string::npos && close != std::string::npos &&
         stat.size() > close + 2 && stat[close + 2] != 'Z';
}

TEST_F(Gauntlet, OneHostTakesEveryAttackAndKeepsEveryAcknowledgedCommand) {
  test::raise_descriptor_limit();
  ASSERT_TRUE(host_.start()) << host_.process().log();
  const pid_t pid = host_.process().pid();
  auto c = host_.client();
  for (int i = 0; i < kAccounts; ++i) {
    ASSERT_EQ(c->Post(account(i) + "/commands", R"({"command":"Open","payload":{"owner":"steady"}})",
                      "application/json")->status, 200);
  }
  Depositor depositor(host_.port());
  ASSERT_TRUE(eventually([&] { return depositor.total() >= 50; })) << host_.process().log();
  const uint64_t before = test::rss_kib(pid);

  const std::vector<std::pair<const char*, std::function<void()>>> attacks = {
      {"70,000-deep and invalid UTF-8 bodies", [&] { deep_and_invalid_json(); }},
      {"20,000 unknown actor types", [&] { unknown_actor_types(); }},
      {"idle and slowloris connections up to max_connections", [&] { slow_and_idle_connections(); }},
      {"chunked 200 MiB body, too many and too large headers", [&] { oversized_requests(); }},
      {"text/plain POSTs and a foreign Origin", [&] { cross_site_requests(); }},
      {"30,000 reads of absent actors", [&] { absent_actor_reads(); }},
      {"reload of a truncated .so and of a file outside plugins.dir", [&] { hostile_plugin_files(); }},
      {"events from 2^63, a reused idempotency key, an overflowing deposit",
       [&] { odd_reads_and_writes(depositor); }},
  };
  for (const auto& [name, attack] : attacks) {
    const uint64_t acknowledged = depositor.total();
    SCOPED_TRACE(name);
    const auto started = std::chrono::steady_clock::now();
    attack();
    const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started);
    ASSERT_TRUE(alive(pid)) << "the host died under: " << name << "\n" << host_.process().log();
    ASSERT_TRUE(eventually([&] { return depositor.total() >= acknowledged + 10; }))
        << "the steady client stalled after: " << name;
    std::cout << "gauntlet: " << name << ": done in " << took.count() << " ms, " << depositor.total() - acknowledged
              << " deposits acknowledged during and just after it, host RSS " << test::rss_kib(pid) << " KiB\n";
  }
  depositor.stop();

  EXPECT_EQ(host_.process().pid(), pid);
  ASSERT_TRUE(alive(pid)) << host_.process().log();
  auto h = c->Get("/healthz");
  ASSERT_TRUE(h);
  EXPECT_EQ(h->status, 200);
  auto r = c->Post("/v1/default/actors/Counter/after-the-gauntlet/commands", kIncrement, "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(depositor.unacknowledged(), 0u) << "deposits never acknowledged";
  expect_every_acknowledged_deposit(depositor);
  const uint64_t after = test::rss_kib(pid);
  std::cout << "gauntlet: " << depositor.total() << " deposits acknowledged (" << depositor.retries()
            << " retries with their key), all present\n"
            << "gauntlet: RSS before " << before << " KiB, after " << after << " KiB (bound " << kRssBoundKib
            << " KiB)\n";
  if (test::kRssBoundsApply) {
    EXPECT_LT(after, kRssBoundKib);
  }
}

}  // namespace
}  // namespace aether
