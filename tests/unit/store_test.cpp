// The store suite, run on every backend (tests/support/store_backends.hpp).
#include <gtest/gtest.h>

#include <algorithm>
#include <nats/nats.h>
#include <sqlite3.h>

#include <atomic>
#include <chrono>
#include <thread>

#include <nlohmann/json.hpp>

#include "store/commit_codec.hpp"
#include "support/store_backends.hpp"
#include "support/temp_dir.hpp"
#include "support/wait.hpp"

namespace aether {
namespace {

using test::StoreBackend;

// The key cache's answer for `k`, waiting (bounded) for it to appear: the
// jetstream store writes its cache after the commit's ack.
std::optional<IdempotentCommit> cached(Journal& store, const ActorKey& key, const std::string& k) {
  std::optional<IdempotentCommit> found;
  test::eventually([&] {
    auto hit = store.find_idempotent(key, k);
    if (hit.is_ok() && hit->has_value()) found = **hit;
    return found.has_value();
  });
  return found;
}

class StoreSuite : public testing::TestWithParam<StoreBackend> {
 protected:
  void SetUp() override {
    store_ = GetParam().open(dir_.path().string(), nullptr);
    ASSERT_NE(store_, nullptr);
  }

  AppendRequest req(const ActorKey& k, uint64_t expected, std::vector<std::string> types,
                    std::string idem = "") {
    AppendRequest r;
    r.key = k;
    r.expected_version = expected;
    for (auto& t : types) r.events.push_back({t, R"({"n":")" + t + R"("})"});
    r.idempotency_key = std::move(idem);
    r.timestamp_ms = 1700000000000;
    return r;
  }

