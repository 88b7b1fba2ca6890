// Test and benchmark support for fault runs: a paced load of uniquely
// numbered commands with unique idempotency keys (one client thread per
// actor, over NATS request/reply), the per-fault figures a client saw, and
// the history check of a whole run (every acknowledged command once, at its
// version; no phantom; all nodes agree).
#pragma once

#include <httplib.h>
#include <nats/nats.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <limits>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace aether::test {

// One command as the client saw it.
struct Sent {
  int actor = 0;
  uint64_t n = 0;            // its "by", unique over the run
  double at = 0;             // sent, seconds since the load started
  double done = 0;           // answered (or gave up)
  uint64_t version = 0;      // acknowledged version (0: not acknowledged)
  bool not_applied = false;  // an error that says it was not applied
  std::string code;          // the error's code ("" when acknowledged; "timeout": no reply)
  std::string message;       // the error's message
};

// An error from nodes passing a command around (they disagreed about the
// owner): what the route trail exists to prevent.
inline bool routing_loop(const Sent& s) {
  const auto has = [&](const char* t) { return s.message.find(t) != std::string::npos; };
  return has("already passed") || has("disagree") || (has("forwarded") && has(" times"));
}

// `actors` client threads, each sending Increment {"by": n} with key "k-<n>"
// to its own actor f-<i>, at most one command per `pace_ms`.
class HistoryLoad {
 public:
  static constexpr int kReplyMs = 10000;  // the client's deadline for a reply
  HistoryLoad(const std::string& url, int actors, int pace_ms = 100) : actors_(actors), pace_ms_(pace_ms) {
    natsConnection_ConnectTo(&nc_, url.c_str());
  }
  ~HistoryLoad() {
    stop();
    natsConnection_Destroy(nc_);
  }
  void start() {
    for (int a = 0; a < actors_; ++a) threads_.emplace_back([this, a] { run(a); });
  }
  void stop() {
    stop_.store(true);
    for (auto& t : threads_) t.join();
    threads_.clear();
  }
  int actors() const { return actors_; }
  double now() const { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count(); }
  std::vector<Sent> history() {
    std::lock_guard lock(mu_);
    return sent_;
  }

 private:
  void run(int a) {
    while (!stop_.load()) {
      const auto next = std::chrono::steady_clock::now() + std::chrono::milliseconds(pace_ms_);
      one(a);
      std::this_thread::sleep_until(next);
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
    const natsStatus rs =
        natsConnection_Request(&reply, nc_, subject.c_str(), body.data(), static_cast<int>(body.size()), kReplyMs);
    if (rs == NATS_OK) {
      read_reply(reply, s);
      natsMsg_Destroy(reply);
    } else {
      // No reply: the request or its reply was lost on the way (a server
      // that died with it), or no node answered within the client's deadline.
      s.code = "timeout";
      s.message = std::string("no reply within ") + std::to_string(kReplyMs) + " ms (" + natsStatus_GetText(rs) +
                  "), sent " + std::to_string(s.at).substr(0, 6) + " s into the run";
    }
    s.done = now();
    std::lock_guard lock(mu_);
    sent_.push_back(s);
  }
  static void read_reply(natsMsg* reply, Sent& s) {
    const char* st = nullptr;
    const int status = natsMsgHeader_Get(reply, "Aether-Status", &st) == NATS_OK && st ? std::atoi(st) : 0;
    const auto j = nlohmann::json::parse(
        std::string(natsMsg_GetData(reply), static_cast<size_t>(natsMsg_GetDataLength(reply))), nullptr, false);
    if (status == 200 && j.is_object()) {
      s.version = j.value("version", uint64_t{0});
      s.code.clear();
    } else if (j.is_object() && j.contains("error") && j["error"].is_object()) {
      s.not_applied = j["error"].value("may_have_been_applied", true) == false;
      s.code = j["error"].value("code", "unknown");
      s.message = j["error"].value("message", "");
    } else {
      s.code = "status " + std::to_string(status);
    }
  }

  natsConnection* nc_ = nullptr;
  const int actors_;
  const int pace_ms_;
  std::vector<std::thread> threads_;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> next_{0};
  std::mutex mu_;
  std::vector<Sent> sent_;
  std::chrono::steady_clock::time_point t0_ = std::chrono::steady_clock::now();
};

// "15:35:03.196": the local time of day, as the hosts' logs write it.
inline std::string time_of_day() {
  const auto now = std::chrono::system_clock::now();
  const std::time_t t = std::chrono::system_clock::to_time_t(now);
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  localtime_r(&t, &tm);
  char out[16];
  std::snprintf(out, sizeof out, "%02d:%02d:%02d.%03d", tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms));
  return out;
}

