// Runtime benchmarks, each beside its baseline in the same run:
//  - durable command throughput on sqlite (synchronous=FULL), 1000 actors,
//    64 concurrent senders, against raw SQLite writing the same rows with one
//    transaction per insert, and with all rows in one transaction;
//  - replay from sqlite against a raw loop reading the same rows and parsing
//    their JSON;
//  - activation of an actor with 1,000,000 events, with and without snapshots;
//  - host memory per idle active actor, beyond the plugin's own state.
#include <benchmark/benchmark.h>
#include <malloc.h>
#include <sqlite3.h>

#include <atomic>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <thread>

#include "api/metrics.hpp"
#include "bench_host.hpp"
#include "closed_loop.hpp"
#include "plugin/plugin.hpp"
#include "raw_sqlite.hpp"
#include "ratio_reporter.hpp"
#include "runtime/runtime.hpp"
#include "store/store.hpp"

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

constexpr int kActors = 1000;
constexpr int kSenders = 64;
constexpr int kCommands = 32000;  // events written by each throughput benchmark
constexpr int kReplayEvents = 200000;
constexpr int kLongActorEvents = 1000000;

fs::path bench_dir(const std::string& name) {
  fs::path p = fs::temp_directory_path() / ("aether-bench-" + name);
  fs::remove_all(p);
  fs::create_directories(p);
  return p;
}

// The store the fixtures write straight into (and aether's schema for the
// raw baselines).
std::unique_ptr<aether::Journal> open_store(const fs::path& dir, const char* sync = "full") {
  aether::SqliteOptions o;
  o.path = (dir / "aether.db").string();
  o.synchronous = sync;
  auto s = aether::open_sqlite_store(o);
  if (!s) {
    std::fprintf(stderr, "%s\n", s.status().message().c_str());
    std::abort();
  }
  return std::move(s).value();
}

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

// A host's runtime started again (as after a restart), over the same store.
aether::Runtime& fresh_runtime(aether::Host& host) {
  if (aether::Status s = host.restart_runtime(); !s) {
    std::fprintf(stderr, "%s\n", s.message().c_str());
    std::abort();
  }
  return host.runtime();
}

// --- durable throughput ---------------------------------------------------------

void BM_RuntimeDurableCommands(benchmark::State& state) {
  for (auto _ : state) {
    const fs::path dir = bench_dir("durable");
    aether::HostConfig c = aether::bench::sqlite_host_config({"counter"}, dir.string());
    c.actors.snapshot.every = 0;
    auto host = aether::bench::start_host(c);
    // 64 senders, each with one command in flight (closed_loop.hpp).
    const auto start = Clock::now();
    const int failed = aether::bench::run_closed_loop(host->runtime(), kSenders, kCommands, [](int i) {
      return aether::Command{"default", "Counter", "a" + std::to_string(i % kActors), "Increment",
                             R"({"by":1})", std::nullopt, ""};
    });
    state.SetIterationTime(seconds_since(start));
    if (failed > 0) state.SkipWithError("commands failed");
    const aether::Metrics::CommitBatches b = host->metrics().commit_batches();
    state.counters["appends_per_commit"] =
        static_cast<double>(b.appends) / static_cast<double>(std::max<uint64_t>(1, b.batches));
    (void)host->stop();
  }
  state.SetItemsProcessed(state.iterations() * kCommands);
}
BENCHMARK(BM_RuntimeDurableCommands)->UseManualTime()->Iterations(3)->Unit(benchmark::kMillisecond);

// The same rows the runtime writes, inserted by raw SQLite into the same
// schema, at the same durability (WAL, synchronous=FULL), `rows_per_tx` rows
// to a transaction: 1, kSenders (the largest commit that kSenders senders
// with one command in flight each can ever form: the ceiling of any group
// commit under this load), or all.
void raw_insert(benchmark::State& state, int rows_per_tx) {
  for (auto _ : state) {
    const fs::path dir = bench_dir("raw" + std::to_string(rows_per_tx));
    { auto schema = open_store(dir); }  // creates aether's schema
    aether::bench::RawEventWriter raw((dir / "aether.db").string());
    const auto start = Clock::now();
    for (int i = 0; i < kCommands; ++i) {
      if (i % rows_per_tx == 0) raw.begin();
      if (!raw.insert(i, kActors)) state.SkipWithError(raw.error());
      if ((i + 1) % rows_per_tx == 0 || i + 1 == kCommands) raw.commit();
    }
    state.SetIterationTime(seconds_since(start));
  }
  state.SetItemsProcessed(state.iterations() * kCommands);
}
void BM_RawSqliteTxPerInsert(benchmark::State& s) { raw_insert(s, 1); }
// Arg: rows per transaction, at most kSenders.
void BM_RawSqliteGroupedTx(benchmark::State& s) { raw_insert(s, static_cast<int>(s.range(0))); }
void BM_RawSqliteOneTx(benchmark::State& s) { raw_insert(s, kCommands); }
BENCHMARK(BM_RawSqliteTxPerInsert)->UseManualTime()->Iterations(3)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_RawSqliteGroupedTx)->Arg(kSenders / 2)->Arg(kSenders)->UseManualTime()->Iterations(3)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_RawSqliteOneTx)->UseManualTime()->Iterations(3)->Unit(benchmark::kMillisecond);

