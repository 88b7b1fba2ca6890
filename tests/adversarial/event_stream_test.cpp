// GET /v1/{ns}/events/stream against a real aether-host: one SSE message per
// commit, filters, the token, the cap on streams, slow and never-reading
// clients (dropped, commands not slowed), a hot swap under a stream, and a
// host on NATS (whose connection does not echo) streaming its own commits.
#include <gtest/gtest.h>
#include <httplib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include <nats/nats.h>

#include <mutex>
#include <set>

#include "support/host_process.hpp"
#include "support/nats_server.hpp"
#include "support/raw_http.hpp"
#include "support/temp_dir.hpp"
#include "support/wait.hpp"

namespace aether {
namespace {

using json = nlohmann::json;
using test::raw_get;
using test::Socket;

class StreamHost {
 public:
  // `http` holds extra api.http keys, one per line, unindented; `head`,
  // top-level sections in place of the memory store.
  explicit StreamHost(const std::string& http = "", const std::string& head = "store:\n  backend: memory\n") {
    config_ = dir_.file("host.yaml");
    std::ofstream out(config_);
    out << head << "plugins:\n  dir: " << AETHER_PLUGIN_DIR
        << "\n  list: [bank, counter]\napi:\n  http:\n    listen: 127.0.0.1:0\n";
    std::istringstream lines(http);
    for (std::string line; std::getline(lines, line);) out << "    " << line << "\n";
  }
  bool start() {
    host_ = std::make_unique<test::HostProcess>(std::vector<std::string>{"--config", config_},
                                                std::map<std::string, std::string>{}, dir_.file("host.log"));
    return host_->start();
  }
  int port() const { return host_->port(); }
  std::string log() const { return host_ ? host_->log() : ""; }
  std::string data_dir() const { return dir_.file("data"); }
  std::unique_ptr<httplib::Client> client(const std::string& token = "") const {
    auto c = std::make_unique<httplib::Client>("127.0.0.1", host_->port());
    c->set_keep_alive(true);
    c->set_read_timeout(20);
    if (!token.empty()) c->set_bearer_token_auth(token);
    return c;
  }
  int command(const std::string& type, const std::string& id, const json& body, const std::string& token = "") const {
    auto r = client(token)->Post("/v1/default/actors/" + type + "/" + id + "/commands", body.dump(), "application/json");
    return r ? r->status : 0;
  }

 private:
  test::TempDir dir_;
  std::string config_;
  std::unique_ptr<test::HostProcess> host_;
};

// A stream reader: the reply head, then SSE messages as they come.
class StreamClient {
 public:
  StreamClient(int port, const std::string& query = "", const std::string& headers = "", int rcvbuf = 0)
      : socket_(port, 20, rcvbuf) {
    socket_.send(raw_get("/v1/default/events/stream" + query, headers));
  }
  Socket& socket() { return socket_; }
  // The status line's code once the head is in (0 if the connection ended).
  int status() {
    while (socket_.received().find("\r\n\r\n") == std::string::npos) {
      if (!socket_.receive_some(5000)) return 0;
    }
    return std::atoi(socket_.received().c_str() + 9);
  }
  // Waits (bounded) until `n` messages of `event` arrived; returns their data.
  std::vector<json> messages(size_t n, const std::string& event = "commit", int timeout_s = 20) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
    for (;;) {
      auto got = parse(event);
      if (got.size() >= n || std::chrono::steady_clock::now() > deadline) return got;
      if (!socket_.receive_some(200) && socket_.eof()) return got;
    }
  }
  std::vector<json> parse(const std::string& event) const {
    std::vector<json> out;
    const std::string& s = socket_.received();
    const std::string marker = "event: " + event + "\ndata: ";
    for (size_t p = s.find(marker); p != std::string::npos; p = s.find(marker, p + 1)) {
      const size_t end = s.find("\n\n", p);
      if (end == std::string::npos) break;
      out.push_back(json::parse(s.substr(p + marker.size(), end - p - marker.size()), nullptr, false));
    }
    return out;
  }