// One fault: its window [from, to] (to: after the settling time), and when
// the fault itself ended (the process resumed or restarted; = from for a kill).
struct Phase {
  std::string fault;
  double from = 0, fault_end = 0, to = 0;
  double converged = -1;  // seconds from the fault to a converged shard map (-1: not measured)
  // When the next fault began: an error answered after it is that fault's.
  double next_from = std::numeric_limits<double>::infinity();
  std::string began = time_of_day();  // when the fault began, to find it in the hosts' logs
};

// What the clients saw during one phase.
struct PhaseFigures {
  int commands = 0, errors = 0, indeterminate = 0, routing_loops = 0;
  int errors_in_next = 0;  // sent in this window, failed after the next fault began (counted there)
  std::map<std::string, int> codes;  // error code -> count
  std::map<std::string, std::string> sample;  // error code -> its first message
  double gap_p50 = 0, gap_p99 = 0, gap_max = 0;  // per actor, longest time without an acknowledgement
  double errors_beyond = 0;  // last error answered after the fault ended, seconds (0: none)
};

inline double percentile(const std::vector<double>& sorted, double q) {
  if (sorted.empty()) return 0;
  return sorted[std::min(sorted.size() - 1, static_cast<size_t>(q * static_cast<double>(sorted.size())))];
}

