// `aether bench`: see bench.hpp. Each client is one thread with one request
// in flight (closed loop): it sends a command, waits for its reply, records
// the latency, and sends the next, round-robin over the actors it owns
// (client c sends to actors c, c + clients, c + 2 * clients, ... mod actors).
#include "bench.hpp"
#include "path_segment.hpp"

#include <nats/nats.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstdio>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

namespace aether::cli {
namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

// Counters shared by the clients (for the progress line) and what each
// client keeps for itself (merged at the end).
struct Totals {
  std::atomic<uint64_t> sent{0}, ok{0}, errors{0};
};

struct ClientResult {
  std::vector<uint32_t> latencies_us;  // of the successful commands
  std::map<std::string, uint64_t> errors;
};

// What a client needs to send commands: the targets (one per actor) and the
// body, built once.
struct Plan {
  std::vector<std::string> targets;  // HTTP request heads or NATS subjects
  std::string body;
  int64_t timeout_ms = 5000;
  Clock::time_point end;
};

std::string error_code_of(int status, const std::string& body) {
  const json j = json::parse(body, nullptr, false);
  if (!j.is_discarded() && j.is_object() && j.contains("error") && j["error"].is_object()) {
    const json& c = j["error"].value("code", json());
    if (c.is_string()) return c.get<std::string>();
  }
  return "http_" + std::to_string(status);
}


// --- HTTP ----------------------------------------------------------------------

struct HttpTarget {
  std::string host;
  std::string port;
};

bool parse_http_url(const std::string& url, HttpTarget& t, std::string& error) {
  const std::string scheme = "http://";
  if (url.rfind(scheme, 0) != 0) {
    error = "bench speaks plain http:// only, got " + url;
    return false;
  }
  std::string rest = url.substr(scheme.size());
  rest = rest.substr(0, rest.find('/'));
  const size_t colon = rest.rfind(':');
  t.host = colon == std::string::npos ? rest : rest.substr(0, colon);
  t.port = colon == std::string::npos ? "80" : rest.substr(colon + 1);
  if (t.host.empty() || t.port.empty()) {
    error = "no host in " + url;
    return false;
  }
  return true;
}

// One keep-alive connection; reconnects when the server closes it.
class HttpClient {
 public:
  HttpClient(const HttpTarget& t, int64_t timeout_ms) : target_(t), timeout_ms_(timeout_ms) {}
  ~HttpClient() { close_socket(); }

  // Sends `request` and reads one reply: its status and body, or 0 and a
  // transport error code in `body`.
  int exchange(const std::string& request, std::string& body) {
    if (fd_ < 0 && !connect_socket()) {
      body = "connect_failed";
      return 0;
    }
    if (!send_all(request)) {
      close_socket();
      body = "send_failed";
      return 0;
    }
    const int status = read_reply(body);
    if (status == 0 || close_after_) close_socket();
    return status;
  }

 private:
  bool connect_socket();
  bool send_all(const std::string& data);
  int read_reply(std::string& body);
  bool fill(std::string& error);
  void close_socket() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
    buffer_.clear();
  }

  HttpTarget target_;
  int64_t timeout_ms_;
  int fd_ = -1;
  bool close_after_ = false;
  std::string buffer_;
};

bool HttpClient::connect_socket() {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  if (getaddrinfo(target_.host.c_str(), target_.port.c_str(), &hints, &res) != 0) return false;
  for (addrinfo* a = res; a != nullptr; a = a->ai_next) {
    const int fd = ::socket(a->ai_family, a->ai_socktype, a->ai_protocol);
    if (fd < 0) continue;
    if (::connect(fd, a->ai_addr, a->ai_addrlen) == 0) {
      const int one = 1;
      setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      timeval tv{static_cast<time_t>(timeout_ms_ / 1000), static_cast<suseconds_t>((timeout_ms_ % 1000) * 1000)};
      setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
      setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
      fd_ = fd;
      break;
    }
    ::close(fd);
  }
  freeaddrinfo(res);
  return fd_ >= 0;
}

bool HttpClient::send_all(const std::string& data) {
  size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = ::send(fd_, data.data() + done, data.size() - done, MSG_NOSIGNAL);
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

// Reads more bytes into buffer_; false with `error` on timeout or close.
bool HttpClient::fill(std::string& error) {
  char chunk[16384];
  const ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
  if (n > 0) {
    buffer_.append(chunk, static_cast<size_t>(n));
    return true;
  }
  error = n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) ? "timeout" : "connection_closed";
  return false;
}