 private:
  Socket socket_;
};

TEST(EventStream, OneMessagePerCommitFilteredByTypeAndId) {
  StreamHost host;
  ASSERT_TRUE(host.start()) << host.log();
  StreamClient all(host.port());
  StreamClient counters(host.port(), "?type=Counter");
  StreamClient one(host.port(), "?type=BankAccount&id=acc-1");
  ASSERT_EQ(all.status(), 200) << all.socket().received();
  ASSERT_EQ(counters.status(), 200);
  ASSERT_EQ(one.status(), 200);
  EXPECT_NE(all.socket().received().find("Content-Type: text/event-stream"), std::string::npos);
  ASSERT_EQ(host.command("BankAccount", "acc-1", {{"command", "Open"}, {"payload", {{"owner", "ann"}}}}), 200);
  ASSERT_EQ(host.command("BankAccount", "acc-2", {{"command", "Open"}, {"payload", {{"owner", "bob"}}}}), 200);
  ASSERT_EQ(host.command("Counter", "c", {{"command", "Increment"}}), 200);
  ASSERT_EQ(host.command("BankAccount", "acc-1", {{"command", "Deposit"}, {"payload", {{"amount", 5}}}}), 200);
  const auto a = all.messages(4);
  ASSERT_EQ(a.size(), 4u) << all.socket().received();
  const auto c = counters.messages(1);
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c[0]["type"], "Counter");
  const auto o = one.messages(2);
  ASSERT_EQ(o.size(), 2u);
  // The commit format of the events subject.
  EXPECT_EQ(o[1]["actor_id"], "acc-1");
  EXPECT_EQ(o[1]["first_version"], 2);
  EXPECT_EQ(o[1]["version"], 2);
  ASSERT_EQ(o[1]["events"].size(), 1u);
  EXPECT_EQ(o[1]["events"][0]["type"], "Deposited");
  EXPECT_EQ(o[1]["events"][0]["payload"]["amount"], 5);
  EXPECT_EQ(o[1]["events"][0]["id"], "default.BankAccount.acc-1.2");
  EXPECT_EQ(counters.parse("commit").size(), 1u) << "no other type on a filtered stream";
}

// A host on NATS does not receive its own commits from the server (its
// connection does not echo): the store (jetstream), the outbox relay
// (sqlite) or the bus (memory) hands them to its own event streams. Each
// commit reaches a stream on that host once, in each actor's order, and a
// raw NATS subscriber (another process) gets the same commits.
class NatsEventStream : public testing::TestWithParam<std::string> {};

TEST_P(NatsEventStream, AHostStreamsItsOwnCommitsOnceEach) {
  test::NatsServer server;
  test::TempDir data;
  const std::string backend = GetParam();
  std::string head = "node:\n  id: node-1\nnats:\n  enabled: true\n  servers: [\"" + server.url() +
                     "\"]\n  ingress: false\nstore:\n  backend: " + backend + "\n";
  if (backend == "sqlite") head += "  sqlite:\n    path: " + data.file("aether.db") + "\n";
  StreamHost host("", head);
  ASSERT_TRUE(host.start()) << host.log();
  // Another process's view: a raw subscriber on the events subjects.
  natsConnection* nc = nullptr;
  ASSERT_EQ(natsConnection_ConnectTo(&nc, server.url().c_str()), NATS_OK);
  struct Raw {
    std::mutex mu;
    std::vector<std::string> subjects;
  } raw;
  natsSubscription* sub = nullptr;
  ASSERT_EQ(natsConnection_Subscribe(
                &sub, nc, "aether.default.events.>",
                [](natsConnection*, natsSubscription*, natsMsg* m, void* closure) {
                  auto* r = static_cast<Raw*>(closure);
                  std::lock_guard lock(r->mu);
                  r->subjects.push_back(natsMsg_GetSubject(m));
                  natsMsg_Destroy(m);
                },
                &raw),
            NATS_OK);
  ASSERT_EQ(natsConnection_Flush(nc), NATS_OK);
  StreamClient stream(host.port());
  ASSERT_EQ(stream.status(), 200) << stream.socket().received();
  constexpr int kActors = 4, kEach = 5;
  for (int i = 0; i < kEach; ++i) {
    for (int a = 0; a < kActors; ++a) {
      ASSERT_EQ(host.command("Counter", "own-" + std::to_string(a), {{"command", "Increment"}}), 200) << host.log();
    }
  }
  const auto got = stream.messages(kActors * kEach);
  ASSERT_EQ(got.size(), static_cast<size_t>(kActors * kEach)) << stream.socket().received();
  // None more: no commit twice (bounded wait for a straggler).
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  (void)stream.socket().receive_some(200);
  EXPECT_EQ(stream.parse("commit").size(), static_cast<size_t>(kActors * kEach)) << stream.socket().received();
  std::map<std::string, uint64_t> last;
  std::set<std::string> seen;
  for (const json& c : got) {
    ASSERT_TRUE(c.is_object());
    const std::string id = c["actor_id"];
    const uint64_t v = c["version"];
    EXPECT_EQ(v, last[id] + 1) << id << " out of order";
    last[id] = v;
    EXPECT_TRUE(seen.insert(id + "/" + std::to_string(v)).second) << id << " v" << v << " twice";
  }
  for (int a = 0; a < kActors; ++a) EXPECT_EQ(last["own-" + std::to_string(a)], static_cast<uint64_t>(kEach));
  EXPECT_TRUE(test::eventually(
      [&] {
        std::lock_guard lock(raw.mu);
        return raw.subjects.size() >= static_cast<size_t>(kActors * kEach);
      },
      test::kWaitSeconds))
      << "a raw subscriber got " << raw.subjects.size();
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // none more (no fault: no publish retried)
  {
    std::lock_guard lock(raw.mu);
    EXPECT_EQ(raw.subjects.size(), static_cast<size_t>(kActors * kEach));
  }
  natsSubscription_Destroy(sub);
  natsConnection_Destroy(nc);
}

