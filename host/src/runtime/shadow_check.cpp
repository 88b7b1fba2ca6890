#include "runtime/shadow_check.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <chrono>
#include <cmath>
#include <set>
#include <thread>

#include <pthread.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core/guarded.hpp"
#include "core/log.hpp"
#include "plugin/plugin.hpp"
#include "runtime/runtime.hpp"
#include "store/store.hpp"

namespace aether {

using json = nlohmann::json;
using SteadyClock = std::chrono::steady_clock;

namespace {

constexpr size_t kMaxFieldsPerDiff = 8;
constexpr size_t kKeyOverhead = sizeof(ActorKey);

// A plugin state, destroyed with its type when the holder goes.
class HeldState {
 public:
  explicit HeldState(const ActorType& t) : type_(t) {
    auto r = t.create();
    if (r) {
      state_ = *r;
    } else {
      status_ = r.status();
    }
  }
  ~HeldState() { type_.destroy(state_); }
  HeldState(const HeldState&) = delete;
  HeldState& operator=(const HeldState&) = delete;
  void* get() const { return state_; }
  const Status& status() const { return status_; }

 private:
  const ActorType& type_;
  void* state_ = nullptr;
  Status status_;
};

std::string escape_pointer_token(const std::string& key) {
  std::string out;
  for (char c : key) {
    if (c == '~') {
      out += "~0";
    } else if (c == '/') {
      out += "~1";
    } else {
      out += c;
    }
  }
  return out;
}

// Appends to `out` the first differing leaves of `a` (expected) and `b`
// (got), as {"field": JSON pointer, "expected", "got"}.
void diff_values(const json& a, const json& b, const std::string& at, json& out) {
  if (out.size() >= kMaxFieldsPerDiff || a == b) return;
  if (a.is_object() && b.is_object()) {
    std::set<std::string> keys;
    for (const auto& [k, _] : a.items()) keys.insert(k);
    for (const auto& [k, _] : b.items()) keys.insert(k);
    for (const auto& k : keys) {
      const std::string field = at + "/" + escape_pointer_token(k);
      const auto ia = a.find(k);
      const auto ib = b.find(k);
      if (ia != a.end() && ib != b.end()) {
        diff_values(*ia, *ib, field, out);
      } else if (out.size() < kMaxFieldsPerDiff) {
        json d = {{"field", field}};
        if (ia != a.end()) d["expected"] = *ia;
        if (ib != b.end()) d["got"] = *ib;
        out.push_back(std::move(d));
      }
    }
    return;
  }
  if (a.is_array() && b.is_array() && a.size() == b.size()) {
    for (size_t i = 0; i < a.size(); ++i) diff_values(a[i], b[i], at + "/" + std::to_string(i), out);
    return;
  }
  out.push_back({{"field", at.empty() ? "/" : at}, {"expected", a}, {"got", b}});
}

int64_t steady_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(SteadyClock::now().time_since_epoch()).count();
}

// When the plugin hook the check is inside began (steady ms; 0: none), and
// whether the caller gave up waiting for it.
struct HookBeat {
  std::atomic<int64_t> since_ms{0};
  std::atomic<bool> abandoned{false};
};

// CPU time of the calling thread, in seconds.
double thread_cpu_seconds() {
  timespec ts{};
  (void)clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

// Keeps the check's thread at its CPU share: after each burst of work it
// sleeps burst * (100 - percent) / percent, in slices, so that a given-up
// check or its deadline still ends the rest soon.
class Pacer {
 public:
  Pacer(uint32_t percent, SteadyClock::time_point deadline, const HookBeat& beat)
      : percent_(std::clamp<uint32_t>(percent, 1, 100)), deadline_(deadline), beat_(beat),
        started_(thread_cpu_seconds()), burst_start_(started_) {}

  void pace() {
    if (percent_ >= 100) return;
    const double now = thread_cpu_seconds();
    const double burst = now - burst_start_;
    if (burst < kBurstSeconds) return;
    const auto until = SteadyClock::now() + std::chrono::duration_cast<SteadyClock::duration>(
                                                std::chrono::duration<double>(burst * (100 - percent_) / percent_));
    while (!beat_.abandoned.load()) {
      const auto wake = std::min({until, deadline_, SteadyClock::now() + std::chrono::milliseconds(50)});
      if (wake <= SteadyClock::now()) break;
      std::this_thread::sleep_until(wake);
    }
    burst_start_ = thread_cpu_seconds();
  }

  double cpu_ms() const { return (thread_cpu_seconds() - started_) * 1000.0; }

 private:
  static constexpr double kBurstSeconds = 0.002;
  uint32_t percent_;
  SteadyClock::time_point deadline_;
  const HookBeat& beat_;
  double started_;
  double burst_start_;
};

// What the check of one actor produced.
struct ActorOutcome {
  std::vector<ShadowDifference> differences;
  uint64_t events = 0;
  uint64_t bytes = 0;      // working memory it needed
  bool out_of_time = false;
};

// Runs the check of plugin version pairs over the sampled actors.
class ShadowRun {
 public:
  ShadowRun(Journal& events, const ShadowOptions& o, HookBeat& beat)
      : events_(events),
        deadline_(SteadyClock::now() + std::chrono::milliseconds(o.time_limit_ms)),
        beat_(beat),
        pacer_(o.cpu_percent, deadline_, beat) {}

  ActorOutcome check(const ActorKey& key, const ActorType& ot, const ActorType& nt) const;
  double cpu_ms() const { return pacer_.cpu_ms(); }

 private:
  Status replay(const ActorKey& key, const ActorType& ot, const ActorType& nt, HeldState& old_state,
                HeldState& new_state, ActorOutcome& out) const;
  std::string upgrade_view(const ActorType& ot, const ActorType& nt, const std::string& snapshot,
                           std::string& error) const;

  // Calls a plugin hook under the beat the caller watches.
  template <class F>
  auto hook(F&& f) const {
    beat_.since_ms.store(steady_ms());
    auto r = f();
    beat_.since_ms.store(0);
    return r;
  }

  Journal& events_;
  SteadyClock::time_point deadline_;
  HookBeat& beat_;
  mutable Pacer pacer_;
};

ShadowDifference make_difference(const ActorKey& key, uint64_t version, const char* path,
                                 const char* compared_with) {
  ShadowDifference d;
  d.actor = key;
  d.version = version;
  d.path = path;
  d.compared_with = compared_with;
  return d;
}

// Compares two views; a difference (or nothing) for `path`.
void compare_views(const std::string& expected, const std::string& got, ShadowDifference d,
                   std::vector<ShadowDifference>& out) {
  const json a = json::parse(expected, nullptr, false);
  const json b = json::parse(got, nullptr, false);
  if (a == b && !a.is_discarded()) return;
  json fields = json::array();
  diff_values(a, b, "", fields);
  d.diff = fields.dump();
  out.push_back(std::move(d));
}

// Reads the history in chunks and applies each chunk outside the store's
// read: a hook the caller gave up on returns into the check, which then
// stops without touching the store again.
Status ShadowRun::replay(const ActorKey& key, const ActorType& ot, const ActorType& nt,
                         HeldState& old_state, HeldState& new_state, ActorOutcome& out) const {
  constexpr uint64_t kChunk = 256;
  std::vector<StoredEvent> chunk;
  for (uint64_t from = 1;; from += kChunk) {
    if (beat_.abandoned.load()) {
      out.out_of_time = true;
      return Status::unavailable("the check was given up");
    }
    chunk.clear();
    Status read = events_.read(key, from, kChunk, [&](const StoredEvent& e) -> Status {
      chunk.push_back(e);
      return Status::ok();
    });
    if (!read) return read;
    pacer_.pace();
    for (const StoredEvent& e : chunk) {
      if (SteadyClock::now() > deadline_ || beat_.abandoned.load()) {
        out.out_of_time = true;
        return Status::unavailable("the check's time limit");
      }
      const int oi = ot.event_index(e.type);
      if (oi < 0) return Status::corruption("stored event " + e.type + " is not in the old version's model");
      const auto o = static_cast<uint32_t>(oi);
      if (Status s = hook([&] { return ot.apply(old_state.get(), o, e.payload, e.version); }); !s) return s;
      const int ni = nt.event_index(e.type);
      if (ni < 0) return Status::plugin_error("the new version has no event " + e.type);
      const auto n = static_cast<uint32_t>(ni);
      if (Status s = hook([&] { return nt.apply(new_state.get(), n, e.payload, e.version); }); !s) return s;
      ++out.events;
    }
    if (chunk.size() < kChunk) return Status::ok();
  }
}

// The new version's view of the old state carried over, or "" with `error`.
std::string ShadowRun::upgrade_view(const ActorType& ot, const ActorType& nt,
                                    const std::string& snapshot, std::string& error) const {
  std::string input = snapshot;
  if (ot.schema_version() != nt.schema_version()) {
    auto up = hook([&] { return nt.upgrade(ot.schema_version(), snapshot); });
    if (!up) {
      error = up.status().message();
      return {};
    }
    input = std::move(up).value();
  }
  HeldState carried(nt);
  if (!carried.status()) {
    error = carried.status().message();
    return {};
  }
  if (Status s = hook([&] { return nt.restore(carried.get(), input); }); !s) {
    error = s.message();
    return {};
  }
  auto v = hook([&] { return nt.view(carried.get()); });
  if (!v) error = v.status().message();
  return v ? *v : std::string();
}

ActorOutcome ShadowRun::check(const ActorKey& key, const ActorType& ot, const ActorType& nt) const {
  ActorOutcome out;
  HeldState old_state(ot);
  HeldState replayed(nt);
  auto fail = [&](const char* path, const std::string& error) {
    ShadowDifference d = make_difference(key, out.events, path, "old");
    d.error = error;
    out.differences.push_back(std::move(d));
    return out;
  };
  if (!old_state.status()) return fail("replay", old_state.status().message());
  if (!replayed.status()) return fail("replay", replayed.status().message());
  if (Status s = replay(key, ot, nt, old_state, replayed, out); !s) {
    if (out.out_of_time) return out;
    return fail("replay", s.message());
  }
  auto old_view = hook([&] { return ot.view(old_state.get()); });
  if (!old_view) return fail("replay", "old version: " + old_view.status().message());
  auto new_view = hook([&] { return nt.view(replayed.get()); });
  if (!new_view) return fail("replay", new_view.status().message());
  out.bytes = old_view->size() + new_view->size();
  const bool intended = ot.schema_version() != nt.schema_version() && nt.has_upgrade();
  if (!intended) compare_views(*old_view, *new_view, make_difference(key, out.events, "replay", "old"), out.differences);
  if (ot.schema_version() != nt.schema_version() && !nt.has_upgrade()) return out;  // the swap replays
  auto snap = hook([&] { return ot.snapshot(old_state.get()); });
  if (!snap) return fail("upgrade", "old version: " + snap.status().message());
  std::string error;
  const std::string carried = upgrade_view(ot, nt, *snap, error);
  out.bytes += snap->size() * 2 + carried.size();
  if (!error.empty()) return fail("upgrade", error);
  compare_views(intended ? *new_view : *old_view, carried,
                make_difference(key, out.events, "upgrade", intended ? "replay" : "old"), out.differences);
  return out;
}

uint64_t sample_size(uint64_t total, const ShadowOptions& o) {
  const auto by_percent =
      static_cast<uint64_t>(std::ceil(static_cast<double>(total) * o.sample_percent / 100.0));
  return std::min(total, std::max(o.sample, by_percent));
}

uint64_t key_bytes(const ActorKey& k) { return kKeyOverhead + k.ns.size() + k.type.size() + k.id.size(); }

// Ids the sample may hold within half the memory bound (ids of ~16 bytes).
uint64_t ids_within(const ShadowOptions& o) { return o.memory_limit_bytes / 2 / (kKeyOverhead + 32); }

uint64_t difference_bytes(const ShadowDifference& d) {
  return sizeof(d) + d.actor.id.size() + d.diff.size() + d.error.size();
}

// Types the check compares, and how (one note per type of the new version).
void note_types(const Plugin& current, const Plugin& next, ShadowReport& r) {
  for (const auto& ot : current.types()) {
    const ActorType* nt = next.find_type(ot->name());
    if (nt == nullptr) {
      r.notes.push_back("actor type " + ot->name() + " is not in the new version: not checked");
    } else if (ot->schema_version() != nt->schema_version() && nt->has_upgrade()) {
      r.notes.push_back("actor type " + ot->name() + ": state schema " +
                        std::to_string(ot->schema_version()) + " -> " +
                        std::to_string(nt->schema_version()) +
                        " with upgrade_state, a declared change: compared by upgrade path only "
                        "(upgrade_state of the old state against a replay through the new apply)");
    } else if (ot->schema_version() != nt->schema_version()) {
      r.notes.push_back("actor type " + ot->name() + ": state schema " +
                        std::to_string(ot->schema_version()) + " -> " +
                        std::to_string(nt->schema_version()) +
                        " without upgrade_state: the swap replays events; compared by replay path");
    }
  }
}

// The actors to check: the active ones (up to the bound), then a random
// sample of the passive ones of each (namespace, type).
std::vector<ActorKey> pick_actors(const Plugin& current, Runtime& runtime, Journal& events,
                                  const ShadowOptions& o, const std::vector<std::string>& namespaces,
                                  ShadowReport& r, size_t& active_count) {
  std::vector<ActorKey> keys = runtime.active_actors(current.name(), o.max_active);
  std::erase_if(keys, [&](const ActorKey& k) {
    return std::find(namespaces.begin(), namespaces.end(), k.ns) == namespaces.end();
  });
  active_count = keys.size();
  std::set<std::string> seen;
  for (const auto& k : keys) seen.insert(k.to_string());
  for (const auto& ns : namespaces) {
    for (const auto& t : current.types()) {
      auto count = events.sample_actors(ns, t->name(), 0);
      const uint64_t want = count ? std::min(sample_size(count->total, o), ids_within(o)) : 0;
      auto s = count ? events.sample_actors(ns, t->name(), want + active_count) : count;
      if (!s) {
        r.notes.push_back("passive actors of " + ns + "/" + t->name() + " not sampled: " + s.status().message());
        continue;
      }
      r.stored_actors += s->total;
      uint64_t taken = 0;
      for (auto& id : s->ids) {
        ActorKey k{ns, t->name(), std::move(id)};
        if (taken == want || seen.count(k.to_string()) != 0) continue;
        ++taken;
        keys.push_back(std::move(k));
      }
    }
  }
  return keys;
}

}  // namespace

namespace {

ShadowReport check_all(const Plugin& current, const Plugin& next, Runtime& runtime, Journal& events,
                       const ShadowOptions& options, const std::vector<std::string>& namespaces, HookBeat& beat) {
  const auto started = SteadyClock::now();
  ShadowReport r;
  r.plugin = current.name();
  r.from_version = current.version();
  r.to_version = next.version();
  r.memory_limit_bytes = options.memory_limit_bytes;
  r.cpu_percent = options.cpu_percent;
  note_types(current, next, r);
  size_t active = 0;
  std::vector<ActorKey> keys = pick_actors(current, runtime, events, options, namespaces, r, active);
  // The sample itself takes at most half the memory bound.
  uint64_t base = 0;
  size_t fit = 0;
  for (; fit < keys.size(); ++fit) {
    const uint64_t cost = key_bytes(keys[fit]);
    if (base + cost > options.memory_limit_bytes / 2) break;
    base += cost;
  }
  if (fit < keys.size()) {
    keys.resize(fit);
    r.complete = false;
    r.stopped_by = "memory";
  }
  r.peak_memory_bytes = base;
  ShadowRun run(events, options, beat);
  uint64_t largest = 0;  // the most working memory one actor needed so far
  for (size_t i = 0; i < keys.size(); ++i) {
    if (base + largest > options.memory_limit_bytes) {  // the next actor may need as much
      r.complete = false;
      r.stopped_by = "memory";
      break;
    }
    const ActorType* ot = current.find_type(keys[i].type);
    const ActorType* nt = next.find_type(keys[i].type);
    if (ot == nullptr || nt == nullptr) continue;
    ActorOutcome o = run.check(keys[i], *ot, *nt);
    largest = std::max(largest, o.bytes);
    r.peak_memory_bytes = std::max(r.peak_memory_bytes, base + o.bytes);
    if (base + o.bytes > options.memory_limit_bytes) {
      r.complete = false;
      r.stopped_by = "memory";
      break;
    }
    if (o.out_of_time) {
      r.complete = false;
      r.stopped_by = "time";
      break;
    }
    ++r.actors_checked;
    ++(i < active ? r.active_checked : r.passive_checked);
    r.events_replayed += o.events;
    if (!o.differences.empty()) ++r.actors_differing;
    for (auto& d : o.differences) {
      if (r.differences.size() >= options.max_differences) break;
      if (base + difference_bytes(d) > options.memory_limit_bytes) break;
      base += difference_bytes(d);
      r.differences.push_back(std::move(d));
    }
  }
  r.elapsed_ms = std::chrono::duration<double, std::milli>(SteadyClock::now() - started).count();
  r.cpu_ms = run.cpu_ms();
  return r;
}

}  // namespace

namespace {

// The check of one reload, shared by the caller and the check's thread
// (which may outlive the caller's wait when a hook hangs).
struct ShadowJob {
  std::shared_ptr<const Plugin> current, next;
  ShadowOptions options;
  std::vector<std::string> namespaces;
  HookBeat beat;
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  ShadowReport report;
};

void run_job(const std::shared_ptr<ShadowJob>& job, Runtime& runtime, Journal& events) {
  pthread_setname_np(pthread_self(), "aether-shadow");
  // The idle CPU class (for this thread only): a command's thread that
  // wakes takes the core at once. Where that is refused, the lowest nice.
  sched_param idle{};
  if (sched_setscheduler(0, SCHED_IDLE, &idle) != 0) {
    (void)setpriority(PRIO_PROCESS, static_cast<id_t>(syscall(SYS_gettid)), 19);
  }
  ShadowReport r;
  if (!run_guarded("the shadow check", [&] {
        r = check_all(*job->current, *job->next, runtime, events, job->options, job->namespaces, job->beat);
      })) {
    r = ShadowReport{};
    r.plugin = job->current->name();
    r.complete = false;
    r.stopped_by = "error";
    r.notes.push_back("the check failed (see the host's log); it counts as a difference");
  }
  std::lock_guard lock(job->mu);
  job->report = std::move(r);
  job->done = true;
  job->cv.notify_all();
}

// Waits for the job; true iff it finished before a hook ran past the limit.
bool wait_job(ShadowJob& job) {
  const int64_t limit = job.options.call_timeout_ms;
  std::unique_lock lock(job.mu);
  while (!job.done) {
    job.cv.wait_for(lock, std::chrono::milliseconds(limit > 0 ? std::clamp<int64_t>(limit / 4, 1, 50) : 1000));
    const int64_t since = job.beat.since_ms.load();
    if (!job.done && limit > 0 && since != 0 && steady_ms() - since > limit) return false;
  }
  return true;
}

}  // namespace

// The check runs on a thread of its own ("aether-shadow") in the idle CPU
// class (SCHED_IDLE), so that on a busy host the workers running commands
// come first, and it keeps to its CPU share (the pacer) on an idle one.
ShadowReport run_shadow_check(std::shared_ptr<const Plugin> current, std::shared_ptr<const Plugin> next,
                              Runtime& runtime, Journal& events, const ShadowOptions& options,
                              const std::vector<std::string>& namespaces) {
  auto job = std::make_shared<ShadowJob>();
  job->current = std::move(current);
  job->next = std::move(next);
  job->options = options;
  job->namespaces = namespaces.empty() ? runtime.namespaces() : namespaces;
  std::thread t([job, &runtime, &events] { run_job(job, runtime, events); });
  if (wait_job(*job)) {
    t.join();
    return std::move(job->report);
  }
  job->beat.abandoned.store(true);  // it stops at its next event; the images stay loaded until then
  t.detach();
  ShadowReport r;
  r.plugin = job->current->name();
  r.from_version = job->current->version();
  r.to_version = job->next->version();
  r.memory_limit_bytes = options.memory_limit_bytes;
  r.complete = false;
  r.stopped_by = "plugin_timeout";
  r.notes.push_back("a plugin hook ran longer than actors.call_timeout (" + std::to_string(options.call_timeout_ms) +
                    " ms); the check gave up on it, which counts as a difference");
  log::error("shadow check of plugin " + r.plugin + " " + r.to_version + ": " + r.notes.back());
  return r;
}

std::string ShadowReport::to_json() const {
  json diffs = json::array();
  for (const auto& d : differences) {
    json j = {{"actor", d.actor.to_string()},
              {"namespace", d.actor.ns},
              {"type", d.actor.type},
              {"id", d.actor.id},
              {"version", d.version},
              {"path", d.path},
              {"compared_with", d.compared_with}};
    if (d.error.empty()) {
      j["diff"] = json::parse(d.diff, nullptr, false);
    } else {
      j["error"] = d.error;
    }
    diffs.push_back(std::move(j));
  }
  json j = {{"plugin", plugin},
            {"from_version", from_version},
            {"to_version", to_version},
            {"passed", passed()},
            {"actors_checked", actors_checked},
            {"active_checked", active_checked},
            {"passive_checked", passive_checked},
            {"stored_actors", stored_actors},
            {"events_replayed", events_replayed},
            {"actors_differing", actors_differing},
            {"differences", diffs},
            {"notes", notes},
            {"elapsed_ms", elapsed_ms},
            {"cpu_ms", cpu_ms},
            {"cpu_percent", cpu_percent},
            {"peak_memory_bytes", peak_memory_bytes},
            {"memory_limit_bytes", memory_limit_bytes},
            {"complete", complete}};
  if (!complete) j["stopped_by"] = stopped_by;
  return j.dump();
}

}  // namespace aether