inline PhaseFigures figures(const std::vector<Sent>& sent, int actors, const Phase& p) {
  PhaseFigures f;
  std::vector<std::vector<double>> acks(static_cast<size_t>(actors));
  for (const auto& s : sent) {
    if (s.done < p.from || s.at > p.to) continue;
    ++f.commands;
    if (s.version != 0) {
      acks[static_cast<size_t>(s.actor)].push_back(s.done);
      continue;
    }
    if (s.done >= p.next_from) {
      ++f.errors_in_next;
      continue;
    }
    ++f.errors;
    if (f.codes[s.code]++ == 0) f.sample[s.code] = s.message;
    f.indeterminate += s.not_applied ? 0 : 1;
    f.routing_loops += routing_loop(s) ? 1 : 0;
    f.errors_beyond = std::max(f.errors_beyond, s.done - p.fault_end);
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
  f.gap_p50 = percentile(gaps, 0.5);
  f.gap_p99 = percentile(gaps, 0.99);
  f.gap_max = gaps.empty() ? 0 : gaps.back();
  return f;
}

inline std::string describe(const Phase& p, const PhaseFigures& f) {
  char line[400];
  std::snprintf(line, sizeof line,
                "fault '%s' (at %s, %.1f s): %d commands, %d errors (%d indeterminate, %d routing loops), errors until %.2f s after the "
                "fault ended; longest wait for an ack per actor: p50 %.2f s, p99 %.2f s, max %.2f s",
                p.fault.c_str(), p.began.c_str(), p.fault_end - p.from, f.commands, f.errors, f.indeterminate, f.routing_loops, f.errors_beyond,
                f.gap_p50, f.gap_p99, f.gap_max);
  std::string out = line;
  if (f.errors_in_next > 0) {
    out += "; " + std::to_string(f.errors_in_next) + " more sent in it failed after the next fault began (counted there)";
  }
  if (p.converged >= 0) out += "; shard map converged after " + std::to_string(p.converged).substr(0, 4) + " s";
  for (const auto& [code, n] : f.codes) out += "\n    " + code + ": " + std::to_string(n) + "  e.g. " + f.sample.at(code);
  return out;
}

// Every actor's "by" values in version order, as the node on `port` reads
// them; problems go to `anomalies`. A read answered 503 (NATS still
// recovering from the last fault: what the check wants is the final state,
// not availability) is asked again, 500 ms apart, until `until`.
inline std::vector<std::vector<uint64_t>> read_histories(int port, const std::string& node, int actors,
                                                         std::vector<std::string>& anomalies,
                                                         std::chrono::steady_clock::time_point until) {
  std::vector<std::vector<uint64_t>> out(static_cast<size_t>(actors));
  httplib::Client c("127.0.0.1", port);
  c.set_read_timeout(10, 0);
  for (int a = 0; a < actors; ++a) {
    const std::string path = "/v1/default/actors/Counter/f-" + std::to_string(a) + "/events?limit=10000";
    auto r = c.Get(path);
    while (r && r->status == 503 && std::chrono::steady_clock::now() < until) {
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
      r = c.Get(path);
    }
    if (!r || r->status != 200) {
      anomalies.push_back(node + ": events of f-" + std::to_string(a) + ": " + (r ? r->body : "no reply"));
      continue;
    }
    const auto ev = nlohmann::json::parse(r->body)["events"];
    for (size_t i = 0; i < ev.size(); ++i) {
      if (ev[i]["version"].get<uint64_t>() != i + 1) {
        anomalies.push_back(node + " f-" + std::to_string(a) + ": a gap or a repeat at " + std::to_string(i + 1));
      }
      out[static_cast<size_t>(a)].push_back(ev[i]["payload"]["by"].get<uint64_t>());
    }
  }
  return out;
}

// The check of one actor's history against what the clients saw.
inline void check_actor(int a, const std::vector<uint64_t>& h, const std::vector<Sent>& sent,
                        const std::map<uint64_t, const Sent*>& by_n, std::vector<std::string>& anomalies) {
  const std::string who = "f-" + std::to_string(a);
  std::set<uint64_t> seen;
  for (size_t v = 0; v < h.size(); ++v) {
    auto it = by_n.find(h[v]);
    const bool phantom = it == by_n.end() || it->second->actor != a || it->second->not_applied;
    const bool twice = !seen.insert(h[v]).second;
    const bool moved = !phantom && it->second->version != 0 && it->second->version != v + 1;
    if (phantom || twice || moved) {
      anomalies.push_back(who + " version " + std::to_string(v + 1) + ": command " + std::to_string(h[v]) +
                          (phantom ? " was never sent or was answered 'not applied'"
                                   : twice ? " stored twice" : " acknowledged at another version"));
    }
  }
  for (const auto& s : sent) {
    if (s.actor == a && s.version != 0 && seen.count(s.n) == 0) {
      anomalies.push_back(who + ": acknowledged command " + std::to_string(s.n) + " (version " +
                          std::to_string(s.version) + ") is missing");
    }
  }
}

// The whole run: `nodes` (id -> HTTP port) must all read the same histories,
// and those must match what the clients saw. Returns the anomalies.
inline std::vector<std::string> check_history(const std::map<std::string, int>& nodes, int actors,
                                              const std::vector<Sent>& sent) {
  std::vector<std::string> anomalies;
  if (nodes.empty()) return {"no node left to read from"};
  // Each node has a minute of its own to answer: reads that wait for NATS
  // on one node do not use up another's time.
  const auto minute = [] { return std::chrono::steady_clock::now() + std::chrono::seconds(60); };
  const auto reference = read_histories(nodes.begin()->second, nodes.begin()->first, actors, anomalies, minute());
  for (auto it = std::next(nodes.begin()); it != nodes.end(); ++it) {
    if (read_histories(it->second, it->first, actors, anomalies, minute()) != reference) {
      anomalies.push_back(it->first + " reads other histories than " + nodes.begin()->first);
    }
  }
  std::map<uint64_t, const Sent*> by_n;
  for (const auto& s : sent) by_n[s.n] = &s;
  for (int a = 0; a < actors; ++a) check_actor(a, reference[static_cast<size_t>(a)], sent, by_n, anomalies);
  return anomalies;
}

}  // namespace aether::test
