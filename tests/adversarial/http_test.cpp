// Hostile HTTP clients against a real aether-host: idle and slow connections,
// too many connections, oversized headers and bodies, cross-site requests,
// and what the event-driven server must still do under them (serve others,
// keep-alive at scale, pipelining in order).
#include <gtest/gtest.h>
#include <httplib.h>

#include <atomic>
#include <cstring>
#include <dirent.h>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "support/host_process.hpp"
#include "support/raw_http.hpp"
#include "support/temp_dir.hpp"

namespace aether {
namespace {

using json = nlohmann::json;
using test::HostProcess;
using test::raise_descriptor_limit;
using test::raw_get;
using test::raw_post;
using test::rss_kib;
using test::Socket;

const std::string kIncrement = R"({"command":"Increment"})";
std::string counter(const std::string& id) { return "/v1/default/actors/Counter/" + id; }

// --- the host under test ------------------------------------------------------

class HttpHost {
 public:
  // `http` holds extra api.http keys, one per line, unindented.
  explicit HttpHost(const std::string& http = "", const std::string& listen = "127.0.0.1:0",
                    const std::string& store = "backend: memory") {
    config_ = dir_.file("host.yaml");
    std::ofstream out(config_);
    out << "store:\n  " << store << "\nplugins:\n  dir: " << AETHER_PLUGIN_DIR
        << "\n  list: [bank, counter]\napi:\n  http:\n    listen: " << listen << "\n";
    std::istringstream lines(http);
    for (std::string line; std::getline(lines, line);) out << "    " << line << "\n";
  }

  bool start() {
    host_ = std::make_unique<HostProcess>(std::vector<std::string>{"--config", config_},
                                          std::map<std::string, std::string>{}, dir_.file("host.log"));
    return host_->start();
  }

  HostProcess& process() { return *host_; }
  int port() const { return host_->port(); }
  const std::string& config() const { return config_; }
  std::string log() const { return host_ ? host_->log() : ""; }
  std::string file(const std::string& name) const { return dir_.file(name); }

  std::unique_ptr<httplib::Client> client() const {
    auto c = std::make_unique<httplib::Client>("127.0.0.1", host_->port());
    c->set_keep_alive(true);
    c->set_read_timeout(20);
    c->set_connection_timeout(10);
    return c;
  }

  // The version of Counter/id (0 if it has none).
  uint64_t counter_version(const std::string& id) const {
    auto r = client()->Get(counter(id));
    if (!r || r->status != 200) return 0;
    return json::parse(r->body)["version"].get<uint64_t>();
  }

