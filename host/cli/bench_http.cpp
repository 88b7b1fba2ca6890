// `aether bench` over HTTP: event-driven clients (epoll), a few threads for
// any number of connections, so that the load generator is not a thread per
// connection competing with the host for the cores.
#include "bench_loop.hpp"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <cstdlib>
#include <memory>
#include <nlohmann/json.hpp>
#include <thread>

namespace aether::cli {

std::string error_code_of(int status, const std::string& body) {
  const auto j = nlohmann::json::parse(body, nullptr, false);
  if (!j.is_discarded() && j.is_object() && j.contains("error") && j["error"].is_object()) {
    const auto& c = j["error"].value("code", nlohmann::json());
    if (c.is_string()) return c.get<std::string>();
  }
  return "http_" + std::to_string(status);
}

namespace {

// Finds header `name` (lower case) in the lower-cased head; empty if absent.
std::string header_value(const std::string& lower_head, const std::string& name) {
  const size_t at = lower_head.find("\r\n" + name + ":");
  if (at == std::string::npos) return {};
  const size_t start = lower_head.find_first_not_of(' ', at + name.size() + 3);
  if (start == std::string::npos) return {};
  const size_t end = lower_head.find("\r\n", start);
  return lower_head.substr(start, end - start);
}

}  // namespace

ReplyParse parse_reply(std::string& buffer, int& status, std::string& body, bool& close_after) {
  const size_t head_end = buffer.find("\r\n\r\n");
  if (head_end == std::string::npos) return buffer.size() > 65536 ? ReplyParse::kBad : ReplyParse::kMore;
  std::string head = buffer.substr(0, head_end + 2);
  std::transform(head.begin(), head.end(), head.begin(), [](unsigned char c) { return std::tolower(c); });
  status = head.size() > 12 ? std::atoi(head.c_str() + 9) : 0;
  const std::string length = header_value(head, "content-length");
  char* end = nullptr;
  const unsigned long long body_size = std::strtoull(length.c_str(), &end, 10);
  // No Content-Length (chunked replies are not read), or a body over 64 MiB.
  if (status < 100 || length.empty() || *end != '\0' || body_size > (64u << 20)) return ReplyParse::kBad;
  const size_t total = head_end + 4 + static_cast<size_t>(body_size);
  if (buffer.size() < total) return ReplyParse::kMore;
  close_after = header_value(head, "connection") == "close";
  body.assign(buffer, head_end + 4, total - head_end - 4);
  buffer.erase(0, total);
  return ReplyParse::kDone;
}

namespace {

struct Conn {
  uint32_t index = 0;  // the client's number
  uint64_t next = 0;   // its next target
  int fd = -1;
  const std::string* out = nullptr;  // the request being sent
  size_t written = 0;
  std::string in;
  bool busy = false;  // a request in flight
  bool done = false;  // past the end, nothing in flight
  BenchClock::time_point start, retry_at;
};

// One event-loop thread and the clients it runs.
class Loop {
 public:
  Loop(const Plan& plan, const sockaddr_storage& addr, socklen_t addr_len, uint32_t clients, Totals& totals,
       std::vector<ClientResult>& results)
      : plan_(plan), addr_(addr), addr_len_(addr_len), clients_(clients), totals_(totals), results_(results),
        epoll_(epoll_create1(EPOLL_CLOEXEC)) {}
  ~Loop() {
    for (auto& c : conns_) close_conn(*c);
    if (epoll_ >= 0) ::close(epoll_);
  }

  void add(uint32_t index) {
    auto c = std::make_unique<Conn>();
    c->index = index;
    c->next = index % plan_.targets.size();
    conns_.push_back(std::move(c));
  }

  void run() {
    for (auto& c : conns_) begin(*c);
    epoll_event events[256];
    while (std::any_of(conns_.begin(), conns_.end(), [](const auto& c) { return !c->done; })) {
      const int n = epoll_wait(epoll_, events, 256, 20);
      for (int i = 0; i < n; ++i) on_event(*static_cast<Conn*>(events[i].data.ptr), events[i].events);
      const auto now = BenchClock::now();
      for (auto& c : conns_) {
        if (c->busy && now - c->start > std::chrono::milliseconds(plan_.timeout_ms)) fail(*c, "timeout");
        if (!c->busy && !c->done && now >= c->retry_at) begin(*c);
      }
    }
  }

