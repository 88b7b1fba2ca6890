// The runtime suite, run on every store backend.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <future>
#include <condition_variable>
#include <map>
#include <mutex>
#include <random>
#include <thread>

#include "store/commit_codec.hpp"
#include "support/child_process.hpp"
#include "support/forwarding_journal.hpp"
#include "support/runtime_harness.hpp"
#include "support/temp_dir.hpp"
#include "support/wait.hpp"

namespace aether {
namespace {

using test::RuntimeHarness;
using test::StoreBackend;
using test::eventually;
using json = nlohmann::json;

class RuntimeSuite : public testing::TestWithParam<StoreBackend> {
 protected:
  RuntimeOptions small_options() {
    RuntimeOptions o;
    o.workers = 4;
    return o;
  }
};

TEST_P(RuntimeSuite, BankAccountLifecycle) {
  RuntimeHarness h(GetParam(), small_options());
  auto r = h.send("BankAccount", "acc-1", "Open", R"({"owner":"ann"})");
  ASSERT_TRUE(r.status.is_ok()) << r.status.to_string();
  EXPECT_EQ(r.version, 1u);
  ASSERT_EQ(r.events.size(), 1u);
  EXPECT_EQ(r.events[0].type, "Opened");
  EXPECT_EQ(r.events[0].version, 1u);

  r = h.send("BankAccount", "acc-1", "Deposit", R"({"amount":100})");
  ASSERT_TRUE(r.status.is_ok());
  EXPECT_EQ(r.version, 2u);

  r = h.send("BankAccount", "acc-1", "Withdraw", R"({"amount":500})");
  EXPECT_EQ(r.status.code(), StatusCode::kRejected);
  EXPECT_EQ(r.reject_code, "insufficient_funds");
  EXPECT_EQ(r.status.message(), "insufficient funds: balance 100, requested 500");

  auto st = h.rt().state("default", "BankAccount", "acc-1");
  ASSERT_TRUE(st.is_ok()) << st.status().to_string();
  EXPECT_EQ(st->version, 2u);
  EXPECT_EQ(json::parse(st->view)["balance"], 100);

  auto ev = h.rt().events("default", "BankAccount", "acc-1", 1, 100);
  ASSERT_TRUE(ev.is_ok());
  ASSERT_EQ(ev->size(), 2u);
  EXPECT_EQ((*ev)[1].type, "Deposited");
  EXPECT_EQ((*ev)[1].payload, R"({"amount":100})");

  EXPECT_EQ(h.rt().state("default", "BankAccount", "nobody").status().code(),
            StatusCode::kNotFound);
  auto stats = h.rt().stats();
  EXPECT_EQ(stats.commands_ok, 2u);
  EXPECT_EQ(stats.commands_rejected, 1u);
  EXPECT_EQ(stats.events_appended, 2u);
}

TEST_P(RuntimeSuite, BadInputFailsWithClearErrors) {
  RuntimeHarness h(GetParam(), small_options());
  struct Case {
    std::string ns, type, id, name, payload;
    StatusCode code;
    std::string message_part;
  };
  const std::vector<Case> cases = {
      {"nope", "BankAccount", "a", "Open", "{}", StatusCode::kNotFound, "unknown namespace 'nope'"},
      {"default", "Dragon", "a", "Open", "{}", StatusCode::kNotFound, "unknown actor type 'Dragon'"},
      {"default", "BankAccount", "a", "Steal", "{}", StatusCode::kNotFound,
       "unknown command 'Steal' for actor type BankAccount"},
      {"default", "BankAccount", "a.b", "Open", "{}", StatusCode::kInvalidArgument,
       "invalid actor id 'a.b': contains '.' at position 1"},
      {"default", "BankAccount", "*", "Open", "{}", StatusCode::kInvalidArgument, "contains '*'"},
      {"default", "BankAccount", ">", "Open", "{}", StatusCode::kInvalidArgument, "contains '>'"},
      {"default", "BankAccount", "../x", "Open", "{}", StatusCode::kInvalidArgument, "contains '.'"},
      {"default", "BankAccount", "", "Open", "{}", StatusCode::kInvalidArgument, "is empty"},
      {"default", "BankAccount", std::string(10240, 'x'), "Open", "{}",
       StatusCode::kInvalidArgument, "is 10240 bytes long (at most 128)"},
      {"default", "BankAccount", "a", "Open", R"({"owner":)", StatusCode::kInvalidArgument,
       "malformed JSON in command payload"},
      {"default", "BankAccount", "a", "Open", "[1,2]", StatusCode::kInvalidArgument,
       "must be a JSON object"},
      {"default", "BankAccount", "a", "Open", R"({"owner":5})", StatusCode::kInvalidArgument,
       "field 'owner': expected a string, got 5"},
  };
  for (const auto& c : cases) {
    auto r = h.send(c.type, c.id, c.name, c.payload, c.ns);
    EXPECT_EQ(r.status.code(), c.code) << c.message_part << " -> " << r.status.to_string();
    EXPECT_NE(r.status.message().find(c.message_part), std::string::npos)
        << "wanted '" << c.message_part << "' in: " << r.status.message();
  }
  EXPECT_EQ(h.rt().stats().events_appended, 0u);
}

TEST_P(RuntimeSuite, ExpectedVersionMismatchFailsAtOnce) {
  RuntimeHarness h(GetParam(), small_options());
  ASSERT_TRUE(h.send("Counter", "c", "Increment").status.is_ok());
  ASSERT_TRUE(h.send("Counter", "c", "Increment").status.is_ok());
  Command c{"default", "Counter", "c", "Increment", "{}", 1, ""};
  auto r = h.rt().send_sync(c);
  EXPECT_EQ(r.status.code(), StatusCode::kConflict);
  EXPECT_EQ(r.attempted_version, 1u);
  EXPECT_EQ(r.current_version, 2u);
  EXPECT_NE(r.status.message().find("default/Counter/c: expected version 1, current version 2"),
            std::string::npos)
      << r.status.message();
  c.expected_version = 2;
  r = h.rt().send_sync(c);
  ASSERT_TRUE(r.status.is_ok()) << r.status.to_string();
  EXPECT_EQ(r.version, 3u);
  EXPECT_EQ(h.rt().stats().conflicts, 0u) << "a pinned version is not retried";
}

// 32 threads send random counter commands to 1000 actors. Every actor's
// final version must equal its accepted commands, versions must have no gap
// or repeat, and the state must match a sequential model of what was accepted.
TEST_P(RuntimeSuite, ManyThreadsManyActorsMatchASequentialModel) {
  RuntimeOptions o = small_options();
  o.snapshot.every = 50;
  RuntimeHarness h(GetParam(), o);
  constexpr int kThreads = 32, kActors = 1000, kPerThread = 250;
  struct Tally {
    std::mutex mu;
    uint64_t accepted = 0;
    int64_t value = 0;  // the model: sum of accepted increments - decrements
  };
  std::vector<Tally> tallies(kActors);
  std::atomic<int> errors{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937 rng(static_cast<unsigned>(t) * 7919u);
      for (int i = 0; i < kPerThread; ++i) {
        const int actor = static_cast<int>(rng() % kActors);
        const bool inc = rng() % 3 != 0;
        const int by = 1 + static_cast<int>(rng() % 5);
        auto r = h.send("Counter", "n" + std::to_string(actor), inc ? "Increment" : "Decrement",
                        R"({"by":)" + std::to_string(by) + "}");
        Tally& tally = tallies[actor];
        if (r.status.is_ok()) {
          std::lock_guard lock(tally.mu);
          ++tally.accepted;
          tally.value += inc ? by : -by;
        } else if (r.status.code() != StatusCode::kRejected) {
          errors.fetch_add(1);
          ADD_FAILURE() << r.status.to_string();
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(errors.load(), 0);
  h.rt().passivate_all();  // states below come from snapshots + replay
  for (int a = 0; a < kActors; ++a) {
    const std::string id = "n" + std::to_string(a);
    auto ev = h.store().read_all({"default", "Counter", id});
    ASSERT_TRUE(ev.is_ok()) << ev.status().to_string();
    ASSERT_EQ(ev->size(), tallies[a].accepted) << id;
    int64_t value = 0;
    for (size_t i = 0; i < ev->size(); ++i) {
      ASSERT_EQ((*ev)[i].version, i + 1) << id << ": gap or repeat";
      const auto by = json::parse((*ev)[i].payload)["by"].get<int64_t>();
      value += (*ev)[i].type == "Incremented" ? by : -by;
      ASSERT_GE(value, 0) << id << ": the model never goes negative";
    }
    EXPECT_EQ(value, tallies[a].value) << id;
    if (tallies[a].accepted == 0) continue;
    auto st = h.rt().state("default", "Counter", id);
    ASSERT_TRUE(st.is_ok()) << st.status().to_string();
    EXPECT_EQ(st->version, tallies[a].accepted) << id;
    EXPECT_EQ(json::parse(st->view)["value"], tallies[a].value) << id;
  }
}

TEST_P(RuntimeSuite, PluginMisbehaviourFailsOnlyThatCommand) {
  RuntimeHarness h(GetParam(), small_options());
  ASSERT_TRUE(h.send("Faulty", "f", "Good").status.is_ok());
  struct Case {
    const char* command;
    StatusCode code;
    const char* message;
  };
  for (const Case& c : {
           Case{"Throw", StatusCode::kPluginError, "boom: the plugin threw"},
           Case{"BadEvent", StatusCode::kPluginError,
                "emitted event 'NotDeclared', which is not in the model of Faulty"},
           Case{"BadJson", StatusCode::kPluginError,
                "emitted event Ok with a payload that is not valid JSON"},
           Case{"DeepJson", StatusCode::kPluginError,
                "emitted event Ok whose payload nests deeper than 1024 levels"},
           Case{"Reject", StatusCode::kRejected, "not today"},
       }) {
    auto r = h.send("Faulty", "f", c.command);
    EXPECT_EQ(r.status.code(), c.code) << c.command << ": " << r.status.to_string();
    EXPECT_NE(r.status.message().find(c.message), std::string::npos)
        << c.command << ": " << r.status.message();
  }
  auto r = h.send("Faulty", "f", "Nothing");
  ASSERT_TRUE(r.status.is_ok());
  EXPECT_EQ(r.version, 1u);
  EXPECT_TRUE(r.events.empty());
  // Stream and state are as they were after the one good command.
  EXPECT_EQ(h.store().read_all({"default", "Faulty", "f"})->size(), 1u);
  auto st = h.rt().state("default", "Faulty", "f");
  ASSERT_TRUE(st.is_ok());
  EXPECT_EQ(st->version, 1u);
  EXPECT_EQ(st->view, R"({"ok":1})");
  ASSERT_TRUE(h.send("Faulty", "f", "Good").status.is_ok());
  EXPECT_EQ(h.rt().state("default", "Faulty", "f")->view, R"({"ok":2})");
}

TEST_P(RuntimeSuite, IdempotencyKeyGivesOneEvent) {
  RuntimeHarness h(GetParam(), small_options());
  Command c{"default", "BankAccount", "idem", "Open", R"({"owner":"x"})", std::nullopt, "open-1"};
  auto r1 = h.rt().send_sync(c);
  ASSERT_TRUE(r1.status.is_ok()) << r1.status.to_string();
  EXPECT_FALSE(r1.duplicate);
  c.name = "Deposit";
  c.payload = R"({"amount":5})";
  c.idempotency_key = "dep-1";
  auto d1 = h.rt().send_sync(c);
  auto d2 = h.rt().send_sync(c);
  ASSERT_TRUE(d1.status.is_ok() && d2.status.is_ok());
  EXPECT_TRUE(d2.duplicate);
  EXPECT_EQ(d2.version, d1.version);
  ASSERT_EQ(d2.events.size(), 1u);
  EXPECT_EQ(d2.events[0].payload, d1.events[0].payload);
  EXPECT_EQ(h.store().read_all({"default", "BankAccount", "idem"})->size(), 2u);
}

TEST_P(RuntimeSuite, IdlePassivationAndReactivation) {
  RuntimeOptions o = small_options();
  // Long enough that the actor is still active when the reply is read, even
  // on a slow (sanitizer) build with other tests running.
  o.idle_timeout_ms = 1000;
  RuntimeHarness h(GetParam(), o);
  ASSERT_TRUE(h.send("Counter", "idle", "Increment", R"({"by":3})").status.is_ok());
  EXPECT_EQ(h.rt().stats().active_actors, 1u);
  EXPECT_TRUE(eventually([&] { return h.rt().stats().active_actors == 0; })) << "idle actor was not passivated";
  EXPECT_GE(h.rt().stats().passivations, 1u);
  auto r = h.send("Counter", "idle", "Increment", R"({"by":4})");
  ASSERT_TRUE(r.status.is_ok());
  EXPECT_EQ(r.version, 2u);
  EXPECT_EQ(h.rt().state("default", "Counter", "idle")->view, R"({"value":7})");
}

TEST_P(RuntimeSuite, ActiveActorBoundEvictsLeastRecentlyUsed) {
  RuntimeOptions o = small_options();
  o.max_active_actors = 64;  // one per shard
  RuntimeHarness h(GetParam(), o);
  for (int i = 0; i < 500; ++i) {
    ASSERT_TRUE(h.send("Counter", "lru" + std::to_string(i), "Increment").status.is_ok());
  }
  const auto s = h.rt().stats();
  EXPECT_LE(s.active_actors, 64u + 4u) << "at most one per shard beyond those running";
  EXPECT_GE(s.passivations, 500u - 68u);
  for (int i = 0; i < 500; i += 37) {
    EXPECT_EQ(h.rt().state("default", "Counter", "lru" + std::to_string(i))->version, 1u);
  }
}

TEST_P(RuntimeSuite, BusCarriesOneCommitMessagePerCommit) {
  // The store makes each commit visible on its events subject, in the one
  // commit format: the local bus (memory, sqlite) or NATS (jetstream).
  RuntimeHarness h(GetParam(), small_options());
  std::mutex mu;
  std::condition_variable cv;
  std::vector<Message> commits;
  auto sub = h.bus().subscribe("aether.default.events.*.busc1", [&](const Message& m) {
    std::lock_guard lock(mu);
    commits.push_back(m);
    cv.notify_all();
  });
  ASSERT_TRUE(h.send("BankAccount", "busc1", "Open", R"({"owner":"o"})").status.is_ok());
  ASSERT_TRUE(h.send("BankAccount", "busc1", "Deposit", R"({"amount":9})").status.is_ok());
  ASSERT_TRUE(h.send("Counter", "busc1", "Increment").status.is_ok());
  std::unique_lock lock(mu);
  ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(test::kWaitSeconds), [&] { return commits.size() >= 3; }));
  ASSERT_EQ(commits.size(), 3u) << "one message per commit";
  EXPECT_EQ(commits[0].subject, "aether.default.events.BankAccount.busc1");
  auto c = json::parse(commits[1].data);
  EXPECT_EQ(c["first_version"], 2);
  EXPECT_EQ(c["version"], 2);
  ASSERT_EQ(c["events"].size(), 1u);
  EXPECT_EQ(c["events"][0]["id"], "default.BankAccount.busc1.2");
  EXPECT_EQ(c["events"][0]["type"], "Deposited");
  EXPECT_EQ(c["events"][0]["payload"]["amount"], 9);
  const auto summary = decode_commit_summary(commits[2].data);
  ASSERT_TRUE(summary.has_value());
  EXPECT_EQ(commits[2].subject, "aether.default.events.Counter.busc1");
  EXPECT_EQ(summary->key.to_string(), "default/Counter/busc1");
  EXPECT_EQ(summary->version, 1u);
  EXPECT_EQ(summary->commit_id, json::parse(commits[2].data)["commit_id"]);
}

TEST_P(RuntimeSuite, ConflictingRuntimesRetryAndStayExact) {
  // Two runtimes over one store write the same actors: each keeps a cached
  // version that the other makes stale. The store's check catches every
  // stale write; the runtime reloads and retries.
  RuntimeOptions o = small_options();
  o.conflict_retries = 50;
  RuntimeHarness h(GetParam(), o);
  auto second = h.another_host();
  ASSERT_TRUE(second != nullptr);
  constexpr int kEach = 200;
  std::atomic<int> failures{0};
  auto drive = [&](Runtime& rt) {
    for (int i = 0; i < kEach; ++i) {
      Command c{"default", "Counter", "shared" + std::to_string(i % 4), "Increment", "{}", {}, ""};
      if (!rt.send_sync(c).status.is_ok()) failures.fetch_add(1);
    }
  };
  // Rounds until the two have raced (bounded): on a busy machine one thread
  // can finish a round before the other starts.
  int rounds = 0;
  do {
    std::thread t1([&] { drive(h.rt()); });
    std::thread t2([&] { drive(second->runtime()); });
    t1.join();
    t2.join();
    ++rounds;
  } while (h.rt().stats().conflicts + second->runtime().stats().conflicts == 0 && rounds < 20);
  EXPECT_EQ(failures.load(), 0);
  uint64_t total = 0;
  for (int i = 0; i < 4; ++i) {
    auto ev = h.store().read_all({"default", "Counter", "shared" + std::to_string(i)});
    for (size_t v = 0; v < ev->size(); ++v) ASSERT_EQ((*ev)[v].version, v + 1);
    total += ev->size();
  }
  EXPECT_EQ(total, 2u * kEach * static_cast<uint64_t>(rounds));
  EXPECT_GT(h.rt().stats().conflicts + second->runtime().stats().conflicts, 0u)
      << "the two runtimes should have raced at least once";
  second->runtime().shutdown();
}

TEST_P(RuntimeSuite, RemoteCommitNoticePassivatesAStaleIdleActor) {
  RuntimeHarness h(GetParam(), small_options());
  ASSERT_TRUE(h.send("Counter", "rc", "Increment").status.is_ok());
  // Another node commits version 2 (straight into the shared store).
  AppendRequest other;
  other.key = {"default", "Counter", "rc"};
  other.expected_version = 1;
  other.events = {{"Incremented", R"({"by":10})"}};
  ASSERT_TRUE(h.store().append_sync(other).status.is_ok());
  const auto before = h.rt().stats();
  // The reply to the first command can arrive before its worker has marked
  // the actor idle, and a notice leaves a busy actor alone: send it again
  // (bounded) until the actor was idle when it came.
  eventually(
      [&] {
        h.rt().note_remote_commit(other.key, 2);
        return h.rt().stats().passivations != before.passivations;
      },
      test::kWaitSeconds, 1);
  EXPECT_EQ(h.rt().stats().passivations, before.passivations + 1);
  h.rt().note_remote_commit(other.key, 2);  // nothing active any more: no-op
  auto r = h.send("Counter", "rc", "Increment");
  ASSERT_TRUE(r.status.is_ok());
  EXPECT_EQ(r.version, 3u);
  EXPECT_EQ(h.rt().stats().conflicts, before.conflicts) << "the notice spared the conflict";
  EXPECT_EQ(h.rt().state("default", "Counter", "rc")->view, R"({"value":12})");
}

TEST_P(RuntimeSuite, SnapshotsBoundReplay) {
  RuntimeOptions o = small_options();
  o.snapshot = {100, 2};
  RuntimeHarness h(GetParam(), o);
  constexpr int kEvents = 10000;
  for (int i = 0; i < kEvents; ++i) {
    ASSERT_TRUE(h.send("Counter", "long", "Increment").status.is_ok());
  }
  h.rt().shutdown();
  h.restart();
  auto before = h.rt().stats();
  auto st = h.rt().state("default", "Counter", "long");
  ASSERT_TRUE(st.is_ok());
  EXPECT_EQ(st->version, static_cast<uint64_t>(kEvents));
  EXPECT_EQ(st->view, R"({"value":10000})");
  auto after = h.rt().stats();
  EXPECT_EQ(after.activations - before.activations, 1u);
  EXPECT_LE(after.last_replay_length, 100u) << "activation replayed too much";
  // Older snapshots are pruned after each save, on the snapshot thread: wait
  // (bounded) for the one in progress, if any.
  size_t kept = 0;
  eventually([&] {
    kept = h.store().list_snapshots({"default", "Counter", "long"})->size();
    return kept <= 2;
  });
  EXPECT_LE(kept, 2u) << "keep: 2";
}

TEST_P(RuntimeSuite, SnapshotOfAnotherSchemaIsSkipped) {
  RuntimeOptions o = small_options();
  o.snapshot = {0, 2};  // no snapshots of our own
  RuntimeHarness h(GetParam(), o);
  for (int i = 0; i < 30; ++i) ASSERT_TRUE(h.send("Counter", "s", "Increment").status.is_ok());
  // A snapshot at v25 claiming another schema version, with a wrong value:
  // if it were used, the state would be wrong.
  const ActorKey key{"default", "Counter", "s"};
  ASSERT_TRUE(h.store().save_snapshot(key, Snapshot{25, "counter", 99, R"({"value":12345})", 0}, 2).is_ok());
  h.restart();
  auto st = h.rt().state("default", "Counter", "s");
  ASSERT_TRUE(st.is_ok());
  EXPECT_EQ(st->view, R"({"value":30})");
  EXPECT_EQ(h.rt().stats().last_replay_length, 30u) << "fell back to a full replay";
  // A snapshot of another plugin is skipped as well.
  ASSERT_TRUE(h.store().save_snapshot(key, Snapshot{28, "other", 1, R"({"value":777})", 0}, 2).is_ok());
  h.restart();
  EXPECT_EQ(h.rt().state("default", "Counter", "s")->view, R"({"value":30})");
  // And a matching one is used.
  ASSERT_TRUE(h.store().save_snapshot(key, Snapshot{29, "counter", 1, R"({"value":29})", 0}, 2).is_ok());
  h.restart();
  EXPECT_EQ(h.rt().state("default", "Counter", "s")->view, R"({"value":30})");
  EXPECT_EQ(h.rt().stats().last_replay_length, 1u);
}

TEST_P(RuntimeSuite, ShutdownFinishesQueuedCommands) {
  RuntimeHarness h(GetParam(), small_options());
  std::atomic<int> done{0}, ok{0};
  constexpr int kCommands = 300;
  for (int i = 0; i < kCommands; ++i) {
    Command c{"default", "Counter", "q" + std::to_string(i % 10), "Increment", "{}", {}, ""};
    h.rt().send(c, [&](CommandResult r) {
      if (r.status.is_ok()) ok.fetch_add(1);
      done.fetch_add(1);
    });
  }
  h.rt().shutdown();
  EXPECT_EQ(done.load(), kCommands);
  EXPECT_EQ(ok.load(), kCommands);
  auto r = h.rt().send_sync({"default", "Counter", "q0", "Increment", "{}", {}, ""});
  EXPECT_EQ(r.status.code(), StatusCode::kUnavailable);
  EXPECT_NE(r.status.message().find("shutting down"), std::string::npos);
}

// Operator repair of an active actor with snapshots: a dry run changes
// nothing; the repair drops the cached state and the snapshots above the
// version, and the actor goes on from there.
TEST_P(RuntimeSuite, RepairTruncatesAnActiveActorAndItsSnapshots) {
  RuntimeOptions o = small_options();
  o.snapshot = SnapshotPolicy{2, 5};
  RuntimeHarness h(GetParam(), o);
  const ActorKey key{"default", "BankAccount", "acc-r"};
  ASSERT_TRUE(h.send("BankAccount", "acc-r", "Open", R"({"owner":"ann"})").status.is_ok());
  for (int amount : {100, 20, 5}) {
    ASSERT_TRUE(h.send("BankAccount", "acc-r", "Deposit", R"({"amount":)" + std::to_string(amount) + "}").status.is_ok());
  }
  auto has_snapshot_4 = [&] {
    auto l = h.store().list_snapshots(key);
    return l.is_ok() && !l->empty() && (*l)[0].version == 4;
  };
  ASSERT_TRUE(eventually(has_snapshot_4));

  auto dry = h.rt().repair(key, 2, true);
  ASSERT_TRUE(dry.is_ok()) << dry.status().to_string();
  EXPECT_EQ(dry->last_version, 4u);
  EXPECT_EQ(dry->snapshots, 1u);
  EXPECT_EQ(h.rt().state("default", "BankAccount", "acc-r")->version, 4u) << "a dry run changes nothing";

  EXPECT_EQ(h.rt().repair(key, 9, false).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(h.rt().repair({"default", "NoSuchType", "x"}, 1, false).status().code(), StatusCode::kNotFound);

  auto done = h.rt().repair(key, 2, false);
  ASSERT_TRUE(done.is_ok()) << done.status().to_string();
  EXPECT_EQ(done->snapshots, 1u);
  auto st = h.rt().state("default", "BankAccount", "acc-r");
  ASSERT_TRUE(st.is_ok()) << st.status().to_string();
  EXPECT_EQ(st->version, 2u);
  EXPECT_EQ(json::parse(st->view)["balance"], 100);
  auto r = h.send("BankAccount", "acc-r", "Deposit", R"({"amount":1})");
  ASSERT_TRUE(r.status.is_ok()) << r.status.to_string();
  EXPECT_EQ(r.version, 3u);
  EXPECT_EQ(json::parse(h.rt().state("default", "BankAccount", "acc-r")->view)["balance"], 101);
}

// Reading an actor that has no events answers 404 and keeps nothing in
// memory: a stream of reads of made-up ids must not fill the host.
TEST_P(RuntimeSuite, ReadsOfAbsentActorsKeepNothingInMemory) {
  RuntimeHarness h(GetParam(), small_options());
  ASSERT_TRUE(h.send("Counter", "present", "Increment", R"({"by":2})").status.is_ok());
  // Passivated (once its worker has let go of it), so reading it activates it.
  eventually(
      [&] {
        h.rt().passivate_all();
        return h.rt().stats().active_actors == 0;
      },
      test::kWaitSeconds, 2);
  const RuntimeStats before = h.rt().stats();
  ASSERT_EQ(before.active_actors, 0u);
  for (int i = 0; i < 3000; ++i) {
    const std::string id = "absent-" + std::to_string(i);
    auto r = h.rt().query_state("default", "Counter", id, i % 2 == 1);
    ASSERT_EQ(r.status().code(), StatusCode::kNotFound) << r.status().to_string();
    ASSERT_EQ(r.status().message(), "actor default/Counter/" + id + " has no events");
  }
  const RuntimeStats after = h.rt().stats();
  EXPECT_EQ(after.active_actors, 0u);
  EXPECT_EQ(after.activations, before.activations) << "an absent actor is not activated";
  auto st = h.rt().state("default", "Counter", "present");
  ASSERT_TRUE(st.is_ok()) << st.status().to_string();
  EXPECT_EQ(st->version, 1u);
  EXPECT_EQ(st->view, R"({"value":2})");
  EXPECT_EQ(h.rt().stats().active_actors, 1u);
}

// The watchdog on plugin calls, with the sleepy test plugin. The limit is
// 200 ms and the plugin sleeps 2-3 s, so the watchdog is in time even on a
// loaded machine; each test waits for the given-up calls to return.
class Sleepy {
 public:
  static RuntimeOptions options(uint32_t workers, int64_t call_timeout_ms) {
    RuntimeOptions o;
    o.workers = workers;
    o.types["Sleepy"].call_timeout_ms = call_timeout_ms;
    return o;
  }
  static void load(RuntimeHarness& h) {
    auto p = h.registry().load(std::string(AETHER_TEST_PLUGIN_DIR) + "/sleepy.so");
    ASSERT_TRUE(p.is_ok()) << p.status().to_string();
  }
  static std::future<CommandResult> send(RuntimeHarness& h, const std::string& id,
                                         const std::string& name, const std::string& payload) {
    auto p = std::make_shared<std::promise<CommandResult>>();
    auto f = p->get_future();
    h.rt().send({"default", "Sleepy", id, name, payload, std::nullopt, ""},
                [p](CommandResult r) { p->set_value(std::move(r)); });
    return f;
  }
  // Waits (bounded) until every given-up call has returned.
  static bool wait_no_stuck_calls(RuntimeHarness& h) {
    return eventually([&] { return h.rt().stats().stuck_calls == 0; });
  }
  static std::string reason(const std::string& hook, const std::string& id) {
    return "Sleepy." + hook + " took longer than 200ms (actors.types.Sleepy.call_timeout); actor " +
           "default/Sleepy/" + id + " is quarantined until plugin sleepy is reloaded";
  }
};

TEST_P(RuntimeSuite, ADecideOverItsLimitFailsAndTheOnlyWorkerServesOthers) {
  RuntimeHarness h(GetParam(), Sleepy::options(1, 200));
  Sleepy::load(h);
  auto slow = Sleepy::send(h, "slow", "Sleep", R"({"ms":3000})");
  // The one worker is stuck in that decide: others are served all the same.
  for (int i = 0; i < 5; ++i) {
    auto r = h.send("Sleepy", "other", "Tick");
    ASSERT_TRUE(r.status.is_ok()) << r.status.to_string();
  }
  ASSERT_TRUE(h.send("Counter", "c", "Increment").status.is_ok());
  const CommandResult r = slow.get();
  EXPECT_EQ(r.status.code(), StatusCode::kPluginTimeout);
  EXPECT_EQ(r.status.message(), Sleepy::reason("decide", "slow"));
  // Quarantined: later commands and reads fail at once with the reason.
  auto again = h.send("Sleepy", "slow", "Tick");
  EXPECT_EQ(again.status.code(), StatusCode::kPluginTimeout);
  EXPECT_EQ(again.status.message(), Sleepy::reason("decide", "slow"));
  EXPECT_EQ(h.rt().state("default", "Sleepy", "slow").status().code(), StatusCode::kPluginTimeout);
  // The late decide returns: its events are discarded, nothing is written.
  ASSERT_TRUE(Sleepy::wait_no_stuck_calls(h));
  EXPECT_EQ(h.store().read_all({"default", "Sleepy", "slow"})->size(), 0u);
  EXPECT_EQ(h.send("Sleepy", "slow", "Tick").status.code(), StatusCode::kPluginTimeout);
  EXPECT_EQ(h.rt().stats().plugin_timeouts, 1u);
  EXPECT_EQ(h.store().read_all({"default", "Sleepy", "other"})->size(), 5u);
}

// A type first bound while a swap of its plugin runs (here: in another
// namespace, while the swap waits for a decide to finish) is served by the
// version the swap leaves in place: its first command waits for the swap,
// so it ends after that decide did. An attempt in which the command was
// taken before the swap began shows nothing, and is made again (at most 3).
// Over the stores that serve any namespace (the test's jetstream store
// has the streams of namespace default only).
class SwapBindingSuite : public testing::TestWithParam<StoreBackend> {};

TEST_P(SwapBindingSuite, ATypeFirstBoundDuringASwapGetsTheNewVersion) {
  auto next = Plugin::open(std::string(AETHER_TEST_PLUGIN_DIR) + "/sleepy_v2.so");
  ASSERT_TRUE(next.is_ok()) << next.status().to_string();
  bool shown = false;
  for (int attempt = 0; attempt < 3 && !shown; ++attempt) {
    RuntimeOptions o = Sleepy::options(2, 60000);
    o.namespaces = {"default", "other"};
    RuntimeHarness h(GetParam(), o);
    Sleepy::load(h);
    ASSERT_EQ(h.send("Sleepy", "t", "Tock").status.code(), StatusCode::kNotFound) << "1.0.0 has no Tock";
    test::TempDir dir;
    const std::string started = dir.file("decide-started");
    const std::string ended = dir.file("decide-ended");
    auto slow = Sleepy::send(h, "s", "Sleep", json{{"ms", 1500}, {"touch", started}, {"touch_after", ended}}.dump());
    ASSERT_TRUE(eventually([&] { return std::filesystem::exists(started); })) << "the decide did not start";
    Result<SwapReport> swap = Status::internal("not swapped");
    std::thread swapper([&] { swap = h.rt().swap_plugin(*next, SwapOptions{}); });
    // The swap waits for the decide of "s"; (other, Sleepy) has no binding yet.
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    auto first = std::async(std::launch::async, [&] {
      CommandResult r = h.send("Sleepy", "t", "Tick", "{}", "other");
      return std::make_pair(std::move(r), std::filesystem::exists(ended));
    });
    swapper.join();
    ASSERT_TRUE(swap.is_ok()) << swap.status().to_string();
    ASSERT_TRUE(slow.get().status.is_ok());
    auto [tick, after_decide] = first.get();
    ASSERT_TRUE(tick.status.is_ok()) << tick.status.to_string();
    auto tock = h.send("Sleepy", "t", "Tock", "{}", "other");
    ASSERT_TRUE(tock.status.is_ok()) << "other/Sleepy/t still runs 1.0.0: " << tock.status.to_string();
    EXPECT_EQ(tock.version, 2u);
    EXPECT_TRUE(h.send("Sleepy", "s", "Tock").status.is_ok());
    shown = after_decide;
  }
  EXPECT_TRUE(shown) << "in no attempt did the first command to namespace other wait for the swap";
}

INSTANTIATE_TEST_SUITE_P(Backends, SwapBindingSuite, testing::ValuesIn([] {
                           auto all = test::store_backends();
                           std::erase_if(all, [](const StoreBackend& b) { return b.name == "jetstream"; });
                           return all;
                         }()),
                         test::backend_name);

TEST_P(RuntimeSuite, ReloadingThePluginLiftsTheQuarantine) {
  RuntimeHarness h(GetParam(), Sleepy::options(2, 200));
  Sleepy::load(h);
  ASSERT_TRUE(h.send("Sleepy", "q", "Tick").status.is_ok());
  auto r = Sleepy::send(h, "q", "Sleep", R"({"ms":2000})").get();
  ASSERT_EQ(r.status.code(), StatusCode::kPluginTimeout) << r.status.to_string();
  EXPECT_EQ(h.send("Sleepy", "q", "Tick").status.code(), StatusCode::kPluginTimeout);
  // A swap while the given-up call still runs: the old code stays loaded
  // until it returns.
  auto next = Plugin::open(std::string(AETHER_TEST_PLUGIN_DIR) + "/sleepy_v2.so");
  ASSERT_TRUE(next.is_ok()) << next.status().to_string();
  auto swap = h.rt().swap_plugin(*next, SwapOptions{});
  ASSERT_TRUE(swap.is_ok()) << swap.status().to_string();
  auto after = h.send("Sleepy", "q", "Tick");
  ASSERT_TRUE(after.status.is_ok()) << after.status.to_string();
  EXPECT_EQ(after.version, 2u);
  ASSERT_TRUE(Sleepy::wait_no_stuck_calls(h));
  const auto events = h.store().read_all({"default", "Sleepy", "q"});
  ASSERT_EQ(events->size(), 2u) << "the late decide appended nothing";
  EXPECT_EQ((*events)[1].type, "Ticked");
  EXPECT_EQ(h.rt().state("default", "Sleepy", "q")->view, R"({"slept":0,"ticks":2,"view_ms":0})");
}

TEST_P(RuntimeSuite, AGivenUpApplyOrViewQuarantinesTheActor) {
  RuntimeHarness h(GetParam(), Sleepy::options(2, 200));
  Sleepy::load(h);
  // apply runs after the commit: the command's events are stored, so its
  // reply says so; the actor is quarantined all the same.
  auto r = Sleepy::send(h, "nap", "SleepInApply", R"({"ms":2000})").get();
  ASSERT_TRUE(r.status.is_ok()) << r.status.to_string();
  EXPECT_EQ(r.version, 1u);
  auto next = h.send("Sleepy", "nap", "Tick");
  EXPECT_EQ(next.status.code(), StatusCode::kPluginTimeout);
  EXPECT_EQ(next.status.message(), Sleepy::reason("apply", "nap"));
  ASSERT_TRUE(h.send("Sleepy", "look", "SlowView", R"({"ms":2000})").status.is_ok());
  auto view = h.rt().state("default", "Sleepy", "look");
  EXPECT_EQ(view.status().code(), StatusCode::kPluginTimeout);
  EXPECT_EQ(view.status().message(), Sleepy::reason("view", "look"));
  EXPECT_EQ(h.rt().state("default", "Sleepy", "look").status().message(), Sleepy::reason("view", "look"));
  ASSERT_TRUE(Sleepy::wait_no_stuck_calls(h));
  EXPECT_EQ(h.store().read_all({"default", "Sleepy", "nap"})->size(), 1u);
  EXPECT_EQ(h.store().read_all({"default", "Sleepy", "look"})->size(), 1u);
  EXPECT_EQ(h.rt().stats().plugin_timeouts, 2u);
}

TEST_P(RuntimeSuite, APluginWithTooManyStuckCallsIsRefusedUntilTheyReturn) {
  RuntimeOptions o = Sleepy::options(2, 200);
  o.max_stuck_calls = 1;
  RuntimeHarness h(GetParam(), o);
  Sleepy::load(h);
  auto r = Sleepy::send(h, "a", "Sleep", R"({"ms":2000})").get();
  ASSERT_EQ(r.status.code(), StatusCode::kPluginTimeout) << r.status.to_string();
  auto refused = h.send("Sleepy", "b", "Tick");
  // Unless the stuck call returned already (a very slow machine).
  if (h.rt().stats().stuck_calls == 1) {
    EXPECT_EQ(refused.status.code(), StatusCode::kPluginTimeout);
    EXPECT_NE(refused.status.message().find("plugin sleepy has 1 calls that passed their time limit "
                                            "and have not returned (actors.max_stuck_calls: 1)"),
              std::string::npos)
        << refused.status.message();
  }
  EXPECT_TRUE(h.send("Counter", "c", "Increment").status.is_ok()) << "other plugins are served";
  ASSERT_TRUE(Sleepy::wait_no_stuck_calls(h));
  EXPECT_TRUE(h.send("Sleepy", "b", "Tick").status.is_ok());
}

INSTANTIATE_TEST_SUITE_P(Backends, RuntimeSuite, testing::ValuesIn(test::store_backends()),
                         test::backend_name);

// Only for backends that keep data across a restart.
class PersistentRuntimeSuite : public RuntimeSuite {};

TEST_P(PersistentRuntimeSuite, IdempotencySurvivesARestart) {
  RuntimeHarness h(GetParam(), small_options());
  ASSERT_TRUE(h.send("Counter", "r", "Increment").status.is_ok());
  Command c{"default", "Counter", "r", "Increment", R"({"by":10})", std::nullopt, "once"};
  auto r1 = h.rt().send_sync(c);
  ASSERT_TRUE(r1.status.is_ok());
  h.restart();
  auto r2 = h.rt().send_sync(c);
  ASSERT_TRUE(r2.status.is_ok()) << r2.status.to_string();
  EXPECT_TRUE(r2.duplicate);
  EXPECT_EQ(r2.version, 2u);
  EXPECT_EQ(h.store().read_all({"default", "Counter", "r"})->size(), 2u);
  EXPECT_EQ(h.rt().state("default", "Counter", "r")->view, R"({"value":11})");
}

TEST_P(PersistentRuntimeSuite, StateAndVersionSurviveARestart) {
  RuntimeHarness h(GetParam(), small_options());
  ASSERT_TRUE(h.send("Order", "o1", "Place", R"({"customer":"c"})").status.is_ok());
  ASSERT_TRUE(
      h.send("Order", "o1", "AddLine", R"({"sku":"a","quantity":2,"unit_price":5})").status.is_ok());
  const std::string view = h.rt().state("default", "Order", "o1")->view;
  h.restart();
  auto st = h.rt().state("default", "Order", "o1");
  ASSERT_TRUE(st.is_ok());
  EXPECT_EQ(st->version, 2u);
  EXPECT_EQ(st->view, view);
}

// After a restart nothing is cached: the first command of each actor must
// still be decided on the stored state (with JetStream the runtime first
// guesses that an actor is new, and the commit's version check corrects it).
TEST_P(PersistentRuntimeSuite, FirstCommandsAfterARestartSeeTheStoredState) {
  RuntimeHarness h(GetParam(), small_options());
  ASSERT_TRUE(h.send("BankAccount", "acc", "Open", R"({"owner":"o"})").status.is_ok());
  ASSERT_TRUE(h.send("BankAccount", "acc", "Deposit", R"({"amount":100})").status.is_ok());
  ASSERT_TRUE(h.send("Counter", "c", "Increment").status.is_ok());
  ASSERT_TRUE(h.send("Counter", "c", "Increment").status.is_ok());
  ASSERT_TRUE(h.send("Counter", "one", "Increment", R"({"by":5})").status.is_ok());  // a single commit
  h.restart();

  auto o = h.send("Counter", "one", "Increment");
  ASSERT_TRUE(o.status.is_ok()) << o.status.to_string();
  EXPECT_EQ(o.version, 2u);
  EXPECT_EQ(h.rt().state("default", "Counter", "one")->view, R"({"value":6})");

  // A rejection on the stored state, not on an empty one ("account is not open").
  auto w = h.send("BankAccount", "acc", "Withdraw", R"({"amount":500})");
  EXPECT_EQ(w.status.code(), StatusCode::kRejected);
  EXPECT_EQ(w.reject_code, "insufficient_funds") << w.status.to_string();
  EXPECT_EQ(w.version, 2u);
  // A command that an empty state would also accept: it lands at version 3.
  auto c = h.send("Counter", "c", "Increment");
  ASSERT_TRUE(c.status.is_ok()) << c.status.to_string();
  EXPECT_EQ(c.version, 3u);
  EXPECT_EQ(h.rt().state("default", "Counter", "c")->view, R"({"value":3})");
  // A new actor.
  auto n = h.send("Counter", "n", "Increment");
  ASSERT_TRUE(n.status.is_ok());
  EXPECT_EQ(n.version, 1u);
  EXPECT_EQ(h.rt().stats().conflicts, 0u);  // a wrong guess is not a conflict
  // A command pinned to version 0 of an actor that has events is a conflict.
  Command pinned{"default", "Counter", "acc2", "Increment", "{}", 0, ""};
  ASSERT_TRUE(h.send("Counter", "acc2", "Increment").status.is_ok());
  h.restart();
  auto p = h.rt().send_sync(pinned);
  EXPECT_EQ(p.status.code(), StatusCode::kConflict);
  EXPECT_EQ(p.current_version, 1u);

  auto events = h.store().read_all({"default", "Counter", "c"});
  ASSERT_TRUE(events.is_ok());
  ASSERT_EQ(events->size(), 3u);
  for (uint64_t i = 0; i < 3; ++i) EXPECT_EQ((*events)[i].version, i + 1);
  EXPECT_EQ(h.store().read_all({"default", "Counter", "n"})->size(), 1u);
}

INSTANTIATE_TEST_SUITE_P(Backends, PersistentRuntimeSuite,
                         testing::ValuesIn(test::persistent_store_backends()),
                         test::backend_name);

// --- a store whose reads are round trips ----------------------------------

// A memory store that says its reads are remote, and whose version lookup of
// actor "slow" waits at a gate until the test opens it.
class GatedLookupStore final : public test::ForwardingJournal {
 public:
  struct Gate {
    std::mutex mu;
    std::condition_variable cv;
    bool entered = false;
    bool open = false;
  };
  explicit GatedLookupStore(std::shared_ptr<Gate> gate) : gate_(std::move(gate)) {}

  bool remote_reads() const override { return true; }
  Result<uint64_t> latest_version(const ActorKey& key) override {
    if (key.id == "slow") {
      std::unique_lock lock(gate_->mu);
      gate_->entered = true;
      gate_->cv.notify_all();
      gate_->cv.wait_for(lock, std::chrono::seconds(30), [&] { return gate_->open; });
    }
    return ForwardingJournal::latest_version(key);
  }

 private:
  std::shared_ptr<Gate> gate_;
};

// With one worker: while an actor's activation waits on the store, the
// worker still serves an actor that is active.
TEST(RuntimeRemoteReads, AnActivationWaitingOnTheStoreDoesNotHoldUpActiveActors) {
  auto gate = std::make_shared<GatedLookupStore::Gate>();
  RuntimeOptions o;
  o.workers = 1;
  RuntimeHarness h(StoreBackend{"gated", false,
                                [gate](const std::string&, Bus*) -> std::unique_ptr<Journal> {
                                  return std::make_unique<GatedLookupStore>(gate);
                                }},
                   o);
  auto open_gate = [&] {
    std::lock_guard lock(gate->mu);
    gate->open = true;
    gate->cv.notify_all();
  };
  ASSERT_TRUE(h.send("Counter", "fast", "Increment").status.is_ok());

  // A command with a key: its lookups are round trips (the version, here).
  std::promise<CommandResult> slow_done;
  h.rt().send({"default", "Counter", "slow", "Increment", "{}", {}, "k1"},
              [&](CommandResult r) { slow_done.set_value(std::move(r)); });
  {
    std::unique_lock lock(gate->mu);
    ASSERT_TRUE(gate->cv.wait_for(lock, std::chrono::seconds(test::kWaitSeconds), [&] { return gate->entered; }));
  }
  std::promise<CommandResult> fast_done;
  h.rt().send({"default", "Counter", "fast", "Increment", "{}", {}, ""},
              [&](CommandResult r) { fast_done.set_value(std::move(r)); });
  auto fast = fast_done.get_future();
  const bool served = fast.wait_for(std::chrono::seconds(20)) == std::future_status::ready;  // the gate holds 30 s
  open_gate();
  ASSERT_TRUE(served) << "the active actor waited for another actor's store lookup";
  EXPECT_EQ(fast.get().version, 2u);
  auto slow = slow_done.get_future().get();
  ASSERT_TRUE(slow.status.is_ok()) << slow.status.to_string();
  EXPECT_EQ(slow.version, 1u);
}

// A JetStream backend on a connection of the test's own (a server it may
// pause), and a connection whose requests time out after 300 ms.
Result<std::unique_ptr<NatsConnection>> short_timeout_connection(test::NatsServer& server) {
  NatsOptions no;
  no.servers = {server.url()};
  no.request_timeout_ms = 300;
  return NatsConnection::connect(no);
}

StoreBackend own_jetstream(NatsConnection& conn) {
  return StoreBackend{"jetstream, own server", true,
                      [&conn](const std::string&, Bus*) -> std::unique_ptr<Journal> {
                        auto s = open_jetstream_store(conn, JetStreamOptions{});
                        if (!s) ADD_FAILURE() << s.status().to_string();
                        return s ? std::move(s).value() : nullptr;
                      },
                      [&conn] { return std::unique_ptr<Bus>(std::make_unique<NatsBus>(conn)); }};
}

RuntimeOptions two_workers() {
  RuntimeOptions o;
  o.workers = 2;
  return o;
}

// A commit whose publish went unanswered (its server paused past the
// request timeout) fails with "may have been applied"; the actor's next
// command finds it stored and applies it to the state the actor holds, so
// the actor goes on without a reload (which would need the stream leader).
TEST(RuntimeInDoubt, AnUnansweredCommitFoundStoredIsAppliedWithoutAReload) {
  test::NatsServer server;
  auto connected = short_timeout_connection(server);
  ASSERT_TRUE(connected) << connected.status().to_string();
  RuntimeHarness h(own_jetstream(**connected), two_workers());
  ASSERT_TRUE(h.send("BankAccount", "acc", "Open", R"({"owner":"o"})").status.is_ok());
  ASSERT_TRUE(h.send("BankAccount", "acc", "Deposit", R"({"amount":10})").status.is_ok());
  CommandResult unanswered;
  {
    test::Paused paused(server.pid());
    unanswered = h.send("BankAccount", "acc", "Deposit", R"({"amount":5})");
  }
  ASSERT_FALSE(unanswered.status.is_ok()) << "answered within 300 ms by a paused server";
  EXPECT_EQ(unanswered.status.applied(), Applied::kMaybe) << unanswered.status.to_string();
  const RuntimeStats before = h.rt().stats();

  CommandResult next;
  // Bounded: the server may take a moment after its resume.
  for (int i = 0; i < 20; ++i) {
    next = h.send("BankAccount", "acc", "Deposit", R"({"amount":1})");
    if (next.status.is_ok()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_TRUE(next.status.is_ok()) << next.status.to_string();
  EXPECT_EQ(next.version, 4u) << "the unanswered deposit is version 3";
  const RuntimeStats after = h.rt().stats();
  EXPECT_EQ(after.in_doubt_adopted, before.in_doubt_adopted + 1);
  EXPECT_EQ(after.activations, before.activations) << "the actor was loaded again";
  EXPECT_EQ(after.conflicts, before.conflicts);
  auto st = h.rt().state("default", "BankAccount", "acc");
  ASSERT_TRUE(st.is_ok()) << st.status().to_string();
  EXPECT_EQ(st->version, 4u);
  EXPECT_EQ(json::parse(st->view)["balance"], 16);
  // What a load from the stream gives agrees.
  h.restart();
  auto reloaded = h.rt().state("default", "BankAccount", "acc");
  ASSERT_TRUE(reloaded.is_ok()) << reloaded.status().to_string();
  EXPECT_EQ(reloaded->version, 4u);
  EXPECT_EQ(json::parse(reloaded->view)["balance"], 16);
}

// A read of that actor before its next command is answered from the
// stream, not from the state it held before the unanswered commit.
TEST(RuntimeInDoubt, AReadAfterAnUnansweredCommitSeesWhatWasStored) {
  test::NatsServer server;
  auto connected = short_timeout_connection(server);
  ASSERT_TRUE(connected) << connected.status().to_string();
  RuntimeHarness h(own_jetstream(**connected), two_workers());
  ASSERT_TRUE(h.send("BankAccount", "acc", "Open", R"({"owner":"o"})").status.is_ok());
  CommandResult unanswered;
  {
    test::Paused paused(server.pid());
    unanswered = h.send("BankAccount", "acc", "Deposit", R"({"amount":5})");
  }
  ASSERT_FALSE(unanswered.status.is_ok()) << "answered within 300 ms by a paused server";
  ASSERT_EQ(unanswered.status.applied(), Applied::kMaybe) << unanswered.status.to_string();
  // The paused server stored the deposit when it resumed.
  Result<ActorView> st = Status::unavailable("not read");
  test::eventually([&] {
    st = h.rt().state("default", "BankAccount", "acc");
    return st.is_ok() && st->version == 2;
  });
  ASSERT_TRUE(st.is_ok()) << st.status().to_string();
  EXPECT_EQ(st->version, 2u) << "a read answered from the state before the unanswered deposit";
  EXPECT_EQ(json::parse(st->view)["balance"], 5);
}

// A journal that answers the append of one version "may have been
// applied" at once and stores it only when the test lands it: a commit that
// a server back from a pause works off after the actor was read again.
class LateCommitStore final : public test::ForwardingJournal {
 public:
  struct Held {
    std::mutex mu;
    std::optional<AppendRequest> request;
    LateCommitStore* store = nullptr;
    // Stores the held commit now.
    void land() {
      std::lock_guard lock(mu);
      ASSERT_TRUE(request.has_value()) << "no commit was held";
      std::promise<Status> stored;
      store->ForwardingJournal::append(*request, [&](AppendResult r) { stored.set_value(r.status); });
      ASSERT_TRUE(stored.get_future().get().is_ok());
    }
  };
  LateCommitStore(std::shared_ptr<Held> held, uint64_t late_version) : held_(std::move(held)), late_(late_version) {
    held_->store = this;
  }

  void append(const AppendRequest& r, AppendCallback done) override {
    {
      std::lock_guard lock(held_->mu);
      if (r.expected_version + 1 == late_ && !held_->request) {
        held_->request = r;
        AppendResult result;
        result.status = Status::unavailable("publish not acknowledged in time")
                            .with_cause("publish_not_acknowledged", Applied::kMaybe);
        done(result);
        return;
      }
    }
    ForwardingJournal::append(r, std::move(done));
  }

 private:
  std::shared_ptr<Held> held_;
  const uint64_t late_;
};

// The commit in doubt is stored only after a read found the actor without
// it: later reads still ask the store (until they find the commit there, or
// the actor's next command settles it), and do not answer from the state
// the first read loaded.
TEST(RuntimeInDoubt, ACommitStoredAfterTheReadThatMissedItIsSeenByTheNextRead) {
  auto held = std::make_shared<LateCommitStore::Held>();
  RuntimeHarness h(StoreBackend{"late commit", false,
                                [held](const std::string&, Bus*) -> std::unique_ptr<Journal> {
                                  return std::make_unique<LateCommitStore>(held, 2);
                                }},
                   two_workers());
  ASSERT_TRUE(h.send("BankAccount", "acc", "Open", R"({"owner":"o"})").status.is_ok());
  const CommandResult unanswered = h.send("BankAccount", "acc", "Deposit", R"({"amount":5})");
  ASSERT_FALSE(unanswered.status.is_ok());
  ASSERT_EQ(unanswered.status.applied(), Applied::kMaybe) << unanswered.status.to_string();
  auto before = h.rt().state("default", "BankAccount", "acc");
  ASSERT_TRUE(before.is_ok()) << before.status().to_string();
  EXPECT_EQ(before->version, 1u) << "the deposit is not stored yet";
  held->land();
  auto after = h.rt().state("default", "BankAccount", "acc");
  ASSERT_TRUE(after.is_ok()) << after.status().to_string();
  EXPECT_EQ(after->version, 2u) << "a read answered from the state loaded before the deposit was stored";
  EXPECT_EQ(json::parse(after->view)["balance"], 5);
  // Settled: the next command goes on from the stored deposit.
  const CommandResult next = h.send("BankAccount", "acc", "Deposit", R"({"amount":1})");
  ASSERT_TRUE(next.status.is_ok()) << next.status.to_string();
  EXPECT_EQ(next.version, 3u);
}

// --- the bus on its own ------------------------------------------------------

TEST(LocalBus, PatternsMatchLikeNats) {
  EXPECT_TRUE(subject_matches("a.b.c", "a.b.c"));
  EXPECT_TRUE(subject_matches("a.*.c", "a.b.c"));
  EXPECT_TRUE(subject_matches("a.>", "a.b.c"));
  EXPECT_TRUE(subject_matches("*.*.*", "a.b.c"));
  EXPECT_FALSE(subject_matches("a.>", "a"));
  EXPECT_FALSE(subject_matches("a.*", "a.b.c"));
  EXPECT_FALSE(subject_matches("a.b", "a.b.c"));
  EXPECT_FALSE(subject_matches("a.b.c.d", "a.b.c"));
  EXPECT_EQ(check_pattern("a.>.b"), "'>' may only be the last token");
  EXPECT_EQ(check_pattern("a..b"), "pattern has an empty token");
  EXPECT_EQ(check_pattern("a.b*"), "wildcards must be whole tokens");
  EXPECT_EQ(check_pattern("aether.ns.events.>"), "");
}

TEST(LocalBus, SlowSubscriberDropsInsteadOfBlocking) {
  auto bus = make_local_bus();
  std::mutex gate;
  gate.lock();  // the slow handler blocks until released
  std::atomic<int> fast{0};
  auto slow = bus->subscribe("x.>", [&](const Message&) { std::lock_guard l(gate); },
                             SubscribeOptions{8});
  auto quick = bus->subscribe("x.>", [&](const Message&) { fast.fetch_add(1); });
  for (int i = 0; i < 1000; ++i) bus->publish({"x.y", "{}"});  // must not block
  eventually([&] { return fast.load() >= 1000; });
  EXPECT_EQ(fast.load(), 1000) << "a slow subscriber must not hold back others";
  EXPECT_GE(slow->dropped(), 1000u - 8u - 1u) << "bounded queue: the excess is dropped and counted";
  gate.unlock();
}

}  // namespace
}  // namespace aether