  test::TempDir dir_;
  std::unique_ptr<Journal> store_;
  const ActorKey a_{"default", "Counter", "a"};
  const ActorKey b_{"default", "Counter", "b"};
};

// What Journal::load hands its sink, recorded. It restores a snapshot
// unless told to refuse it.
struct RecordingSink final : LoadSink {
  bool refuse_snapshot = false;
  int begins = 0;
  bool empty = false;
  uint64_t snapshot_version = 0;  // of the snapshot offered (0: none)
  std::vector<StoredEvent> events;
  Status begin(bool e) override {
    ++begins;
    empty = e;
    return Status::ok();
  }
  bool snapshot(const Snapshot& s) override {
    snapshot_version = s.version;
    return !refuse_snapshot;
  }
  Status event(const StoredEvent& e) override {
    events.push_back(e);
    return Status::ok();
  }
};

TEST_P(StoreSuite, LoadOfAnActorWithoutHistoryIsEmpty) {
  RecordingSink sink;
  ASSERT_TRUE(store_->load(a_, 0, sink).is_ok());
  EXPECT_EQ(sink.begins, 1);
  EXPECT_TRUE(sink.empty);
  EXPECT_EQ(sink.snapshot_version, 0u);
  EXPECT_TRUE(sink.events.empty());
}

TEST_P(StoreSuite, LoadHandsTheSnapshotThenTheEventsAfterIt) {
  ASSERT_TRUE(store_->append_sync(req(a_, 0, {"E1", "E2", "E3"})).status.is_ok());
  ASSERT_TRUE(store_->save_snapshot(a_, Snapshot{2, "p", 1, "s", 1}, 2).is_ok());
  ASSERT_TRUE(store_->append_sync(req(a_, 3, {"E4"})).status.is_ok());
  RecordingSink sink;
  ASSERT_TRUE(store_->load(a_, 0, sink).is_ok());
  EXPECT_EQ(sink.begins, 1);
  EXPECT_FALSE(sink.empty);
  EXPECT_EQ(sink.snapshot_version, 2u);
  ASSERT_EQ(sink.events.size(), 2u);
  EXPECT_EQ(sink.events[0].version, 3u);
  EXPECT_EQ(sink.events[1].version, 4u);
  EXPECT_EQ(sink.events[1].type, "E4");
}

// A snapshot the caller cannot use (another plugin, a schema it cannot
// upgrade): every event is read instead. (Two commits: a JetStream journal
// answers an actor whose whole history is its last commit from memory,
// without a snapshot.)
TEST_P(StoreSuite, LoadReadsEveryEventWhenTheSnapshotIsRefused) {
  ASSERT_TRUE(store_->append_sync(req(a_, 0, {"E1"})).status.is_ok());
  ASSERT_TRUE(store_->append_sync(req(a_, 1, {"E2", "E3"})).status.is_ok());
  ASSERT_TRUE(store_->save_snapshot(a_, Snapshot{3, "p", 1, "s", 1}, 2).is_ok());
  RecordingSink sink;
  sink.refuse_snapshot = true;
  ASSERT_TRUE(store_->load(a_, 0, sink).is_ok());
  EXPECT_EQ(sink.snapshot_version, 3u);
  ASSERT_EQ(sink.events.size(), 3u);
  EXPECT_EQ(sink.events[0].version, 1u);
}

// A sink's error stops the load and is what load returns.
TEST_P(StoreSuite, LoadStopsAtTheSinksError) {
  ASSERT_TRUE(store_->append_sync(req(a_, 0, {"E1", "E2", "E3"})).status.is_ok());
  struct Failing final : LoadSink {
    int seen = 0;
    Status begin(bool) override { return Status::ok(); }
    bool snapshot(const Snapshot&) override { return true; }
    Status event(const StoredEvent&) override {
      return ++seen == 2 ? Status::corruption("bad event") : Status::ok();
    }
  } sink;
  Status s = store_->load(a_, 0, sink);
  EXPECT_EQ(s.code(), StatusCode::kCorruption);
  EXPECT_EQ(s.message(), "bad event");
  EXPECT_EQ(sink.seen, 2);
}

// With the version the journal has just reported, load does not need to
// ask again, and reads the events up to it.
TEST_P(StoreSuite, LoadWithAKnownVersionReadsUpToIt) {
  ASSERT_TRUE(store_->append_sync(req(a_, 0, {"E1", "E2"})).status.is_ok());
  auto latest = store_->latest_version(a_);
  ASSERT_TRUE(latest.is_ok());
  RecordingSink sink;
  ASSERT_TRUE(store_->load(a_, *latest, sink).is_ok());
  ASSERT_EQ(sink.events.size(), 2u);
  EXPECT_EQ(sink.events[1].version, 2u);
}

TEST_P(StoreSuite, AppendsAndReadsBack) {
  auto r = store_->append_sync(req(a_, 0, {"E1", "E2"}));
  ASSERT_TRUE(r.status.is_ok()) << r.status.to_string();
  EXPECT_EQ(r.first_version, 1u);
  EXPECT_EQ(r.version, 2u);
  r = store_->append_sync(req(a_, 2, {"E3"}));
  ASSERT_TRUE(r.status.is_ok());
  EXPECT_EQ(r.version, 3u);
  auto all = store_->read_all(a_);
  ASSERT_TRUE(all.is_ok());
  ASSERT_EQ(all->size(), 3u);
  for (uint64_t i = 0; i < 3; ++i) {
    EXPECT_EQ((*all)[i].version, i + 1);
    EXPECT_EQ((*all)[i].type, "E" + std::to_string(i + 1));
    EXPECT_EQ((*all)[i].payload, R"({"n":"E)" + std::to_string(i + 1) + R"("})");
    EXPECT_EQ((*all)[i].timestamp_ms, 1700000000000);
  }
  EXPECT_EQ(*store_->latest_version(a_), 3u);
  EXPECT_EQ(*store_->latest_version(b_), 0u);
}

// The shadow check of a reload samples passive actors through this, on
// every backend (JetStream: from the events stream's subjects).
TEST_P(StoreSuite, ListsItsActorsForTheShadowCheck) {
  ASSERT_TRUE(store_->append_sync(req(a_, 0, {"E1", "E2", "E3"})).status.is_ok());
  ASSERT_TRUE(store_->append_sync(req(b_, 0, {"E1"})).status.is_ok());
  ASSERT_TRUE(store_->append_sync(req({"default", "Other", "c"}, 0, {"E1"})).status.is_ok());
  auto count = store_->sample_actors("default", "Counter", 0);
  ASSERT_TRUE(count.is_ok()) << count.status().to_string();
  EXPECT_EQ(count->total, 2u);
  EXPECT_TRUE(count->ids.empty());
  auto all = store_->sample_actors("default", "Counter", 10);
  ASSERT_TRUE(all.is_ok());
  std::sort(all->ids.begin(), all->ids.end());
  EXPECT_EQ(all->ids, (std::vector<std::string>{"a", "b"}));
  auto one = store_->sample_actors("default", "Counter", 1);
  ASSERT_TRUE(one.is_ok());
  EXPECT_EQ(one->total, 2u);
  ASSERT_EQ(one->ids.size(), 1u);
  EXPECT_TRUE(one->ids[0] == "a" || one->ids[0] == "b") << one->ids[0];
  auto none = store_->sample_actors("default", "Nobody", 5);
  ASSERT_TRUE(none.is_ok());
  EXPECT_EQ(none->total, 0u);
}

TEST_P(StoreSuite, ConflictCarriesTheVersions) {
  ASSERT_TRUE(store_->append_sync(req(a_, 0, {"E1", "E2"})).status.is_ok());
  auto r = store_->append_sync(req(a_, 1, {"X"}));
  EXPECT_EQ(r.status.code(), StatusCode::kConflict);
  EXPECT_EQ(r.current_version, 2u);
  EXPECT_NE(r.status.message().find("default/Counter/a"), std::string::npos) << r.status.message();
  EXPECT_NE(r.status.message().find("expected version 1"), std::string::npos) << r.status.message();
  EXPECT_NE(r.status.message().find("current version 2"), std::string::npos) << r.status.message();
  r = store_->append_sync(req(b_, 5, {"X"}));
  EXPECT_EQ(r.status.code(), StatusCode::kConflict);
  EXPECT_EQ(r.current_version, 0u);
  EXPECT_EQ(*store_->latest_version(a_), 2u);
}

TEST_P(StoreSuite, MultiEventAppendIsAtomic) {
  ASSERT_TRUE(store_->append_sync(req(a_, 0, {"E1"})).status.is_ok());
  // A conflicting 3-event append writes none of them.
  auto r = store_->append_sync(req(a_, 0, {"X1", "X2", "X3"}));
  EXPECT_EQ(r.status.code(), StatusCode::kConflict);
  auto all = store_->read_all(a_);
  ASSERT_EQ(all->size(), 1u);
  EXPECT_EQ((*all)[0].type, "E1");
  r = store_->append_sync(req(a_, 1, {"Y1", "Y2", "Y3"}));
  ASSERT_TRUE(r.status.is_ok());
  EXPECT_EQ(r.first_version, 2u);
  EXPECT_EQ(r.version, 4u);
}

TEST_P(StoreSuite, ReadsFromAnyVersionWithLimit) {
  std::vector<std::string> types;
  for (int i = 1; i <= 20; ++i) types.push_back("E" + std::to_string(i));
  ASSERT_TRUE(store_->append_sync(req(a_, 0, types)).status.is_ok());
  for (uint64_t from : {1u, 2u, 10u, 20u}) {
    auto r = store_->read_all(a_, from);
    ASSERT_TRUE(r.is_ok());
    ASSERT_EQ(r->size(), 21 - from) << "from " << from;
    EXPECT_EQ(r->front().version, from);
  }
  EXPECT_TRUE(store_->read_all(a_, 21)->empty());
  auto lim = store_->read_all(a_, 5, 3);
  ASSERT_EQ(lim->size(), 3u);
  EXPECT_EQ(lim->back().version, 7u);
  // Visitor can stop the read with its own status.
  int seen = 0;
  Status s = store_->read(a_, 1, UINT64_MAX, [&](const StoredEvent&) {
    return ++seen == 4 ? Status::internal("enough") : Status::ok();
  });
  EXPECT_EQ(s.message(), "enough");
  EXPECT_EQ(seen, 4);
}

// A version past any stored one reads nothing on every backend, also from
// 2^63 on, where a signed 64-bit version would turn negative.
TEST_P(StoreSuite, ReadsNothingFromHugeVersions) {
  ASSERT_TRUE(store_->append_sync(req(a_, 0, {"E1", "E2"})).status.is_ok());
  for (uint64_t from : {uint64_t{3}, uint64_t{INT64_MAX}, uint64_t{1} << 63, UINT64_MAX - 1, UINT64_MAX}) {
    auto r = store_->read_all(a_, from);
    ASSERT_TRUE(r.is_ok()) << "from " << from << ": " << r.status().to_string();
    EXPECT_TRUE(r->empty()) << "from " << from;
    auto one = store_->read_all(a_, from, 1);
    ASSERT_TRUE(one.is_ok()) << "from " << from << ": " << one.status().to_string();
    EXPECT_TRUE(one->empty()) << "from " << from;
  }
}

TEST_P(StoreSuite, IdempotencyKeyWritesOnce) {
  auto r1 = store_->append_sync(req(a_, 0, {"E1", "E2"}, "key-1"));
  ASSERT_TRUE(r1.status.is_ok());
  EXPECT_FALSE(r1.duplicate);
  auto r2 = store_->append_sync(req(a_, 2, {"E1", "E2"}, "key-1"));
  ASSERT_TRUE(r2.status.is_ok());
  EXPECT_TRUE(r2.duplicate);
  EXPECT_EQ(r2.first_version, 1u);
  EXPECT_EQ(r2.version, 2u);
  EXPECT_EQ(*store_->latest_version(a_), 2u);
  auto hit = cached(*store_, a_, "key-1");
  ASSERT_TRUE(hit.has_value());
  EXPECT_EQ(hit->last_version, 2u);
  EXPECT_FALSE(store_->find_idempotent(a_, "key-2")->has_value());
  EXPECT_FALSE(store_->find_idempotent(b_, "key-1")->has_value()) << "keys are per actor";
}

// The journal itself carries a commit's idempotency key and command digest
// (on its last event), so that losing the key cache loses nothing.
TEST_P(StoreSuite, AKeyAndItsDigestTravelWithTheCommit) {
  ASSERT_TRUE(store_->append_sync(req(a_, 0, {"E1"})).status.is_ok());
  AppendRequest keyed = req(a_, 1, {"E2", "E3"}, "pay-1");
  keyed.command_digest = "d1g35t";
  ASSERT_TRUE(store_->append_sync(keyed).status.is_ok());
  ASSERT_TRUE(store_->append_sync(req(a_, 3, {"E4"})).status.is_ok());
  ASSERT_TRUE(cached(*store_, a_, "pay-1").has_value());
  ASSERT_TRUE(store_->forget_idempotent(a_, "pay-1").is_ok());
  ASSERT_FALSE(store_->find_idempotent(a_, "pay-1")->has_value()) << "gone from the cache";
  for (uint64_t from : {1, 3}) {
    auto all = store_->read_all(a_, from);
    ASSERT_TRUE(all.is_ok()) << all.status().to_string();
    for (const StoredEvent& e : *all) {
      if (e.version == 3) {
        EXPECT_EQ(e.idempotency_key, "pay-1");
        EXPECT_EQ(e.command_digest, "d1g35t");
        EXPECT_EQ(e.commit_first_version, 2u);
      } else {
        EXPECT_EQ(e.idempotency_key, "") << "version " << e.version;
        EXPECT_EQ(e.commit_first_version, 0u);
      }
    }
  }
}

// The host's record goes with a snapshot, beside the plugin's bytes.
TEST_P(StoreSuite, ASnapshotKeepsTheHostRecord) {
  ASSERT_TRUE(store_->save_snapshot(a_, Snapshot{3, "p", 1, "plugin-bytes", 5, "host\nrecord\n"}, 2).is_ok());
  ASSERT_TRUE(store_->save_snapshot(b_, Snapshot{4, "p", 1, "only-plugin", 5}, 2).is_ok());
  auto a = store_->latest_snapshot(a_);
  ASSERT_TRUE(a.is_ok() && a->has_value());
  EXPECT_EQ((*a)->bytes, "plugin-bytes");
  EXPECT_EQ((*a)->host_record, "host\nrecord\n");
  auto b = store_->list_snapshots(b_);
  ASSERT_TRUE(b.is_ok() && b->size() == 1u);
  EXPECT_EQ(b->front().bytes, "only-plugin");
  EXPECT_EQ(b->front().host_record, "");
}

TEST_P(StoreSuite, SnapshotsKeepTheNewest) {
  for (uint64_t v = 10; v <= 50; v += 10) {
    Snapshot s{v, "counter", 1, "{\"value\":" + std::to_string(v) + "}", 1};
    ASSERT_TRUE(store_->save_snapshot(a_, s, 2).is_ok());
  }
  auto list = store_->list_snapshots(a_);
  ASSERT_TRUE(list.is_ok());
  ASSERT_EQ(list->size(), 2u);
  EXPECT_EQ((*list)[0].version, 50u);
  EXPECT_EQ((*list)[1].version, 40u);
  auto latest = store_->latest_snapshot(a_);
  ASSERT_TRUE(latest.is_ok() && latest->has_value());
  EXPECT_EQ((*latest)->bytes, "{\"value\":50}");
  EXPECT_EQ((*latest)->plugin, "counter");
  EXPECT_EQ((*latest)->schema_version, 1u);
  EXPECT_FALSE(store_->latest_snapshot(b_)->has_value());
}

TEST_P(StoreSuite, RacingWritersOfOneVersionOneWins) {
  constexpr int kThreads = 8;
  std::atomic<int> ok{0}, conflict{0};
  std::vector<std::thread> ts;
  for (int i = 0; i < kThreads; ++i) {
    ts.emplace_back([&, i] {
      auto r = store_->append_sync(req(a_, 0, {"W" + std::to_string(i)}));
      (r.status.is_ok() ? ok : conflict).fetch_add(1);
    });
  }
  for (auto& t : ts) t.join();
  EXPECT_EQ(ok.load(), 1);
  EXPECT_EQ(conflict.load(), kThreads - 1);
  EXPECT_EQ(*store_->latest_version(a_), 1u);
}

TEST_P(StoreSuite, ConcurrentAppendsToManyActorsAllLand) {
  constexpr int kActors = 50, kPerActor = 20;
  std::vector<std::thread> ts;
  std::atomic<int> failures{0};
  for (int i = 0; i < kActors; ++i) {
    ts.emplace_back([&, i] {
      ActorKey k{"default", "Counter", "c" + std::to_string(i)};
      for (int v = 0; v < kPerActor; ++v) {
        if (!store_->append_sync(req(k, v, {"E"})).status.is_ok()) failures.fetch_add(1);
      }
    });
  }
  for (auto& t : ts) t.join();
  EXPECT_EQ(failures.load(), 0);
  for (int i = 0; i < kActors; ++i) {
    ActorKey k{"default", "Counter", "c" + std::to_string(i)};
    EXPECT_EQ(*store_->latest_version(k), static_cast<uint64_t>(kPerActor));
  }
}

// Operator repair: everything after a version goes (events, the keys of the
// commits removed, snapshots above it); a dry run changes nothing; the actor
// then takes its next commit at that version again.
TEST_P(StoreSuite, TruncateAfterRemovesLaterCommitsTheirKeysAndSnapshots) {
  ASSERT_TRUE(store_->append_sync(req(a_, 0, {"E1", "E2"}, "k1")).status.is_ok());
  ASSERT_TRUE(store_->append_sync(req(a_, 2, {"E3"}, "k2")).status.is_ok());
  ASSERT_TRUE(store_->append_sync(req(a_, 3, {"E4"})).status.is_ok());
  ASSERT_TRUE(store_->append_sync(req(a_, 4, {"E5"}, "k3")).status.is_ok());
  ASSERT_TRUE(store_->append_sync(req(b_, 0, {"E1"})).status.is_ok());
  for (uint64_t v : {2, 5}) ASSERT_TRUE(store_->save_snapshot(a_, Snapshot{v, "p", 1, "s", 1}, 3).is_ok());

  auto plan = store_->truncate_after(a_, 3, true);
  ASSERT_TRUE(plan.is_ok()) << plan.status().to_string();
  EXPECT_EQ(plan->records, 2u);  // two commits, two rows, two events: the same here
  EXPECT_EQ(plan->last_version, 5u);
  auto snaps = store_->drop_snapshots_after(a_, 3, true);
  ASSERT_TRUE(snaps.is_ok()) << snaps.status().to_string();
  EXPECT_EQ(*snaps, 1u);
  EXPECT_EQ(*store_->latest_version(a_), 5u) << "a dry run removes nothing";
  EXPECT_EQ(store_->list_snapshots(a_)->size(), 2u);

  auto done = store_->truncate_after(a_, 3, false);
  ASSERT_TRUE(done.is_ok()) << done.status().to_string();
  EXPECT_EQ(done->records, 2u);
  ASSERT_TRUE(store_->drop_snapshots_after(a_, 3, false).is_ok());
  EXPECT_EQ(*store_->latest_version(a_), 3u);
  auto all = store_->read_all(a_);
  ASSERT_TRUE(all.is_ok()) << all.status().to_string();
  ASSERT_EQ(all->size(), 3u);
  EXPECT_EQ(all->back().type, "E3");
  auto left = store_->list_snapshots(a_);
  ASSERT_EQ(left->size(), 1u);
  EXPECT_EQ((*left)[0].version, 2u);
  EXPECT_TRUE(store_->find_idempotent(a_, "k2")->has_value()) << "a kept commit keeps its key";
  EXPECT_FALSE(store_->find_idempotent(a_, "k3")->has_value()) << "a removed commit's key goes with it";
  EXPECT_EQ(*store_->latest_version(b_), 1u) << "other actors are untouched";

  // The next commit takes version 4 again (on JetStream, although the
  // server still remembers the removed commit of version 4's message id).
  auto next = store_->append_sync(req(a_, 3, {"E4b"}));
  ASSERT_TRUE(next.status.is_ok()) << next.status.to_string();
  EXPECT_EQ(next.version, 4u);
  auto retried = store_->append_sync(req(a_, 4, {"E5b"}, "k3"));
  ASSERT_TRUE(retried.status.is_ok()) << retried.status.to_string();
  EXPECT_FALSE(retried.duplicate) << "the key of a removed commit is free again";
  EXPECT_EQ(retried.version, 5u);
  EXPECT_EQ(store_->read_all(a_)->back().type, "E5b");
}

TEST_P(StoreSuite, TruncateAfterRefusesAVersionBeyondTheHistory) {
  ASSERT_TRUE(store_->append_sync(req(a_, 0, {"E1", "E2"})).status.is_ok());
  auto r = store_->truncate_after(a_, 7, false);
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << r.status().to_string();
  EXPECT_EQ(*store_->latest_version(a_), 2u);
  auto none = store_->truncate_after(b_, 0, false);
  ASSERT_TRUE(none.is_ok()) << none.status().to_string();
  EXPECT_EQ(none->records, 0u) << "an actor without events: nothing to remove";
  auto all = store_->truncate_after(a_, 0, false);
  ASSERT_TRUE(all.is_ok()) << all.status().to_string();
  EXPECT_EQ(*store_->latest_version(a_), 0u);
}

// Only for backends that keep data across a reopen.
class PersistentStoreSuite : public StoreSuite {};

TEST_P(PersistentStoreSuite, SurvivesReopen) {
  ASSERT_TRUE(store_->append_sync(req(a_, 0, {"E1", "E2"}, "k")).status.is_ok());
  ASSERT_TRUE(store_->save_snapshot(a_, Snapshot{2, "p", 1, "bytes", 1}, 1).is_ok());
  // The key cache is written after the ack, and a close drops writes still
  // waiting: wait until it holds the key, then check that it survives.
  ASSERT_TRUE(cached(*store_, a_, "k").has_value());
  store_.reset();
  store_ = GetParam().open(dir_.path().string(), nullptr);
  ASSERT_NE(store_, nullptr);
  EXPECT_EQ(*store_->latest_version(a_), 2u);
  auto hit = store_->find_idempotent(a_, "k");
  ASSERT_TRUE(hit.is_ok()) << hit.status().to_string();
  EXPECT_TRUE(hit->has_value()) << "the cached key survives a reopen";
  auto all = store_->read_all(a_);
  ASSERT_TRUE(all.is_ok() && all->size() == 2u);
  EXPECT_EQ(all->back().idempotency_key, "k") << "the key is in the journal after a reopen";
  EXPECT_EQ((*store_->latest_snapshot(a_))->bytes, "bytes");
}

// What a fresh process reads of an actor, from each version: with JetStream
// the events of the last commit come from the lookup of the actor's version
// when they are all there, and from the stream otherwise.
// load() after a reopen, from a snapshot at every version: the events after
// it, and none when it is at the tip. Both actors' histories span more than
// one commit, so every backend looks the snapshot up.
TEST_P(PersistentStoreSuite, LoadsEveryVersionAfterReopen) {
  for (uint64_t v = 0; v < 3; ++v) {
    ASSERT_TRUE(store_->append_sync(req(a_, v, {"E" + std::to_string(v + 1)})).status.is_ok());
  }
  ASSERT_TRUE(store_->append_sync(req(b_, 0, {"E1"})).status.is_ok());
  ASSERT_TRUE(store_->append_sync(req(b_, 1, {"E2", "E3"})).status.is_ok());
  for (const ActorKey& k : {a_, b_}) {
    for (uint64_t from = 1; from <= 4; ++from) {
      if (from > 1) {
        ASSERT_TRUE(store_->save_snapshot(k, Snapshot{from - 1, "p", 1, "s", 1}, 1).is_ok());
      }
      store_.reset();
      store_ = GetParam().open(dir_.path().string(), nullptr);
      ASSERT_NE(store_, nullptr);
      RecordingSink sink;
      ASSERT_TRUE(store_->load(k, 0, sink).is_ok());
      EXPECT_FALSE(sink.empty);
      EXPECT_EQ(sink.snapshot_version, from - 1) << k.id << " from " << from;
      ASSERT_EQ(sink.events.size(), 4 - from) << k.id << " from " << from;
      for (size_t i = 0; i < sink.events.size(); ++i) {
        EXPECT_EQ(sink.events[i].version, from + i);
        EXPECT_EQ(sink.events[i].type, "E" + std::to_string(from + i));
      }
      auto all = store_->read_all(k, from, 1);
      ASSERT_TRUE(all.is_ok());
      EXPECT_EQ(all->size(), from <= 3 ? 1u : 0u);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Backends, StoreSuite, testing::ValuesIn(test::store_backends()),
                         test::backend_name);
INSTANTIATE_TEST_SUITE_P(Backends, PersistentStoreSuite,
                         testing::ValuesIn(test::persistent_store_backends()), test::backend_name);

// --- sqlite specifics --------------------------------------------------------

// JetStream keeps an idempotency key in a key-value bucket written after the
// commit. A writer that stops between the two leaves a commit whose key is
// not in the bucket: a retry of the command must still find it.
class JetStreamIdempotencyTest : public testing::Test {
 protected:
  void SetUp() override {
    store_ = test::open_jetstream_for_test(dir_.path().string());
    ASSERT_NE(store_, nullptr);
  }
  AppendRequest req(uint64_t expected, const std::string& type, const std::string& idem) {
    AppendRequest r;
    r.key = a_;
    r.expected_version = expected;
    r.events.push_back({type, R"({"n":1})"});
    r.idempotency_key = idem;
    r.timestamp_ms = 1700000000000;
    return r;
  }
  // What a stop between the commit and the bucket write leaves behind.
  void forget_key(const std::string& idem) {
    ASSERT_TRUE(cached(*store_, a_, idem).has_value()) << "the cache write lands first";
    kvStore* kv = nullptr;
    ASSERT_EQ(js_KeyValue(&kv, test::shared_nats().js(), "AETHER_default_IDEM"), NATS_OK);
    std::string hex;
    for (unsigned char c : idem) {
      static const char* d = "0123456789abcdef";
      hex += d[c >> 4];
      hex += d[c & 15];
    }
    ASSERT_EQ(kvStore_Purge(kv, ("Counter.a." + hex).c_str(), nullptr), NATS_OK);
    kvStore_Destroy(kv);
    ASSERT_FALSE(store_->find_idempotent(a_, idem)->has_value()) << "the key should be gone from the bucket";
  }
  test::TempDir dir_;
  std::unique_ptr<Journal> store_;
  const ActorKey a_{"default", "Counter", "a"};
};

TEST_F(JetStreamIdempotencyTest, ARetryFindsALastCommitWhoseKeyWasNotRecorded) {
  ASSERT_TRUE(store_->append_sync(req(0, "E1", "")).status.is_ok());
  auto first = store_->append_sync(req(1, "E2", "pay-7"));
  ASSERT_TRUE(first.status.is_ok());
  forget_key("pay-7");
  // The retry, from a writer that believes the actor is still at version 1.
  auto again = store_->append_sync(req(1, "E2", "pay-7"));
  ASSERT_TRUE(again.status.is_ok()) << again.status.to_string();
  EXPECT_TRUE(again.duplicate);
  EXPECT_EQ(again.first_version, 2u);
  EXPECT_EQ(again.version, 2u);
  EXPECT_EQ(*store_->latest_version(a_), 2u);
  EXPECT_TRUE(cached(*store_, a_, "pay-7").has_value()) << "the key is recorded again";
}

// A message on the actor's subject that is no commit (no version headers):
// the actor cannot load until a repair removes it; the repair refuses a
// version inside a commit, and one a record that does not decode precedes.
TEST_F(JetStreamIdempotencyTest, TruncateRemovesARecordThatDoesNotDecode) {
  AppendRequest two = req(0, "E1", "");
  two.events.push_back({"E2", R"({"n":2})"});
  ASSERT_TRUE(store_->append_sync(two).status.is_ok());
  ASSERT_TRUE(store_->append_sync(req(2, "E3", "")).status.is_ok());
  jsCtx* js = test::shared_nats().js();
  const char garbage[] = "not a commit";
  ASSERT_EQ(js_Publish(nullptr, js, "aether.default.events.Counter.a", garbage, sizeof garbage - 1, nullptr, nullptr),
            NATS_OK);
  auto broken = store_->read_all(a_);
  ASSERT_FALSE(broken.is_ok());
  EXPECT_EQ(broken.status().code(), StatusCode::kCorruption);

  auto inside = store_->truncate_after(a_, 1, true);
  ASSERT_FALSE(inside.is_ok());
  EXPECT_EQ(inside.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(inside.status().message().find("no commit of actor default/Counter/a ends at version 1"),
            std::string::npos) << inside.status().message();

  auto done = store_->truncate_after(a_, 3, false);
  ASSERT_TRUE(done.is_ok()) << done.status().to_string();
  EXPECT_EQ(done->records, 1u);
  EXPECT_EQ(done->last_version, 0u) << "the removed record claims no version";
  auto all = store_->read_all(a_);
  ASSERT_TRUE(all.is_ok()) << all.status().to_string();
  EXPECT_EQ(all->size(), 3u);
  EXPECT_EQ(*store_->latest_version(a_), 3u);
  ASSERT_TRUE(store_->append_sync(req(3, "E4", "")).status.is_ok()) << "the actor takes commits again";

  // A record that does not decode before the version to keep: refused.
  ASSERT_EQ(js_Publish(nullptr, js, "aether.default.events.Counter.a", garbage, sizeof garbage - 1, nullptr, nullptr),
            NATS_OK);
  natsMsg* m = nullptr;
  const std::string body = R"({"events":[{"type":"E5","payload":{}}]})";
  natsMsg_Create(&m, "aether.default.events.Counter.a", nullptr, body.data(), static_cast<int>(body.size()));
  natsMsgHeader_Set(m, "Aether-First-Version", "5");
  natsMsgHeader_Set(m, "Aether-Version", "5");
  ASSERT_EQ(js_PublishMsg(nullptr, js, m, nullptr, nullptr), NATS_OK);
  natsMsg_Destroy(m);
  auto after_bad = store_->truncate_after(a_, 5, true);
  ASSERT_FALSE(after_bad.is_ok());
  EXPECT_NE(after_bad.status().message().find("does not decode"), std::string::npos) << after_bad.status().message();
}

class SqliteStoreTest : public testing::Test {
 protected:
  void raw(const std::string& sql) {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
    char* err = nullptr;
    EXPECT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err), SQLITE_OK) << (err ? err : "");
    sqlite3_free(err);
    sqlite3_close(db);
  }
  std::unique_ptr<Journal> open() {
    SqliteOptions o;
    o.path = path_;
    auto s = open_sqlite_store(o);
    EXPECT_TRUE(s.is_ok()) << s.status().to_string();
    return s ? std::move(s).value() : nullptr;
  }
  // Opens the store with `n` events of actor a_ in it.
  std::unique_ptr<Journal> open_with(size_t n) {
    auto store = open();
    AppendRequest r;
    r.key = a_;
    r.events.assign(n, {"E", "{}"});
    EXPECT_TRUE(store->append_sync(r).status.is_ok());
    return store;
  }
  // Asserts that reading a_ from `from` fails as corruption saying `what`.
  void expect_corruption(Journal& store, uint64_t from, const std::string& what) {
    auto read = store.read_all(a_, from);
    ASSERT_FALSE(read.is_ok());
    EXPECT_EQ(read.status().code(), StatusCode::kCorruption);
    EXPECT_NE(read.status().message().find(what), std::string::npos) << read.status().message();
  }
  test::TempDir dir_;
  std::string path_ = dir_.file("aether.db");
  const ActorKey a_{"default", "Counter", "a"};
};

TEST_F(SqliteStoreTest, GapInStoredVersionsIsReportedWithItsPosition) {
  auto store = open_with(3);
  raw("DELETE FROM events WHERE version = 2");
  expect_corruption(*store, 1, "default/Counter/a, event at version 2");
}

TEST_F(SqliteStoreTest, UndecodableRecordIsReportedWithItsPosition) {
  auto store = open_with(2);
  raw("UPDATE events SET event_type = '' WHERE version = 2");
  expect_corruption(*store, 1, "event at version 2: undecodable record");
}

// A row changed behind the host's back, nested deeper than any stored
// record may be or not UTF-8, reads as corruption at its version.
TEST_F(SqliteStoreTest, DeepOrNonUtf8PayloadIsCorruption) {
  auto store = open_with(3);
  raw("UPDATE events SET payload = '" + std::string(100000, '[') + std::string(100000, ']') +
      "' WHERE version = 2");
  raw("UPDATE events SET payload = CAST(X'7B2261223A22FF227D' AS TEXT) WHERE version = 3");
  expect_corruption(*store, 1, "event at version 2: undecodable record (payload nests deeper than 1032");
  expect_corruption(*store, 3, "event at version 3: undecodable record (payload is not valid UTF-8");
}

TEST_F(SqliteStoreTest, TheSchemaRefusesASecondEventAtAVersion) {
  auto store = open();
  AppendRequest r;
  r.key = a_;
  r.events = {{"E", "{}"}};
  ASSERT_TRUE(store->append_sync(r).status.is_ok());
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
  const int rc = sqlite3_exec(
      db, "INSERT INTO events(ns,type,id,version,event_type,payload,ts) VALUES('default','Counter','a',1,'E','{}',0)",
      nullptr, nullptr, nullptr);
  EXPECT_EQ(rc, SQLITE_CONSTRAINT);
  sqlite3_close(db);
}

// A database written by a host of store schema 1 (keys only in their own
// table) opens, keeps its keys, and takes keyed commits into the journal.
TEST_F(SqliteStoreTest, MigratesASchemaVersion1Database) {
  raw(R"sql(
CREATE TABLE aether_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE events (ns TEXT NOT NULL, type TEXT NOT NULL, id TEXT NOT NULL, version INTEGER NOT NULL,
  event_type TEXT NOT NULL, payload TEXT NOT NULL, ts INTEGER NOT NULL, PRIMARY KEY (ns, type, id, version)) WITHOUT ROWID;
CREATE TABLE idempotency (ns TEXT NOT NULL, type TEXT NOT NULL, id TEXT NOT NULL, key TEXT NOT NULL,
  first_version INTEGER NOT NULL, last_version INTEGER NOT NULL, PRIMARY KEY (ns, type, id, key)) WITHOUT ROWID;
CREATE TABLE snapshots (ns TEXT NOT NULL, type TEXT NOT NULL, id TEXT NOT NULL, version INTEGER NOT NULL,
  plugin TEXT NOT NULL, schema_version INTEGER NOT NULL, bytes BLOB NOT NULL, ts INTEGER NOT NULL,
  PRIMARY KEY (ns, type, id, version)) WITHOUT ROWID;
CREATE TABLE outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, subject TEXT NOT NULL, data TEXT NOT NULL);
INSERT INTO aether_meta VALUES('schema_version','1');
INSERT INTO events VALUES('default','Counter','a',1,'E','{}',0);
INSERT INTO idempotency VALUES('default','Counter','a','old',1,1);
INSERT INTO snapshots VALUES('default','Counter','a',1,'p',1,'bytes',0);
)sql");
  auto store = open();
  ASSERT_NE(store, nullptr);
  auto old = store->find_idempotent(a_, "old");
  ASSERT_TRUE(old.is_ok() && old->has_value());
  EXPECT_EQ((*old)->last_version, 1u);
  EXPECT_EQ((*old)->digest, "");
  EXPECT_EQ((*store->latest_snapshot(a_))->bytes, "bytes");
  AppendRequest r;
  r.key = a_;
  r.expected_version = 1;
  r.events = {{"E", "{}"}};
  r.idempotency_key = "new";
  r.command_digest = "d";
  ASSERT_TRUE(store->append_sync(r).status.is_ok());
  auto all = store->read_all(a_);
  ASSERT_TRUE(all.is_ok() && all->size() == 2u);
  EXPECT_EQ(all->back().idempotency_key, "new");
  store.reset();
  EXPECT_NE(open(), nullptr) << "and opens again as schema 2";
}

TEST_F(SqliteStoreTest, RefusesABadSynchronousSetting) {
  SqliteOptions o;
  o.path = path_;
  o.synchronous = "sometimes";
  auto s = open_sqlite_store(o);
  ASSERT_FALSE(s.is_ok());
  EXPECT_NE(s.status().message().find("synchronous must be off, normal, full or extra"),
            std::string::npos);
}

TEST_F(SqliteStoreTest, GroupCommitBatchesAppendsOfManyActors) {
  std::atomic<size_t> max_batch{0};
  SqliteOptions o;
  o.path = path_;
  o.on_commit_batch = [&](size_t n) {
    size_t cur = max_batch.load();
    while (n > cur && !max_batch.compare_exchange_weak(cur, n)) {}
  };
  auto store = std::move(open_sqlite_store(o)).value();
  std::atomic<int> done{0};
  constexpr int kActors = 200;
  std::vector<AppendRequest> reqs(kActors);  // must outlive the appends
  for (int i = 0; i < kActors; ++i) {
    AppendRequest& r = reqs[i];
    r.key = {"default", "Counter", "g" + std::to_string(i)};
    r.events = {{"E", "{}"}};
    store->append(r, [&](AppendResult res) {
      EXPECT_TRUE(res.status.is_ok()) << res.status.to_string();
      done.fetch_add(1);
    });
  }
  ASSERT_TRUE(store->flush().is_ok());
  EXPECT_EQ(done.load(), kActors);
  EXPECT_GT(max_batch.load(), 1u) << "appends queued together should share a transaction";
}

// The commit message is written by hand; it must be the JSON its
// documentation describes, with any string escaped.
TEST(CommitCodec, EncodesTheDocumentedJsonWithStringsEscaped) {
  AppendRequest r;
  r.key = {"shop", "Order", "o-1"};
  r.expected_version = 4;
  r.timestamp_ms = 1700000000123;
  r.events.push_back({"Placed", R"({"items":[1,2],"note":"a \"b\"\n\u00e9"})"});
  r.events.push_back({"Paid", R"( { "amount" : 12.5 } )"});
  const std::string text = encode_commit(r, 5, "node \"x\"-1", "node\\x\t");
  const auto j = nlohmann::json::parse(text);  // throws (fails the test) if malformed
  EXPECT_EQ(j["ns"], "shop");
  EXPECT_EQ(j["type"], "Order");
  EXPECT_EQ(j["actor_id"], "o-1");
  EXPECT_EQ(j["first_version"], 5);
  EXPECT_EQ(j["version"], 6);
  EXPECT_EQ(j["commit_id"], "node \"x\"-1");
  EXPECT_EQ(j["node"], "node\\x\t");
  EXPECT_EQ(j["timestamp"], 1700000000123);
  ASSERT_EQ(j["events"].size(), 2u);
  EXPECT_EQ(j["events"][0]["id"], "shop.Order.o-1.5");
  EXPECT_EQ(j["events"][0]["version"], 5);
  EXPECT_EQ(j["events"][0]["type"], "Placed");
  EXPECT_EQ(j["events"][0]["payload"], nlohmann::json::parse(r.events[0].payload));
  EXPECT_EQ(j["events"][1]["id"], "shop.Order.o-1.6");
  EXPECT_EQ(j["events"][1]["payload"]["amount"], 12.5);
  EXPECT_EQ(j.size(), 9u);
  // Compact payloads give exactly what a JSON library writes.
  r.events[0].payload = R"({"items":[1,2],"note":"a \"b\"\n"})";
  r.events[1].payload = R"({"amount":12.5})";
  EXPECT_EQ(encode_commit(r, 5, "c", "n"), nlohmann::json::parse(encode_commit(r, 5, "c", "n")).dump());
}