// --- replay ----------------------------------------------------------------------

// One bank account with `n` events written straight into the store.
void fill_account(aether::Journal& store, const std::string& id, int n) {
  uint64_t v = 0;
  while (v < static_cast<uint64_t>(n)) {
    aether::AppendRequest r;
    r.key = {"default", "BankAccount", id};
    r.expected_version = v;
    for (int i = 0; i < 5000 && v + r.events.size() < static_cast<uint64_t>(n); ++i) {
      if (v == 0 && r.events.empty()) {
        r.events.push_back({"Opened", R"({"owner":"bench"})"});
      } else {
        r.events.push_back({"Deposited", R"({"amount":3})"});
      }
    }
    auto res = store.append_sync(std::move(r));
    if (!res.status.is_ok()) std::abort();
    v = res.version;
  }
}

struct ReplayFixture {
  fs::path dir = bench_dir("replay");
  ReplayFixture() {
    auto store = open_store(dir);
    fill_account(*store, "replay", kReplayEvents);
  }
};
ReplayFixture& replay_fixture() {
  static ReplayFixture f;
  return f;
}

void BM_ReplayThroughRuntime(benchmark::State& state) {
  auto& f = replay_fixture();
  auto store = open_store(f.dir);
  aether::HostConfig c = aether::bench::sqlite_host_config({"bank"}, f.dir.string());
  c.actors.snapshot.every = 0;  // measure replay, not snapshots
  auto host = aether::bench::start_host_over(c, *store);
  for (auto _ : state) {
    aether::Runtime& rt = fresh_runtime(*host);
    const auto start = Clock::now();
    auto v = rt.state("default", "BankAccount", "replay");
    state.SetIterationTime(seconds_since(start));
    if (!v || v->version != static_cast<uint64_t>(kReplayEvents)) state.SkipWithError("bad replay");
  }
  (void)host->stop();
  state.SetItemsProcessed(state.iterations() * kReplayEvents);
}
BENCHMARK(BM_ReplayThroughRuntime)->UseManualTime()->Iterations(5)->Unit(benchmark::kMillisecond);

// The baseline: read the same rows with raw SQLite and parse each payload.
void BM_ReplayRawLoop(benchmark::State& state) {
  auto& f = replay_fixture();
  sqlite3* db = nullptr;
  sqlite3_open_v2((f.dir / "aether.db").c_str(), &db, SQLITE_OPEN_READONLY, nullptr);
  sqlite3_stmt* q = nullptr;
  sqlite3_prepare_v2(db,
                     "SELECT version,event_type,payload,ts FROM events WHERE ns='default' AND "
                     "type='BankAccount' AND id='replay' AND version>=1 ORDER BY version",
                     -1, &q, nullptr);
  for (auto _ : state) {
    const auto start = Clock::now();
    int64_t sum = 0;
    int rows = 0;
    while (sqlite3_step(q) == SQLITE_ROW) {
      const auto* p = static_cast<const char*>(sqlite3_column_blob(q, 2));
      auto j = nlohmann::json::parse(p, p + sqlite3_column_bytes(q, 2));
      sum += j.value("amount", 0);
      ++rows;
    }
    sqlite3_reset(q);
    state.SetIterationTime(seconds_since(start));
    benchmark::DoNotOptimize(sum);
    if (rows != kReplayEvents) state.SkipWithError("bad row count");
  }
  sqlite3_finalize(q);
  sqlite3_close(db);
  state.SetItemsProcessed(state.iterations() * kReplayEvents);
}
BENCHMARK(BM_ReplayRawLoop)->UseManualTime()->Iterations(5)->Unit(benchmark::kMillisecond);

// --- activation of a 1,000,000-event actor ------------------------------------

struct LongActorFixture {
  fs::path dir = bench_dir("long");
  LongActorFixture() {
    auto store = open_store(dir, "normal");
    fill_account(*store, "long", kLongActorEvents);
  }
};
LongActorFixture& long_fixture() {
  static LongActorFixture f;
  return f;
}

void activate_long(benchmark::State& state, bool snapshots) {
  auto& f = long_fixture();
  auto store = open_store(f.dir);
  aether::HostConfig c = aether::bench::sqlite_host_config({"bank"}, f.dir.string());
  c.actors.snapshot = {snapshots ? 1000u : 0u, 2};
  auto host = aether::bench::start_host_over(c, *store);
  if (!snapshots) {
    sqlite3* db = nullptr;
    sqlite3_open((f.dir / "aether.db").c_str(), &db);
    sqlite3_exec(db, "DELETE FROM snapshots", nullptr, nullptr, nullptr);
    sqlite3_close(db);
  } else {
    // The first activation replays everything and leaves a snapshot.
    (void)host->runtime().state("default", "BankAccount", "long");
  }
  uint64_t replayed = 0;
  for (auto _ : state) {
    aether::Runtime& rt = fresh_runtime(*host);
    const auto start = Clock::now();
    auto v = rt.state("default", "BankAccount", "long");
    state.SetIterationTime(seconds_since(start));
    if (!v || v->version != static_cast<uint64_t>(kLongActorEvents)) state.SkipWithError("bad state");
    replayed = rt.stats().last_replay_length;
  }
  (void)host->stop();
  state.counters["events_replayed"] = static_cast<double>(replayed);
}
void BM_Activate1MEventsWithSnapshot(benchmark::State& s) { activate_long(s, true); }
void BM_Activate1MEventsWithoutSnapshot(benchmark::State& s) { activate_long(s, false); }
BENCHMARK(BM_Activate1MEventsWithoutSnapshot)->UseManualTime()->Iterations(1)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Activate1MEventsWithSnapshot)->UseManualTime()->Iterations(10)->Unit(benchmark::kMillisecond);

