// `aether bench`: see bench.hpp. Each client has one request in flight
// (closed loop): it sends a command, waits for its reply, records the
// latency, and sends the next, round-robin over the actors it owns (client c
// sends to actors c, c + clients, c + 2 * clients, ... mod actors). HTTP
// clients are event-driven (bench_http.cpp); a NATS client is a thread.
#include "bench.hpp"
#include "bench_loop.hpp"
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
using Clock = BenchClock;

// --- HTTP ----------------------------------------------------------------------

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
      result.ok(totals, start);
    } else {
      result.error(totals, code);
      if (code == "connect_failed" || code == "no_responders") {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));  // do not spin on a host that is down
      }
    }
    next = (next + clients) % plan.targets.size();
  }
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

// Runs `run(results)` (the clients, until they are all done) with the
// progress line, and merges the results.
template <class Run>
Summary run_clients(const BenchOptions& o, int64_t duration_ms, Totals& totals, Run&& run) {
  std::vector<ClientResult> results(o.clients);
  const auto start = Clock::now();
  std::atomic<bool> done{false};
  std::thread progress;
  if (o.progress) progress = std::thread(progress_loop, std::cref(totals), start, duration_ms, std::cref(done));
  run(results);
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

Summary run_http(const BenchOptions& o, Plan& plan, const HttpTarget& target, int64_t duration_ms,
                 std::string& error) {
  Totals totals;
  return run_clients(o, duration_ms, totals, [&](std::vector<ClientResult>& results) {
    (void)run_http_clients(plan, target, o.clients, totals, results, error);
  });
}

// One thread per NATS client (a request blocks its caller).
Summary run_nats(const BenchOptions& o, Plan& plan, natsConnection* nc, int64_t duration_ms) {
  Totals totals;
  return run_clients(o, duration_ms, totals, [&](std::vector<ClientResult>& results) {
    std::vector<std::thread> threads;
    for (uint32_t i = 0; i < o.clients; ++i) {
      threads.emplace_back([&, i] {
        client_loop(plan, i, o.clients, totals, results[i], [&](const std::string& subject, std::string& code) {
          return nats_send(nc, plan, subject, code);
        });
      });
    }
    for (auto& t : threads) t.join();
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
    s = run_http(o, plan, target, duration_ms, error);
    if (!error.empty()) {
      std::fprintf(stderr, "aether bench: %s\n", error.c_str());
      return 2;
    }
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