TEST(CommitCodec, SummaryReadsWhatTheEncoderWrote) {
  AppendRequest r;
  r.key = {"shop", "Order", "o-1"};
  r.timestamp_ms = -3;
  // A payload that holds the very text the summary reader looks for.
  r.events.push_back({"Placed", R"({"a":[1],"first_version":9,"events":[{"x":"],\"first_version\":"}]})"});
  r.events.push_back({"Paid", "{}"});
  const std::string text = encode_commit(r, 4, "c-7", "node-2");
  const auto c = decode_commit_summary(text);
  ASSERT_TRUE(c.has_value()) << text;
  EXPECT_EQ(c->key.to_string(), "shop/Order/o-1");
  EXPECT_EQ(c->first_version, 4u);
  EXPECT_EQ(c->version, 5u);
  EXPECT_EQ(c->commit_id, "c-7");
  EXPECT_EQ(c->node, "node-2");
  EXPECT_EQ(c->timestamp_ms, -3);
}

// A command's idempotency key and digest are members of its commit: the
// jetstream store reads them from there (no header of its own).
TEST(CommitCodec, AKeyedCommitCarriesItsKeyAndDigest) {
  AppendRequest r;
  r.key = {"shop", "Order", "o-1"};
  r.events.push_back({"Placed", "{}"});
  r.idempotency_key = "pay \"7\" \\ \u00e9\n";
  r.command_digest = "d1g35t";
  const std::string text = encode_commit(r, 3, "c-9", "node-1");
  const auto j = nlohmann::json::parse(text);
  EXPECT_EQ(j["idempotency_key"], r.idempotency_key);
  EXPECT_EQ(j["command_digest"], "d1g35t");
  EXPECT_EQ(j.size(), 11u);
  EXPECT_EQ(text, j.dump()) << "members in sorted order";
  const auto c = decode_commit_summary(text);
  ASSERT_TRUE(c.has_value()) << text;
  EXPECT_EQ(c->idempotency_key, r.idempotency_key);
  EXPECT_EQ(c->command_digest, "d1g35t");
  EXPECT_EQ(c->first_version, 3u);
  r.idempotency_key.clear();
  const auto plain = nlohmann::json::parse(encode_commit(r, 3, "c-9", "node-1"));
  EXPECT_FALSE(plain.contains("idempotency_key"));
  EXPECT_FALSE(plain.contains("command_digest")) << "a digest only goes with a key";
}