// --- memory per idle active actor ------------------------------------------------

size_t heap_in_use() { return mallinfo2().uordblks; }

// Actors made active by one command each (a read of an actor without
// events keeps nothing in memory), on sqlite so that the events are on disk:
// what SQLite itself allocates meanwhile (its page cache) is subtracted.
void BM_MemoryPerIdleActor(benchmark::State& state) {
  constexpr int kIdle = 100000;
  double host_bytes = 0, plugin_bytes = 0;
  for (auto _ : state) {
    const fs::path dir = bench_dir("memory");
    aether::HostConfig c = aether::bench::sqlite_host_config({"counter"}, dir.string(), "off");
    c.actors.max_active = 2 * kIdle;
    c.actors.snapshot.every = 0;
    auto host = aether::bench::start_host(c);
    const aether::ActorType* type = host->registry().plugin_for_type("Counter")->find_type("Counter");
    // The plugin's own state, measured alone.
    std::vector<void*> states;
    states.reserve(kIdle);
    size_t before = heap_in_use();
    for (int i = 0; i < kIdle; ++i) states.push_back(*type->create());
    plugin_bytes = static_cast<double>(heap_in_use() - before) / kIdle;
    for (void* s : states) type->destroy(s);

    aether::Runtime& rt = host->runtime();
    auto increment = [](int i) {
      return aether::Command{"default", "Counter", "idle-actor-" + std::to_string(i), "Increment", R"({"by":1})",
                             std::nullopt, ""};
    };
    (void)aether::bench::run_closed_loop(rt, kSenders, kSenders, [&](int i) { return increment(kIdle + i); });
    before = heap_in_use();
    const int64_t sqlite_before = sqlite3_memory_used();
    const int failed = aether::bench::run_closed_loop(rt, kSenders, kIdle, increment);
    const auto grown = static_cast<double>(heap_in_use() - before) - static_cast<double>(sqlite3_memory_used() - sqlite_before);
    if (failed > 0) state.SkipWithError("commands failed");
    if (rt.stats().active_actors < static_cast<uint64_t>(kIdle)) state.SkipWithError("actors passivated");
    host_bytes = grown / kIdle - plugin_bytes;
    (void)host->stop();
  }
  state.counters["host_bytes_per_actor"] = host_bytes;
  state.counters["plugin_state_bytes"] = plugin_bytes;
}
BENCHMARK(BM_MemoryPerIdleActor)->Iterations(1)->Unit(benchmark::kMillisecond);

}  // namespace

int main(int argc, char** argv) {
  return aether::bench::run_with_ratios(
      argc, argv,
      {{"durable throughput: runtime vs raw tx-per-insert", "BM_RawSqliteTxPerInsert/iterations:3/manual_time",
        "BM_RuntimeDurableCommands/iterations:3/manual_time", "goal >= 3x"},
       {"durable throughput: runtime vs raw one-tx", "BM_RawSqliteOneTx/iterations:3/manual_time",
        "BM_RuntimeDurableCommands/iterations:3/manual_time", "goal >= 0.5x"},
       {"durable throughput: runtime vs raw 32-row transactions", "BM_RawSqliteGroupedTx/32/iterations:3/manual_time",
        "BM_RuntimeDurableCommands/iterations:3/manual_time", "raw group commit of the runtime's average batch"},
       {"durable throughput: runtime vs raw 64-row transactions", "BM_RawSqliteGroupedTx/64/iterations:3/manual_time",
        "BM_RuntimeDurableCommands/iterations:3/manual_time", "raw group commit of the largest possible batch"},
       {"ceiling: raw 32-row transactions vs raw one-tx", "BM_RawSqliteOneTx/iterations:3/manual_time",
        "BM_RawSqliteGroupedTx/32/iterations:3/manual_time", "raw SQLite, no runtime"},
       {"ceiling: raw 64-row transactions vs raw one-tx", "BM_RawSqliteOneTx/iterations:3/manual_time",
        "BM_RawSqliteGroupedTx/64/iterations:3/manual_time", "raw SQLite, no runtime: the most any group commit of 64 senders can reach"},
       {"replay: runtime vs raw read+parse", "BM_ReplayRawLoop/iterations:5/manual_time",
        "BM_ReplayThroughRuntime/iterations:5/manual_time", "goal >= 0.7x"}});
}