 private:
  bool connect_conn(Conn& c) {
    const int fd = ::socket(addr_.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return false;
    if (::connect(fd, reinterpret_cast<const sockaddr*>(&addr_), addr_len_) != 0) {
      ::close(fd);
      return false;
    }
    const int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.ptr = &c;
    epoll_ctl(epoll_, EPOLL_CTL_ADD, fd, &ev);
    c.fd = fd;
    return true;
  }

  void close_conn(Conn& c) {
    if (c.fd < 0) return;
    epoll_ctl(epoll_, EPOLL_CTL_DEL, c.fd, nullptr);
    ::close(c.fd);
    c.fd = -1;
    c.in.clear();
  }

  // Sends the client's next request, or ends it once the time is up.
  void begin(Conn& c) {
    const auto now = BenchClock::now();
    if (now >= plan_.end) {
      c.done = true;
      return;
    }
    totals_.sent.fetch_add(1, std::memory_order_relaxed);
    if (c.fd < 0 && !connect_conn(c)) {
      results_[c.index].error(totals_, "connect_failed");
      c.retry_at = now + std::chrono::milliseconds(10);  // do not spin on a host that is down
      return;
    }
    c.busy = true;
    c.start = now;
    c.out = &plan_.targets[c.next];
    c.written = 0;
    write_some(c);
  }

  void write_some(Conn& c) {
    while (c.written < c.out->size()) {
      const ssize_t n = ::send(c.fd, c.out->data() + c.written, c.out->size() - c.written, MSG_NOSIGNAL);
      if (n > 0) {
        c.written += static_cast<size_t>(n);
        continue;
      }
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return watch(c, EPOLLIN | EPOLLOUT);
      return fail(c, "send_failed");
    }
    watch(c, EPOLLIN);
  }

  void watch(Conn& c, uint32_t events) {
    epoll_event ev{};
    ev.events = events;
    ev.data.ptr = &c;
    epoll_ctl(epoll_, EPOLL_CTL_MOD, c.fd, &ev);
  }

  void on_event(Conn& c, uint32_t events) {
    if (c.fd < 0) return;
    if ((events & EPOLLOUT) != 0 && c.busy && c.written < c.out->size()) write_some(c);
    if ((events & (EPOLLIN | EPOLLERR | EPOLLHUP)) != 0 && c.fd >= 0) read_some(c);
  }

  void read_some(Conn& c) {
    char chunk[16384];
    for (;;) {
      const ssize_t n = ::recv(c.fd, chunk, sizeof chunk, 0);
      if (n > 0) {
        c.in.append(chunk, static_cast<size_t>(n));
        continue;
      }
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
      return fail(c, "connection_closed");
    }
    if (!c.busy) return fail(c, "bad_reply");  // bytes nobody asked for
    int status = 0;
    bool close_after = false;
    std::string body;
    const ReplyParse p = parse_reply(c.in, status, body, close_after);
    if (p == ReplyParse::kMore) return;
    if (p == ReplyParse::kBad) return fail(c, "bad_reply");
    c.busy = false;
    if (status >= 200 && status < 300) {
      results_[c.index].ok(totals_, c.start);
    } else {
      results_[c.index].error(totals_, error_code_of(status, body));
    }
    if (close_after) close_conn(c);
    c.next = (c.next + clients_) % plan_.targets.size();
    begin(c);
  }

  // The request in flight failed: counted as an error, the connection closed.
  void fail(Conn& c, const std::string& code) {
    close_conn(c);
    if (!c.busy) return;
    c.busy = false;
    results_[c.index].error(totals_, code);
    c.next = (c.next + clients_) % plan_.targets.size();
    c.retry_at = BenchClock::now();
  }

  const Plan& plan_;
  const sockaddr_storage addr_;
  const socklen_t addr_len_;
  const uint32_t clients_;
  Totals& totals_;
  std::vector<ClientResult>& results_;
  const int epoll_;
  std::vector<std::unique_ptr<Conn>> conns_;
};

bool resolve(const HttpTarget& t, sockaddr_storage& addr, socklen_t& len, std::string& error) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  if (const int rc = getaddrinfo(t.host.c_str(), t.port.c_str(), &hints, &res); rc != 0 || res == nullptr) {
    error = "cannot resolve " + t.host + ":" + t.port + ": " + gai_strerror(rc);
    return false;
  }
  std::memcpy(&addr, res->ai_addr, res->ai_addrlen);
  len = res->ai_addrlen;
  freeaddrinfo(res);
  return true;
}

}  // namespace

bool run_http_clients(const Plan& plan, const HttpTarget& target, uint32_t clients, Totals& totals,
                      std::vector<ClientResult>& results, std::string& error) {
  sockaddr_storage addr{};
  socklen_t len = 0;
  if (!resolve(target, addr, len, error)) return false;
  const uint32_t cores = std::max(1u, std::thread::hardware_concurrency());
  const uint32_t threads = std::min({clients, cores, 4u});
  std::vector<std::unique_ptr<Loop>> loops;
  for (uint32_t t = 0; t < threads; ++t) {
    loops.push_back(std::make_unique<Loop>(plan, addr, len, clients, totals, results));
  }
  for (uint32_t i = 0; i < clients; ++i) loops[i % threads]->add(i);
  std::vector<std::thread> running;
  for (auto& l : loops) running.emplace_back([&l] { l->run(); });
  for (auto& t : running) t.join();
  return true;
}

}  // namespace aether::cli