INSTANTIATE_TEST_SUITE_P(Backends, NatsEventStream, testing::Values("jetstream", "sqlite", "memory"),
                         [](const auto& info) { return info.param; });

TEST(EventStream, BadFiltersTokenAndOrigin) {
  StreamHost host("bearer_token: s3cret\nallowed_origins: [\"https://console.example\"]\n");
  ASSERT_TRUE(host.start()) << host.log();
  StreamClient none(host.port());
  EXPECT_EQ(none.status(), 401);
  StreamClient wrong(host.port(), "", "Authorization: Bearer nope\r\n");
  EXPECT_EQ(wrong.status(), 401);
  StreamClient foreign(host.port(), "", "Authorization: Bearer s3cret\r\nOrigin: https://evil.example\r\n");
  EXPECT_EQ(foreign.status(), 403);
  StreamClient bad(host.port(), "?type=a.b", "Authorization: Bearer s3cret\r\n");
  EXPECT_EQ(bad.status(), 400);
  EXPECT_NE(bad.socket().received().find("query parameter 'type'"), std::string::npos) << bad.socket().received();
  StreamClient ok(host.port(), "", "Authorization: Bearer s3cret\r\nOrigin: https://console.example\r\n");
  ASSERT_EQ(ok.status(), 200);
  EXPECT_NE(ok.socket().received().find("Access-Control-Allow-Origin: https://console.example"), std::string::npos);
  ASSERT_EQ(host.command("Counter", "t", {{"command", "Increment"}}, "s3cret"), 200);
  EXPECT_EQ(ok.messages(1).size(), 1u);
}

// Opens with a large payload: a few fill the socket buffers of a client that
// does not read.
void flood(const StreamHost& host, const std::string& prefix, int n) {
  const std::string owner(60000, 'o');
  for (int i = 0; i < n; ++i) {
    ASSERT_EQ(host.command("BankAccount", prefix + std::to_string(i), {{"command", "Open"}, {"payload", {{"owner", owner}}}}),
              200);
  }
}

// Increments from 4 keep-alive clients: how many of `n` were answered 200.
int increments_ok(const StreamHost& host, const std::string& id, int n) {
  std::atomic<int> ok{0};
  std::vector<std::thread> workers;
  for (int w = 0; w < 4; ++w) {
    workers.emplace_back([&, w] {
      auto c = host.client();
      for (int i = 0; i < n / 4; ++i) {
        auto r = c->Post("/v1/default/actors/Counter/" + id + std::to_string(w) + "/commands",
                         R"({"command":"Increment"})", "application/json");
        if (r && r->status == 200) ok.fetch_add(1);
      }
    });
  }
  for (auto& t : workers) t.join();
  return ok.load();
}

TEST(EventStream, NeverReadingClientIsDroppedWithoutHoldingCommands) {
  StreamHost host("event_stream_queue: 8\nmax_event_streams: 1\nrequest_timeout: 3s\n");
  ASSERT_TRUE(host.start()) << host.log();
  ASSERT_EQ(increments_ok(host, "base", 160), 160);
  StreamClient stuck(host.port(), "", "", 4096);
  ASSERT_EQ(stuck.status(), 200);
  StreamClient second(host.port());
  EXPECT_EQ(second.status(), 503) << "max_event_streams is 1";
  flood(host, "stuck-", 60);
  // Every command is answered while the client holds its stream without
  // reading (a command that waited on it would time out: request_timeout 3s).
  EXPECT_EQ(increments_ok(host, "with", 160), 160) << "a client that never reads must not hold commands";
  // Dropped: its connection ends and its slot is free again.
  EXPECT_TRUE(stuck.socket().closed_within(30));
  EXPECT_TRUE(test::eventually([&] { return StreamClient(host.port()).status() == 200; }, test::kWaitSeconds, 100));
}