// Finds header `name` (lower case) in the lower-cased head; empty if absent.
std::string header_value(const std::string& lower_head, const std::string& name) {
  const size_t at = lower_head.find("\r\n" + name + ":");
  if (at == std::string::npos) return {};
  const size_t start = lower_head.find_first_not_of(' ', at + name.size() + 3);
  if (start == std::string::npos) return {};
  const size_t end = lower_head.find("\r\n", start);
  return lower_head.substr(start, end - start);
}

int HttpClient::read_reply(std::string& body) {
  size_t head_end;
  while ((head_end = buffer_.find("\r\n\r\n")) == std::string::npos) {
    if (buffer_.size() > 65536 || !fill(body)) {
      if (buffer_.size() > 65536) body = "bad_reply";
      return 0;
    }
  }
  std::string head = buffer_.substr(0, head_end + 2);
  std::transform(head.begin(), head.end(), head.begin(), [](unsigned char c) { return std::tolower(c); });
  const int status = head.size() > 12 ? std::atoi(head.c_str() + 9) : 0;
  const std::string length = header_value(head, "content-length");
  close_after_ = header_value(head, "connection") == "close";
  char* end = nullptr;
  const unsigned long long body_size = std::strtoull(length.c_str(), &end, 10);
  // No Content-Length (chunked replies are not read), or a body over 64 MiB.
  if (status < 100 || length.empty() || *end != '\0' || body_size > (64u << 20)) {
    body = "bad_reply";
    return 0;
  }
  const size_t total = head_end + 4 + static_cast<size_t>(body_size);
  while (buffer_.size() < total) {
    if (!fill(body)) return 0;
  }
  body.assign(buffer_, head_end + 4, total - head_end - 4);
  buffer_.erase(0, total);
  return status;
}

std::vector<std::string> http_requests(const BenchOptions& o, const HttpTarget& t, const std::string& body) {
  std::vector<std::string> out;
  out.reserve(o.actors);
  std::string common = " HTTP/1.1\r\nHost: " + t.host + ":" + t.port +
                       "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
                       "\r\n";
  if (!o.token.empty()) common += "Authorization: Bearer " + o.token + "\r\n";
  common += "\r\n" + body;
  for (uint64_t i = 0; i < o.actors; ++i) {
    out.push_back("POST /v1/" + path_segment(o.ns) + "/actors/" + path_segment(o.type) + "/" + path_segment(o.id_prefix + std::to_string(i)) +
                  "/commands" + common);
  }
  return out;
}

// --- the closed loop, for either transport -----------------------------------

// Runs one client: `send(target, error_code)` returns true on success, or
// false with the error code set.
template <class Send>
void client_loop(const Plan& plan, uint32_t index, uint32_t clients, Totals& totals, ClientResult& result,
                 Send&& send) {
  uint64_t next = index % plan.targets.size();
  std::string code;
  while (Clock::now() < plan.end) {
    totals.sent.fetch_add(1, std::memory_order_relaxed);
    const auto start = Clock::now();
    if (send(plan.targets[next], code)) {
      const auto us = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - start).count();
      result.latencies_us.push_back(static_cast<uint32_t>(std::min<int64_t>(us, UINT32_MAX)));
      totals.ok.fetch_add(1, std::memory_order_relaxed);
    } else {
      ++result.errors[code];
      totals.errors.fetch_add(1, std::memory_order_relaxed);
      if (code == "connect_failed" || code == "no_responders") {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));  // do not spin on a host that is down
      }
    }
    next = (next + clients) % plan.targets.size();
  }
}

bool http_send(HttpClient& client, const std::string& request, std::string& code) {
  std::string body;
  const int status = client.exchange(request, body);
  if (status >= 200 && status < 300) return true;
  code = status == 0 ? body : error_code_of(status, body);
  return false;
}

bool nats_send(natsConnection* nc, const Plan& plan, const std::string& subject, std::string& code) {
  natsMsg* reply = nullptr;
  const natsStatus s = natsConnection_Request(&reply, nc, subject.c_str(), plan.body.data(),
                                              static_cast<int>(plan.body.size()), plan.timeout_ms);
  if (s != NATS_OK) {
    code = s == NATS_TIMEOUT ? "timeout" : s == NATS_NO_RESPONDERS ? "no_responders" : natsStatus_GetText(s);
    return false;
  }
  const char* status_text = nullptr;
  int status = 200;
  if (natsMsgHeader_Get(reply, "Aether-Status", &status_text) == NATS_OK && status_text != nullptr) {
    status = std::atoi(status_text);
  }
  const bool ok = status >= 200 && status < 300;
  if (!ok) code = error_code_of(status, std::string(natsMsg_GetData(reply), natsMsg_GetDataLength(reply)));
  natsMsg_Destroy(reply);
  return ok;
}

}  // namespace