TEST(CommitCodec, SummaryRefusesWhatIsNotACommit) {
  AppendRequest r;
  r.key = {"shop", "Order", "o-1"};
  r.events.push_back({"Placed", "{}"});
  const std::string good = encode_commit(r, 1, "c", "n");
  ASSERT_TRUE(decode_commit_summary(good).has_value());
  for (const std::string& bad : std::vector<std::string>{
           std::string(), std::string("{}"), std::string("not json"), good.substr(0, good.size() - 1),
        R"({"actor_id":"o-1","commit_id":"c","events":[],"first_version":-1,"node":"n","ns":"shop","timestamp":0,"type":"Order","version":1})",
        R"({"actor_id":"o-1","commit_id":"c","events":[],"first_version":2,"node":"n","ns":"shop","timestamp":0,"type":"Order","version":1})",
        R"({"actor_id":"../x","commit_id":"c","events":[],"first_version":1,"node":"n","ns":"shop","timestamp":0,"type":"Order","version":1})",
        R"({"actor_id":"o-1","commit_id":7,"events":[],"first_version":1,"node":"n","ns":"shop","timestamp":0,"type":"Order","version":1})",
        R"({"version":3,"node":"node-2"})"}) {
    EXPECT_FALSE(decode_commit_summary(bad).has_value()) << bad;
  }
}