TEST(EventStream, SlowClientGetsAFinalMessage) {
  StreamHost host("event_stream_queue: 4\n");
  ASSERT_TRUE(host.start()) << host.log();
  StreamClient slow(host.port(), "?type=BankAccount", "", 4096);
  ASSERT_EQ(slow.status(), 200);
  flood(host, "slow-", 60);
  // Now it reads: what was sent, then the final message, then the end.
  ASSERT_TRUE(slow.socket().closed_within(30));
  const auto dropped = slow.parse("dropped");
  ASSERT_EQ(dropped.size(), 1u) << slow.socket().received().substr(0, 300);
  EXPECT_EQ(dropped[0]["error"]["code"], "slow_consumer");
  EXPECT_LT(slow.parse("commit").size(), 60u);
}

TEST(EventStream, SurvivesAHotSwap) {
  StreamHost host;
  ASSERT_TRUE(host.start()) << host.log();
  StreamClient s(host.port(), "?type=Counter");
  ASSERT_EQ(s.status(), 200);
  ASSERT_EQ(host.command("Counter", "swap", {{"command", "Increment"}}), 200);
  ASSERT_EQ(s.messages(1).size(), 1u);
  auto r = host.client()->Post("/v1/plugins/counter/reload", "{}", "application/json");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  ASSERT_EQ(host.command("Counter", "swap", {{"command", "Increment"}}), 200);
  const auto after = s.messages(2);
  ASSERT_EQ(after.size(), 2u) << s.socket().received();
  EXPECT_EQ(after[1]["version"], 2);
}

// The console's files load without the token (a browser cannot send one with
// a page load); every API call still needs it. A POST from the page itself
// carries Origin http://<Host>: served when Host is an IP address or
// localhost, refused for a DNS name (which a foreign page could rebind).
TEST(EventStream, ConsoleFilesAndSameOriginPosts) {
  StreamHost host("bearer_token: s3cret\n");
  ASSERT_TRUE(host.start()) << host.log();
  for (const char* path : {"/ui", "/ui/", "/ui/app.js", "/ui/style.css"}) {
    Socket s(host.port());
    const auto r = s.request(raw_get(path));
    EXPECT_EQ(r.status, 200) << path;
    EXPECT_FALSE(r.body.empty()) << path;
  }
  for (const char* path : {"/ui/nope.js", "/ui/../v1/plugins", "/ui/%2e%2e/v1/plugins"}) {
    Socket s(host.port());
    const auto r = s.request(raw_get(path));
    EXPECT_EQ(r.status, 404) << path << ": a console path never reaches another route";
    EXPECT_EQ(r.body.find("plugins\":["), std::string::npos) << r.body;
  }
  Socket api(host.port());
  EXPECT_EQ(api.request(raw_get("/v1/plugins")).status, 401);
  Socket post_ui(host.port());
  EXPECT_EQ(post_ui.request(test::raw_post("/ui", "{}")).status, 401) << "only GET of the files is open";
  const std::string self = "127.0.0.1:" + std::to_string(host.port());
  const std::string body = R"({"command":"Increment"})";
  auto post = [&](const std::string& h, const std::string& origin) {
    Socket s(host.port());
    return s.request("POST /v1/default/actors/Counter/o/commands HTTP/1.1\r\nHost: " + h +
                     "\r\nAuthorization: Bearer s3cret\r\nContent-Type: application/json\r\nOrigin: " + origin +
                     "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body)
        .status;
  };
  EXPECT_EQ(post(self, "http://" + self), 200);
  EXPECT_EQ(post("localhost:1", "http://localhost:1"), 200);
  EXPECT_EQ(post("rebound.example:1", "http://rebound.example:1"), 403);
  EXPECT_EQ(post(self, "http://127.0.0.2:1"), 403);
  EXPECT_EQ(post(self, "https://" + self), 403);
}

}  // namespace
}  // namespace aether