bool parse_duration_ms(const std::string& text, int64_t& ms) {
  size_t used = 0;
  double value = 0;
  try {
    value = std::stod(text, &used);
  } catch (const std::exception&) {
    return false;
  }
  const std::string unit = text.substr(used);
  double scale = 0;
  if (unit.empty() || unit == "s") scale = 1000;
  if (unit == "ms") scale = 1;
  if (unit == "m") scale = 60000;
  if (scale == 0 || !(value > 0) || value * scale > 86400000.0) return false;
  ms = std::max<int64_t>(1, static_cast<int64_t>(value * scale));
  return true;
}

namespace {

struct Summary {
  uint64_t sent = 0, ok = 0, errors = 0;
  double seconds = 0;
  std::map<std::string, uint64_t> errors_by_code;
  std::vector<uint32_t> latencies_us;
};

double percentile_ms(std::vector<uint32_t>& sorted, double p) {
  if (sorted.empty()) return 0;
  const size_t i = std::min(sorted.size() - 1, static_cast<size_t>(p * static_cast<double>(sorted.size())));
  return sorted[i] / 1000.0;
}

void print_report(const BenchOptions& o, Summary& s) {
  std::sort(s.latencies_us.begin(), s.latencies_us.end());
  const double rate = s.seconds > 0 ? static_cast<double>(s.ok) / s.seconds : 0;
  const double p50 = percentile_ms(s.latencies_us, 0.50), p90 = percentile_ms(s.latencies_us, 0.90);
  const double p99 = percentile_ms(s.latencies_us, 0.99);
  const double max = s.latencies_us.empty() ? 0 : s.latencies_us.back() / 1000.0;
  if (o.json) {
    json j = {{"transport", o.nats_url.empty() ? "http" : "nats"},
              {"target", o.nats_url.empty() ? o.url : o.nats_url},
              {"namespace", o.ns}, {"type", o.type}, {"command", o.command},
              {"actors", o.actors}, {"clients", o.clients}, {"seconds", s.seconds},
              {"sent", s.sent}, {"ok", s.ok}, {"errors", s.errors},
              {"errors_by_code", s.errors_by_code}, {"commands_per_second", rate},
              {"latency_ms", {{"p50", p50}, {"p90", p90}, {"p99", p99}, {"max", max}}}};
    std::printf("%s\n", j.dump().c_str());
    return;
  }
  std::printf("%s %s/%s over %s: %u clients, %llu actors, %.2f s\n", o.command.c_str(), o.ns.c_str(),
              o.type.c_str(), o.nats_url.empty() ? "HTTP" : "NATS", o.clients,
              static_cast<unsigned long long>(o.actors), s.seconds);
  std::printf("sent %llu, ok %llu, errors %llu\n", static_cast<unsigned long long>(s.sent),
              static_cast<unsigned long long>(s.ok), static_cast<unsigned long long>(s.errors));
  std::printf("throughput %.0f commands/s\n", rate);
  std::printf("latency ms: p50 %.3f  p90 %.3f  p99 %.3f  max %.3f\n", p50, p90, p99, max);
  for (const auto& [code, n] : s.errors_by_code) {
    std::printf("  error %-24s %llu\n", code.c_str(), static_cast<unsigned long long>(n));
  }
}

// Prints the progress line every second until `done`.
void progress_loop(const Totals& totals, Clock::time_point start, int64_t duration_ms,
                   const std::atomic<bool>& done) {
  const bool tty = isatty(STDERR_FILENO) != 0;
  uint64_t last_ok = 0;
  auto last = start;
  while (!done.load()) {
    for (int i = 0; i < 10 && !done.load(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    const auto now = Clock::now();
    const uint64_t ok = totals.ok.load();
    const double dt = std::chrono::duration<double>(now - last).count();
    std::fprintf(stderr, "%s[%5.1fs/%.1fs] sent %llu  ok %llu  errors %llu  %.0f/s%s", tty ? "\r" : "",
                 std::chrono::duration<double>(now - start).count(), duration_ms / 1000.0,
                 static_cast<unsigned long long>(totals.sent.load()), static_cast<unsigned long long>(ok),
                 static_cast<unsigned long long>(totals.errors.load()), dt > 0 ? (ok - last_ok) / dt : 0.0,
                 tty ? "   " : "\n");
    last_ok = ok;
    last = now;
  }
  if (tty) std::fprintf(stderr, "\n");
}

// Starts one thread per client running `make_client(index)()`, shows the
// progress, and merges the results.
template <class MakeClient>
Summary run_clients(const BenchOptions& o, int64_t duration_ms, Totals& totals, MakeClient&& make_client) {
  std::vector<ClientResult> results(o.clients);
  std::vector<std::thread> threads;
  const auto start = Clock::now();
  for (uint32_t i = 0; i < o.clients; ++i) threads.emplace_back(make_client(i, results[i]));
  std::atomic<bool> done{false};
  std::thread progress;
  if (o.progress) progress = std::thread(progress_loop, std::cref(totals), start, duration_ms, std::cref(done));
  for (auto& t : threads) t.join();
  done = true;
  if (progress.joinable()) progress.join();
  Summary s;
  s.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  s.sent = totals.sent.load();
  for (auto& r : results) {
    s.ok += r.latencies_us.size();
    s.latencies_us.insert(s.latencies_us.end(), r.latencies_us.begin(), r.latencies_us.end());
    for (const auto& [code, n] : r.errors) {
      s.errors_by_code[code] += n;
      s.errors += n;
    }
  }
  return s;
}

Summary run_http(const BenchOptions& o, Plan& plan, const HttpTarget& target, int64_t duration_ms) {
  Totals totals;
  return run_clients(o, duration_ms, totals, [&](uint32_t i, ClientResult& r) {
    return [&, i] {
      HttpClient client(target, plan.timeout_ms);
      client_loop(plan, i, o.clients, totals, r,
                  [&](const std::string& request, std::string& code) { return http_send(client, request, code); });
    };
  });
}

Summary run_nats(const BenchOptions& o, Plan& plan, natsConnection* nc, int64_t duration_ms) {
  Totals totals;
  return run_clients(o, duration_ms, totals, [&](uint32_t i, ClientResult& r) {
    return [&, i] {
      client_loop(plan, i, o.clients, totals, r,
                  [&](const std::string& subject, std::string& code) { return nats_send(nc, plan, subject, code); });
    };
  });
}

// Checks the options and builds the plan; false with a message on stderr.
bool make_plan(const BenchOptions& o, Plan& plan, int64_t& duration_ms) {
  const json payload = json::parse(o.payload, nullptr, false);
  if (payload.is_discarded() || !payload.is_object()) {
    std::fprintf(stderr, "aether bench: --payload must be a JSON object, got: %s\n", o.payload.c_str());
    return false;
  }
  if (o.actors == 0 || o.clients == 0 || o.clients > 10000) {
    std::fprintf(stderr, "aether bench: --actors must be >= 1 and --clients 1..10000\n");
    return false;
  }
  if (!parse_duration_ms(o.duration, duration_ms) || !parse_duration_ms(o.timeout, plan.timeout_ms)) {
    std::fprintf(stderr, "aether bench: --duration and --timeout take e.g. 500ms, 10s, 2m\n");
    return false;
  }
  plan.body = json{{"command", o.command}, {"payload", payload}}.dump();
  return true;
}

}  // namespace

int run_bench(const BenchOptions& o) {
  Plan plan;
  int64_t duration_ms = 0;
  if (!make_plan(o, plan, duration_ms)) return 64;
  Summary s;
  if (o.nats_url.empty()) {
    HttpTarget target;
    std::string error;
    if (!parse_http_url(o.url, target, error)) {
      std::fprintf(stderr, "aether bench: %s\n", error.c_str());
      return 64;
    }
    plan.targets = http_requests(o, target, plan.body);
    plan.end = Clock::now() + std::chrono::milliseconds(duration_ms);
    s = run_http(o, plan, target, duration_ms);
  } else {
    natsConnection* nc = nullptr;
    const natsStatus st = natsConnection_ConnectTo(&nc, o.nats_url.c_str());
    if (st != NATS_OK) {
      std::fprintf(stderr, "aether bench: cannot reach %s: %s\n", o.nats_url.c_str(), natsStatus_GetText(st));
      return 2;
    }
    for (uint64_t i = 0; i < o.actors; ++i) {
      plan.targets.push_back("aether." + o.ns + ".cmd." + o.type + "." + o.id_prefix + std::to_string(i));
    }
    plan.end = Clock::now() + std::chrono::milliseconds(duration_ms);
    s = run_nats(o, plan, nc, duration_ms);
    natsConnection_Destroy(nc);
  }
  print_report(o, s);
  const bool unreachable = s.ok == 0 && s.errors_by_code.count("connect_failed") != 0;
  return unreachable ? 2 : 0;
}

}  // namespace aether::cli