// --- the commit reader -------------------------------------------------------

TEST(CommitScan, ReadsWhatTheWriterWrites) {
  AppendRequest r;
  r.key = {"shop", "Order", "o-1"};
  r.timestamp_ms = 1700000000123;
  r.events.push_back({"Placed", R"({"items":[{"sku":"a}]","n":2}],"note":"x \"}\" \\ y"})"});
  r.events.push_back({"Paid", R"({"amount":12.5,"ok":true,"none":null})"});
  r.events.push_back({"Closed", "{}"});
  const std::string text = encode_commit(r, 7, "c-1", "node-1");
  ScannedCommit c;
  ASSERT_TRUE(scan_commit(text, c)) << text;
  EXPECT_EQ(c.timestamp, 1700000000123);
  ASSERT_EQ(c.events.size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(c.events[i].type, r.events[i].type);
    EXPECT_EQ(c.events[i].payload, r.events[i].payload);
  }
}

TEST(CommitScan, ReadsAnyLayoutOfTheSameJson) {
  const std::string text = R"(
    { "version" : 2, "extra": {"events": [1, 2]}, "events" : [
        { "payload" : [ "a", { "b" : "c\"]" } ], "id": "x", "type" : "A" } ,
        {"type":"B","payload":-1.5e3}
      ], "timestamp" : -5 , "node": "n" }
  )";
  ScannedCommit c;
  ASSERT_TRUE(scan_commit(text, c));
  EXPECT_EQ(c.timestamp, -5);
  ASSERT_EQ(c.events.size(), 2u);
  EXPECT_EQ(c.events[0].type, "A");
  EXPECT_EQ(c.events[0].payload, R"([ "a", { "b" : "c\"]" } ])");
  EXPECT_EQ(c.events[1].type, "B");
  EXPECT_EQ(c.events[1].payload, "-1.5e3");
}