 private:
  test::TempDir dir_;
  std::string config_;
  std::unique_ptr<HostProcess> host_;
};

// The pid of this test's aether-host child.
pid_t host_pid() {
  const pid_t self = getpid();
  DIR* d = opendir("/proc");
  pid_t found = -1;
  while (dirent* e = readdir(d)) {
    const pid_t pid = static_cast<pid_t>(std::atoi(e->d_name));
    if (pid <= 0) continue;
    const std::string stat = test::read_file("/proc/" + std::to_string(pid) + "/stat");
    const size_t close = stat.rfind(')');
    if (close == std::string::npos || stat.find("(aether-host)") == std::string::npos) continue;
    int ppid = 0;
    char state = 0;
    if (std::sscanf(stat.c_str() + close + 1, " %c %d", &state, &ppid) == 2 && ppid == self) found = pid;
  }
  closedir(d);
  return found;
}

// Every command and /healthz from a fresh client is answered.
void expect_others_served(const HttpHost& host, const std::string& id, int n) {
  auto c = host.client();
  for (int i = 0; i < n; ++i) {
    auto h = c->Get("/healthz");
    ASSERT_TRUE(h) << "healthz " << i << ": " << httplib::to_string(h.error());
    EXPECT_EQ(h->status, 200);
    auto r = c->Post(counter(id) + "/commands", kIncrement, "application/json");
    ASSERT_TRUE(r) << "command " << i << ": " << httplib::to_string(r.error());
    EXPECT_EQ(r->status, 200) << r->body;
  }
}

TEST(AdversarialHttp, IdleAndSlowlorisClientsDoNotStarveOthers) {
  HttpHost host("header_timeout: 60s\nidle_timeout: 60s\n");
  ASSERT_TRUE(host.start()) << host.log();
  std::vector<std::unique_ptr<Socket>> idle;
  for (int i = 0; i < 80; ++i) {
    idle.push_back(std::make_unique<Socket>(host.port()));
    ASSERT_EQ(idle.back()->request(raw_get("/healthz")).status, 200) << "idle " << i;
  }
  std::vector<std::unique_ptr<Socket>> slow;
  for (int i = 0; i < 16; ++i) slow.push_back(std::make_unique<Socket>(host.port()));
  std::atomic<bool> done{false};
  std::thread loris([&] {
    const std::string header = raw_get("/healthz", "X-Padding: " + std::string(200, 'a') + "\r\n");
    for (size_t b = 0; b < header.size() - 2 && !done.load(); ++b) {
      for (auto& s : slow) s->send(header.substr(b, 1));
      std::this_thread::sleep_for(std::chrono::seconds(1));
    }
  });
  std::this_thread::sleep_for(std::chrono::seconds(2));  // let the slow clients start
  expect_others_served(host, "starve", 20);
  done.store(true);
  loris.join();
  EXPECT_EQ(host.counter_version("starve"), 20u);
  EXPECT_EQ(idle.front()->request(raw_get("/healthz")).status, 200) << "idle connections stay usable";
}

TEST(AdversarialHttp, SlowHeadersSlowBodiesAndIdleConnectionsAreClosed) {
  HttpHost host("header_timeout: 1s\nidle_timeout: 1s\nrequest_timeout: 2s\n");
  ASSERT_TRUE(host.start()) << host.log();
  Socket loris(host.port());
  ASSERT_TRUE(loris.send("GET /healthz HTTP/1.1\r\n"));
  bool closed = false;
  for (int i = 0; i < 100 && !closed; ++i) {  // a byte every 200 ms, never the end
    closed = !loris.send("X") || loris.closed_within(0);
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  EXPECT_TRUE(closed || loris.closed_within(10)) << "slowloris never closed";
  EXPECT_EQ(loris.received().find("200"), std::string::npos);

  Socket slow_body(host.port());
  ASSERT_TRUE(slow_body.send("POST " + counter("slow") + "/commands HTTP/1.1\r\nHost: t\r\n"
                             "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"));
  EXPECT_TRUE(slow_body.closed_within(15)) << "a body that never ends must not hold the connection";

  Socket idle(host.port());
  ASSERT_EQ(idle.request(raw_get("/healthz")).status, 200);
  EXPECT_TRUE(idle.closed_within(15)) << "idle keep-alive connection not closed";
  EXPECT_EQ(host.counter_version("slow"), 0u);
}

// A connection's deadlines share one timer wait: a wait that ends before the
// deadline then in force waits again instead of closing, and an earlier
// deadline (a request's header deadline during a long idle timeout) ends the
// wait early.
TEST(AdversarialHttp, DeadlinesOfLaterRequestsOnAKeepAliveConnection) {
  HttpHost host("header_timeout: 1s\nidle_timeout: 60s\nrequest_timeout: 60s\n");
  ASSERT_TRUE(host.start()) << host.log();
  Socket c(host.port());
  ASSERT_EQ(c.request(raw_get("/healthz")).status, 200);
  // Longer than the header timeout armed for the first request: the
  // connection waits (idle, 60 s) for its next request and serves it.
  std::this_thread::sleep_for(std::chrono::milliseconds(2500));
  ASSERT_EQ(c.request(raw_post(counter("deadline") + "/commands", kIncrement)).status, 200);
  // The next request's headers never end: the header deadline (1 s) closes
  // the connection long before the idle timeout would.
  ASSERT_TRUE(c.send("GET /healthz HTTP/1.1\r\n"));
  EXPECT_TRUE(c.closed_within(15)) << "the header deadline of a later request did not close it";
  EXPECT_EQ(host.counter_version("deadline"), 1u);
}

// Replies keep HTTP's framing: HEAD gets the GET's Content-Length and no
// body; an HTTP/1.0 connection stays open only when it asks (and the reply
// says so); Connection: close is answered with it, then the connection ends.
TEST(AdversarialHttp, HeadHttp10AndConnectionCloseKeepTheirFraming) {
  HttpHost host;
  ASSERT_TRUE(host.start()) << host.log();
  Socket get(host.port());
  const auto full = get.request(raw_get("/healthz"));
  ASSERT_EQ(full.status, 200);
  EXPECT_TRUE(full.head.starts_with("HTTP/1.1 200 OK\r\n")) << full.head;

  Socket s(host.port());
  ASSERT_TRUE(s.send("HEAD /healthz HTTP/1.1\r\nHost: t\r\n\r\n" + raw_get("/healthz")));
  for (int i = 0; i < 200 && s.received().find(full.body) == std::string::npos && !s.eof(); ++i) {
    s.receive_some(100);
  }
  const std::string both = s.received();
  const size_t end = both.find("\r\n\r\n");
  ASSERT_NE(end, std::string::npos) << both;
  const std::string head = both.substr(0, end + 4);
  EXPECT_NE(head.find("Content-Length: " + std::to_string(full.body.size()) + "\r\n"), std::string::npos) << head;
  EXPECT_EQ(both.compare(end + 4, 13, "HTTP/1.1 200 "), 0) << "the HEAD reply carried a body:\n" << both;

  Socket ten(host.port());
  const auto kept = ten.request("GET /healthz HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
  EXPECT_EQ(kept.status, 200);
  EXPECT_TRUE(kept.head.starts_with("HTTP/1.0 200 OK\r\n")) << kept.head;
  EXPECT_TRUE(kept.has("Connection: keep-alive\r\n")) << kept.head;
  const auto last = ten.request("GET /healthz HTTP/1.0\r\n\r\n");
  EXPECT_EQ(last.status, 200) << "an HTTP/1.0 keep-alive connection must take a second request";
  EXPECT_FALSE(last.has("Connection:")) << last.head;
  EXPECT_TRUE(ten.closed_within(15)) << "HTTP/1.0 without keep-alive must close after its reply";

  Socket closing(host.port());
  const auto closed = closing.request(raw_get("/healthz", "Connection: close\r\n"));
  EXPECT_EQ(closed.status, 200);
  EXPECT_TRUE(closed.has("Connection: close\r\n")) << closed.head;
  EXPECT_TRUE(closing.closed_within(15));
}

TEST(AdversarialHttp, ConnectionsOverTheLimitAreRefusedAtOnce) {
  HttpHost host("max_connections: 8\n");
  ASSERT_TRUE(host.start()) << host.log();
  std::vector<std::unique_ptr<Socket>> held;
  for (int i = 0; i < 8; ++i) {
    held.push_back(std::make_unique<Socket>(host.port()));
    ASSERT_EQ(held.back()->request(raw_get("/healthz")).status, 200);
  }
  Socket extra(host.port());
  extra.send(raw_get("/healthz"));
  EXPECT_TRUE(extra.closed_within(10)) << "the connection over the limit must be closed";
  EXPECT_EQ(extra.received().find("HTTP/1.1 200"), std::string::npos) << extra.received();
  if (!extra.received().empty()) {
    EXPECT_NE(extra.received().find("503"), std::string::npos) << extra.received();
  }
  held.pop_back();
  bool served = false;  // the freed slot is usable again (bounded retries)
  for (int i = 0; i < 100 && !served; ++i) {
    Socket again(host.port());
    served = again.request(raw_get("/healthz")).status == 200;
    if (!served) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_TRUE(served);
}

TEST(AdversarialHttp, ChunkedBodyOverTheLimitIs413WithoutBufferingIt) {
  HttpHost host;
  ASSERT_TRUE(host.start()) << host.log();
  const pid_t pid = host_pid();
  ASSERT_GT(pid, 0);
  const uint64_t before = rss_kib(pid);
  Socket s(host.port());
  const int sent = test::send_chunked_body(s, counter("big") + "/commands", 200);  // 200 MiB at most
  Socket::Reply r;
  ASSERT_TRUE(s.read_reply(r)) << "no reply after " << sent << " MiB";
  EXPECT_EQ(r.status, 413) << r.body;
  EXPECT_EQ(json::parse(r.body)["error"]["code"], "payload_too_large");
  const uint64_t after = rss_kib(pid);
  if (test::kRssBoundsApply) {
    EXPECT_LT(after, before + 64 * 1024) << "RSS grew from " << before << " to " << after << " KiB";
  }
  EXPECT_EQ(host.counter_version("big"), 0u);
  std::cout << "sent " << sent << " MiB; host RSS " << before << " -> " << after << " KiB\n";
}

TEST(AdversarialHttp, TooManyOrTooLargeHeadersAre431) {
  HttpHost host("bearer_token: s3cret\n");
  ASSERT_TRUE(host.start()) << host.log();
  std::string many;
  for (int i = 0; i < 150; ++i) many += "X-H" + std::to_string(i) + ": v\r\n";
  Socket a(host.port());
  auto r = a.request(raw_get("/v1/plugins", many));
  EXPECT_EQ(r.status, 431) << r.body;
  EXPECT_NE(r.body.find("header fields (at most 100)"), std::string::npos) << r.body;
  Socket b(host.port());
  r = b.request(raw_get("/v1/plugins", "X-Big: " + std::string(20 << 10, 'b') + "\r\n"));
  EXPECT_EQ(r.status, 431) << r.body;
  EXPECT_EQ(json::parse(r.body)["error"]["code"], "headers_too_large");
  Socket c(host.port());
  r = c.request(raw_get("/v1/plugins/" + std::string(20 << 10, 'u')));
  EXPECT_EQ(r.status, 414) << r.body;
  Socket d(host.port());
  r = d.request(raw_get("/v1/plugins"));
  EXPECT_EQ(r.status, 401) << "the limits come before authentication, which still holds";
  EXPECT_TRUE(r.has("WWW-Authenticate: Bearer"));
}

TEST(AdversarialHttp, PostsNeedJsonContentType) {
  HttpHost host;
  ASSERT_TRUE(host.start()) << host.log();
  Socket s(host.port());
  ASSERT_EQ(s.request(raw_post(counter("ct") + "/commands", kIncrement)).status, 200);
  auto r = s.request(raw_post(counter("ct") + "/commands", kIncrement, "Content-Type: text/plain\r\n"));
  EXPECT_EQ(r.status, 415) << r.body;
  EXPECT_EQ(json::parse(r.body)["error"]["code"], "unsupported_media_type");
  Socket t(host.port());
  r = t.request(raw_post(counter("ct") + "/commands", kIncrement, ""));
  EXPECT_EQ(r.status, 415) << r.body;
  Socket u(host.port());
  r = u.request(raw_post("/v1/plugins/counter/reload", "", "Content-Type: text/plain\r\n"));
  EXPECT_EQ(r.status, 415) << "a cross-site form cannot reload plugins: " << r.body;
  EXPECT_EQ(host.counter_version("ct"), 1u) << "a text/plain POST ran a command";
  Socket v(host.port());
  r = v.request(raw_post(counter("ct") + "/commands", kIncrement, "Content-Type: Application/JSON; charset=utf-8\r\n"));
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(host.counter_version("ct"), 2u);
}

TEST(AdversarialHttp, RouteErrorsExpectContinueAndKeepAlive) {
  HttpHost host;
  ASSERT_TRUE(host.start()) << host.log();
  Socket s(host.port());
  auto r = s.request(raw_get("/nope?x=1"));
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(json::parse(r.body)["error"]["message"], "no route for GET /nope");
  r = s.request(raw_get("/v1/plugins/counter/reload"));
  EXPECT_EQ(r.status, 405) << r.body;
  EXPECT_TRUE(r.has("Allow: POST")) << r.head;
  r = s.request(raw_get(counter("k") + "/events?from=x"));
  EXPECT_EQ(r.status, 400) << r.body;
  ASSERT_TRUE(s.send("POST " + counter("k") + "/commands HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                     "Expect: 100-continue\r\nContent-Length: " + std::to_string(kIncrement.size()) + "\r\n\r\n"));
  Socket::Reply cont;
  ASSERT_TRUE(s.read_reply(cont));
  EXPECT_EQ(cont.status, 100);
  ASSERT_TRUE(s.send(kIncrement));
  ASSERT_TRUE(s.read_reply(r));
  EXPECT_EQ(r.status, 200) << r.body;
  for (int i = 0; i < 200; ++i) {  // no cap on requests per connection
    ASSERT_EQ(s.request(raw_get("/healthz")).status, 200) << i;
  }
}

TEST(AdversarialHttp, ForeignOriginsAreRefusedAllowedOnesGetCors) {
  HttpHost host("allowed_origins: [\"https://console.example\"]\n");
  ASSERT_TRUE(host.start()) << host.log();
  Socket s(host.port());
  auto r = s.request(raw_post(counter("o") + "/commands", kIncrement,
                          "Content-Type: application/json\r\nOrigin: https://evil.example\r\n"));
  EXPECT_EQ(r.status, 403) << r.body;
  EXPECT_EQ(json::parse(r.body)["error"]["code"], "forbidden_origin");
  Socket s2(host.port());
  r = s2.request(raw_get(counter("o"), "Origin: https://evil.example\r\n"));
  EXPECT_EQ(r.status, 403) << "reads are refused too";
  EXPECT_EQ(host.counter_version("o"), 0u) << "a foreign origin ran a command";
  Socket a(host.port());
  r = a.request("OPTIONS " + counter("o") + "/commands HTTP/1.1\r\nHost: t\r\nOrigin: https://console.example\r\n"
                "Access-Control-Request-Method: POST\r\n\r\n");
  EXPECT_EQ(r.status, 204);
  EXPECT_TRUE(r.has("Access-Control-Allow-Origin: https://console.example")) << r.head;
  EXPECT_TRUE(r.has("POST")) << r.head;
  r = a.request(raw_post(counter("o") + "/commands", kIncrement,
                     "Content-Type: application/json\r\nOrigin: https://console.example\r\n"));
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_TRUE(r.has("Access-Control-Allow-Origin: https://console.example")) << r.head;
  Socket p(host.port());
  r = p.request("OPTIONS " + counter("o") + "/commands HTTP/1.1\r\nHost: t\r\nOrigin: https://evil.example\r\n\r\n");
  EXPECT_EQ(r.status, 403);
  EXPECT_EQ(host.counter_version("o"), 1u);
}

TEST(AdversarialHttp, NonLoopbackListenWithoutTokenIsRefused) {
  HttpHost open("", "0.0.0.0:0");
  auto r = test::run_process({test::host_binary(), "--config", open.config()});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_NE(r.err.find(open.config() + ":"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("api.http.listen: '0.0.0.0:0' is not a loopback address"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("allow_unauthenticated_remote"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("listening"), std::string::npos);
  HttpHost allowed("allow_unauthenticated_remote: true\n", "0.0.0.0:0");
  r = test::run_process({test::host_binary(), "--check-config", allowed.config()});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  HttpHost token("bearer_token: s3cret\n", "0.0.0.0:0");
  r = test::run_process({test::host_binary(), "--check-config", token.config()});
  EXPECT_EQ(r.exit_code, 0) << r.err;
}

TEST(AdversarialHttp, SecondHostOnTheSamePortFailsNamingTheAddress) {
  HttpHost first;
  ASSERT_TRUE(first.start()) << first.log();
  const std::string addr = "127.0.0.1:" + std::to_string(first.port());
  HttpHost second("", addr);
  auto r = test::run_process({test::host_binary(), "--config", second.config()});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE((r.out + r.err).find("cannot listen on " + addr), std::string::npos) << r.out << r.err;
  EXPECT_EQ(first.client()->Get("/healthz")->status, 200);
}

TEST(AdversarialHttp, ThousandKeepAliveConnectionsWhileCommandsAreAnswered) {
  raise_descriptor_limit();
  HttpHost host("max_connections: 1500\nidle_timeout: 10m\nheader_timeout: 10m\n");
  ASSERT_TRUE(host.start()) << host.log();
  std::vector<std::unique_ptr<Socket>> held;
  for (int i = 0; i < 1000; ++i) {
    held.push_back(std::make_unique<Socket>(host.port()));
    ASSERT_TRUE(held.back()->connected()) << i;
    ASSERT_EQ(held.back()->request(raw_get("/healthz")).status, 200) << "connection " << i;
  }
  expect_others_served(host, "thousand", 200);
  EXPECT_EQ(host.counter_version("thousand"), 200u);
  int still_open = 0;
  for (auto& s : held) still_open += s->request(raw_get("/readyz")).status == 200 ? 1 : 0;
  EXPECT_EQ(still_open, 1000);
}

TEST(AdversarialHttp, HundredPipelinedRequestsAreAnsweredInOrder) {
  HttpHost host;
  ASSERT_TRUE(host.start()) << host.log();
  std::string batch;
  for (int i = 0; i < 100; ++i) {
    batch += i % 10 == 9 ? raw_get(counter("pipe")) : raw_post(counter("pipe") + "/commands", kIncrement);
  }
  Socket s(host.port());
  ASSERT_TRUE(s.send(batch));
  uint64_t increments = 0;
  for (int i = 0; i < 100; ++i) {
    Socket::Reply r;
    ASSERT_TRUE(s.read_reply(r)) << "reply " << i << " missing";
    ASSERT_EQ(r.status, 200) << i << ": " << r.body;
    if (i % 10 != 9) ++increments;
    EXPECT_EQ(json::parse(r.body)["version"].get<uint64_t>(), increments) << "reply " << i << " out of order";
  }
}

TEST(AdversarialHttp, StopAnswersTheRequestInProgressAndReadsNoMore) {
  test::TempDir data;
  HttpHost host("", "127.0.0.1:0", "backend: sqlite\n  sqlite:\n    path: " + data.file("aether.db"));
  ASSERT_TRUE(host.start()) << host.log();
  std::string batch;
  for (int i = 0; i < 100; ++i) batch += raw_post(counter("stop") + "/commands", kIncrement);
  Socket s(host.port());
  ASSERT_TRUE(s.send(batch));
  Socket::Reply r;
  ASSERT_TRUE(s.read_reply(r));
  ASSERT_EQ(r.status, 200);
  host.process().signal(SIGTERM);
  uint64_t answered = 1;
  while (s.read_reply(r)) {  // each command that ran is answered, in order, then the host closes
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(json::parse(r.body)["version"].get<uint64_t>(), ++answered);
  }
  EXPECT_EQ(host.process().stop(), 0) << host.log();
  std::cout << answered << " of 100 pipelined commands answered before the stop\n";
  ASSERT_TRUE(host.start()) << host.log();
  EXPECT_EQ(host.counter_version("stop"), answered) << "a command ran without its reply, or the reverse";
}

}  // namespace
}  // namespace aether