TEST(CommitScan, LeavesWhatItDoesNotReadToTheFullParser) {
  ScannedCommit c;
  for (const char* text : {
           "", "[]", "{", R"({"events":{}})", R"({"events":[{"type":"A"}]})",
           R"({"events":[{"payload":{}}]})", R"({"events":[{"type":"A\u0042","payload":{}}]})",
           R"({"ev\u0065nts":[]})", R"({"events":[{"type":"A","payload":{"a":1}]})",
           R"({"events":[{"type":"A","payload":"open]})", R"({"events":[]} trailing)",
           R"({"events":[],"timestamp":1.5})", R"({"timestamp":1})"}) {
    EXPECT_FALSE(scan_commit(text, c)) << text;
  }
}

TEST(CommitScan, ReadsTheHeadOfWhatTheWriterWrites) {
  AppendRequest r;
  r.key = {"shop", "Order", "o-1"};
  r.events.push_back({"Placed", R"({"first_version":9,"version":9,"commit_id":"no","x":"],\"version\":"})"});
  r.events.push_back({"Paid", "{}"});
  r.idempotency_key = "pay-7";
  r.command_digest = "d1";
  ScannedHead h;  // views into the text it read
  const std::string keyed = encode_commit(r, 4, "c-1", "node-1");
  ASSERT_TRUE(scan_commit_head(keyed, h));
  EXPECT_EQ(h.first_version, 4u);
  EXPECT_EQ(h.version, 5u);
  EXPECT_EQ(h.commit_id, "c-1");
  EXPECT_EQ(h.idempotency_key, "pay-7");
  EXPECT_EQ(h.command_digest, "d1");
  r.idempotency_key.clear();
  const std::string plain = encode_commit(r, 4, "c-1", "node-1");
  ASSERT_TRUE(scan_commit_head(plain, h));
  EXPECT_EQ(h.commit_id, "c-1");
  EXPECT_EQ(h.idempotency_key, "");
  EXPECT_EQ(h.command_digest, "");
  // Escapes in a string member, or a shape it does not read: the full parser's.
  r.idempotency_key = "a\"b";
  EXPECT_FALSE(scan_commit_head(encode_commit(r, 4, "c-1", "node-1"), h));
  for (const char* text : {"", "{}", R"({"first_version":1,"version":1})", R"({"commit_id":"c","version":1})",
                           R"({"commit_id":"c","first_version":-1,"version":1})",
                           R"({"commit_id":"c","first_version":"1","version":1})",
                           R"({"commit_id":"c","first_version":1,"version":1.5})",
                           R"({"commit_id":7,"first_version":1,"version":1})",
                           R"({"commit_id":"c","first_version":1,"version":1} x)"}) {
    EXPECT_FALSE(scan_commit_head(text, h)) << text;
  }
}

// Commits that the fast reader leaves alone are still read, by the full
// parser: the stored JSON may be laid out in any way.
TEST(JetStreamRead, CommitsInAnyJsonLayoutAreRead) {
  test::TempDir dir;
  auto store = test::open_jetstream_for_test(dir.path().string());
  ASSERT_NE(store, nullptr);
  const std::string id = "layout" + std::to_string(std::chrono::steady_clock::now().time_since_epoch().count());
  const std::string subject = "aether.default.events.Counter." + id;
  auto publish = [&](uint64_t version, const std::string& body) {
    natsMsg* m = nullptr;
    ASSERT_EQ(natsMsg_Create(&m, subject.c_str(), nullptr, body.data(), static_cast<int>(body.size())), NATS_OK);
    natsMsgHeader_Set(m, "Aether-First-Version", std::to_string(version).c_str());
    natsMsgHeader_Set(m, "Aether-Version", std::to_string(version).c_str());
    jsPubAck* pa = nullptr;
    EXPECT_EQ(js_PublishMsg(&pa, test::shared_nats().js(), m, nullptr, nullptr), NATS_OK);
    jsPubAck_Destroy(pa);
    natsMsg_Destroy(m);
  };
  // An escaped type name: the full parser's case.
  publish(1, R"({"events":[{"type":"Increment\u0065d","payload":{"by": 2}}],"timestamp":7})");
  // Pretty-printed and reordered: the fast reader's.
  publish(2, "{\n  \"timestamp\": 8,\n  \"events\": [ { \"payload\": {\"by\": 3}, \"type\": \"Incremented\" } ]\n}");
  auto events = store->read_all({"default", "Counter", id});
  ASSERT_TRUE(events.is_ok()) << events.status().to_string();
  ASSERT_EQ(events->size(), 2u);
  EXPECT_EQ((*events)[0].type, "Incremented");
  EXPECT_EQ(nlohmann::json::parse((*events)[0].payload)["by"], 2);
  EXPECT_EQ((*events)[0].timestamp_ms, 7);
  EXPECT_EQ((*events)[1].type, "Incremented");
  EXPECT_EQ((*events)[1].payload, R"({"by": 3})");
  EXPECT_EQ((*events)[1].timestamp_ms, 8);
  // Those carried their versions as headers, as the store wrote them
  // before; a commit of today's store (versions in the body) follows them.
  AppendRequest next;
  next.key = {"default", "Counter", id};
  next.expected_version = 2;
  next.events.push_back({"Incremented", R"({"by":4})"});
  ASSERT_TRUE(store->append_sync(next).status.is_ok());
  // And one with its versions in the body, laid out otherwise, with an
  // escaped key: the full parser's case for the head too.
  const std::string laid_out = "{ \"version\": 4, \"first_version\": 4, \"commit_id\": \"c \\\"4\\\"\",\n"
                               "  \"idempotency_key\": \"k \\\"4\\\"\", \"timestamp\": 9,\n"
                               "  \"events\": [ {\"type\": \"Incremented\", \"payload\": {\"by\": 5}} ] }";
  jsPubAck* pa = nullptr;
  ASSERT_EQ(js_Publish(&pa, test::shared_nats().js(), subject.c_str(), laid_out.data(),
                       static_cast<int>(laid_out.size()), nullptr, nullptr),
            NATS_OK);
  jsPubAck_Destroy(pa);
  auto fresh = test::open_jetstream_for_test(dir.path().string());  // a reopen: no cache
  ASSERT_NE(fresh, nullptr);
  auto all = fresh->read_all({"default", "Counter", id});
  ASSERT_TRUE(all.is_ok()) << all.status().to_string();
  ASSERT_EQ(all->size(), 4u);
  EXPECT_EQ((*all)[2].version, 3u);
  EXPECT_EQ((*all)[2].payload, R"({"by":4})");
  EXPECT_EQ((*all)[3].version, 4u);
  EXPECT_EQ((*all)[3].payload, R"({"by": 5})");
  EXPECT_EQ((*all)[3].idempotency_key, "k \"4\"");
  EXPECT_EQ(*fresh->latest_version({"default", "Counter", id}), 4u);
}

// A commit carries NATS's own headers and none of the store's: its
// versions, id, idempotency key and digest are in its body. A key with
// characters JSON escapes is found again by a store that has no cache.
TEST_F(JetStreamIdempotencyTest, ACommitCarriesItsKeyInItsBodyAndNoHeaderOfItsOwn) {
  const std::string key = "pay \"7\" \\ \u00e9";
  ASSERT_TRUE(store_->append_sync(req(0, "E1", "")).status.is_ok());
  AppendRequest keyed = req(1, "E2", key);
  keyed.command_digest = "d1g35t";
  ASSERT_TRUE(store_->append_sync(keyed).status.is_ok());
  natsMsg* m = nullptr;
  ASSERT_EQ(js_GetLastMsg(&m, test::shared_nats().js(), "AETHER_default", "aether.default.events.Counter.a", nullptr,
                          nullptr),
            NATS_OK);
  const char** names = nullptr;
  int count = 0;
  ASSERT_EQ(natsMsgHeader_Keys(m, &names, &count), NATS_OK);
  for (int i = 0; i < count; ++i) {
    EXPECT_EQ(std::string(names[i]).rfind("Nats-", 0), 0u) << "header " << names[i];
  }
  free(static_cast<void*>(names));
  const auto body = nlohmann::json::parse(std::string(natsMsg_GetData(m), natsMsg_GetDataLength(m)));
  natsMsg_Destroy(m);
  EXPECT_EQ(body["idempotency_key"], key);
  EXPECT_EQ(body["command_digest"], "d1g35t");
  EXPECT_EQ(body["first_version"], 2);
  EXPECT_EQ(body["version"], 2);

  forget_key(key);
  auto fresh = test::open_jetstream_for_test(dir_.path().string());  // a reopen: no cache
  ASSERT_NE(fresh, nullptr);
  auto all = fresh->read_all(a_);
  ASSERT_TRUE(all.is_ok()) << all.status().to_string();
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ((*all)[1].idempotency_key, key);
  EXPECT_EQ((*all)[1].command_digest, "d1g35t");
  EXPECT_EQ((*all)[1].commit_first_version, 2u);
  // A retry from a writer that believes the actor is still at version 1.
  AppendRequest again = req(1, "E2", key);
  again.command_digest = "d1g35t";
  auto r = fresh->append_sync(again);
  ASSERT_TRUE(r.status.is_ok()) << r.status.to_string();
  EXPECT_TRUE(r.duplicate);
  EXPECT_EQ(r.version, 2u);
  EXPECT_EQ(r.duplicate_digest, "d1g35t");
  EXPECT_EQ(*fresh->latest_version(a_), 2u);
}

// A row that does not decode (as an outside writer could leave): a repair
// removes it and everything after it, in one transaction; a gap before the
// version to keep is refused.
TEST_F(SqliteStoreTest, TruncateRemovesARowThatDoesNotDecode) {
  auto store = open();
  AppendRequest r{a_, 0, {{"E", "{}"}, {"E", "{}"}}, "", "", 0};
  ASSERT_TRUE(store->append_sync(r).status.is_ok());
  raw("INSERT INTO events(ns,type,id,version,event_type,payload,ts) VALUES('default','Counter','a',3,'',X'00',0)");
  ASSERT_EQ(store->read_all(a_).status().code(), StatusCode::kCorruption);
  auto done = store->truncate_after(a_, 2, false);
  ASSERT_TRUE(done.is_ok()) << done.status().to_string();
  EXPECT_EQ(done->records, 1u);
  EXPECT_EQ(done->last_version, 3u);
  ASSERT_TRUE(store->read_all(a_).is_ok());
  EXPECT_EQ(*store->latest_version(a_), 2u);

  raw("DELETE FROM events WHERE version = 1");
  auto gap = store->truncate_after(a_, 2, false);
  ASSERT_FALSE(gap.is_ok());
  EXPECT_EQ(gap.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(gap.status().message().find("not all there"), std::string::npos) << gap.status().message();
}

}  // namespace
}  // namespace aether
