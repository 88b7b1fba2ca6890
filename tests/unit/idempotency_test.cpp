// Idempotency keys over the runtime, on every store backend: a key is found
// from the journal (the events and the snapshot's host record), not from the
// store's key cache; a key reused for another command is refused.
#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "core/sha256.hpp"
#include "runtime/idempotency.hpp"
#include "support/forwarding_journal.hpp"
#include "support/runtime_harness.hpp"
#include "support/wait.hpp"

namespace aether {
namespace {

using test::RuntimeHarness;
using test::StoreBackend;

TEST(Sha256, KnownVectors) {
  EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  EXPECT_EQ(sha256_hex(std::string(1000000, 'a')),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(CommandDigest, MatchesTheSameCommandInAnyJsonLayout) {
  const std::string d = command_digest("Deposit", R"({"amount":5,"note":"x"})");
  EXPECT_EQ(d.size(), 32u);
  EXPECT_EQ(d, command_digest("Deposit", " {\n \"note\" : \"x\", \"amount\":5 } "));
  EXPECT_NE(d, command_digest("Deposit", R"({"amount":6,"note":"x"})"));
  EXPECT_NE(d, command_digest("Withdraw", R"({"amount":5,"note":"x"})"));
  EXPECT_EQ(command_digest("Close", ""), command_digest("Close", "{}"));
  EXPECT_TRUE(digests_match("", d)) << "a commit recorded without a digest";
  EXPECT_FALSE(digests_match(d, command_digest("Close", "{}")));
}

TEST(IdempotencyWindow, KeepsTheNewestKeysWithinItsRetention) {
  IdempotencyRetention r{2, 0};
  IdempotencyWindow w;
  EXPECT_TRUE(w.complete());
  w.add("k1", {1, 1, 1000, "d1"}, r, 1000);
  w.add("k2", {2, 3, 1000, "d2"}, r, 1000);
  EXPECT_TRUE(w.complete());
  w.add("k3", {4, 4, 1000, ""}, r, 1000);
  EXPECT_TRUE(w.complete()) << "k1 was dropped into the filter";
  EXPECT_TRUE(w.may_have_dropped("k1"));
  EXPECT_EQ(w.find("k1", r, 1000), nullptr);
  ASSERT_NE(w.find("k2", r, 1000), nullptr);
  EXPECT_EQ(w.find("k2", r, 1000)->last_version, 3u);
  IdempotencyRetention aged{10, 500};
  IdempotencyWindow a;
  a.add("old", {1, 1, 1000, ""}, aged, 1000);
  a.add("new", {2, 2, 1400, ""}, aged, 1400);
  EXPECT_NE(a.find("old", aged, 1500), nullptr);
  EXPECT_EQ(a.find("old", aged, 1501), nullptr) << "older than 500 ms";
  EXPECT_NE(a.find("new", aged, 1501), nullptr);
  EXPECT_TRUE(a.may_have_dropped("old"));
  EXPECT_FALSE(a.may_have_dropped("new")) << "still in the window";
  EXPECT_NE(a.encode().find("\nfilter "), std::string::npos);
  a.mark_incomplete();  // the filter is of no use then, and goes
  EXPECT_FALSE(a.may_have_dropped("old"));
  EXPECT_EQ(a.encode().find("\nfilter "), std::string::npos) << a.encode();
}

// The filter of dropped keys: never a false negative; few false positives;
// bounded; kept in the snapshot's record.
TEST(IdempotencyWindow, DroppedKeysGoToABoundedFilter) {
  IdempotencyRetention r{10, 0};
  IdempotencyWindow w;
  const int used = 5000;
  for (int i = 0; i < used; ++i) w.add("pay-" + std::to_string(i), {1, 1, 0, ""}, r, 0);
  ASSERT_TRUE(w.complete());
  for (int i = 0; i < used - 10; ++i) {
    ASSERT_TRUE(w.may_have_dropped("pay-" + std::to_string(i))) << i;
  }
  int false_positives = 0;
  for (int i = 0; i < 20000; ++i) false_positives += w.may_have_dropped("new-" + std::to_string(i)) ? 1 : 0;
  EXPECT_LT(false_positives, 20000 / 50) << "over 2% of unused keys taken for dropped ones";

  auto back = IdempotencyWindow::decode(w.encode());
  ASSERT_TRUE(back.is_ok()) << back.status().to_string();
  EXPECT_TRUE(back->complete());
  EXPECT_EQ(back->size(), 10u);
  for (int i = 0; i < used - 10; ++i) ASSERT_TRUE(back->may_have_dropped("pay-" + std::to_string(i))) << i;
  int again = 0;
  for (int i = 0; i < 20000; ++i) again += back->may_have_dropped("new-" + std::to_string(i)) ? 1 : 0;
  EXPECT_EQ(again, false_positives) << "the same filter after the round trip";

  // Past its bound the filter takes no more keys and the window stops
  // being complete.
  int taken = used - 10;
  for (int i = used; i < 40000 && w.complete(); ++i, ++taken) w.add("pay-" + std::to_string(i), {1, 1, 0, ""}, r, 0);
  EXPECT_FALSE(w.complete());
  EXPECT_EQ(taken, 16256 + 1) << "seven slices of 128..8192 keys, and the one key refused";
  EXPECT_LT(w.encode().size(), 4096u) << "the filter of an incomplete window is dropped";

  // A window that never dropped a key writes the first format still.
  IdempotencyWindow small;
  small.add("k", {1, 1, 0, ""}, r, 0);
  EXPECT_EQ(small.encode().rfind("aether-idempotency 1 complete\n", 0), 0u) << small.encode();
}

TEST(IdempotencyWindow, RecordRoundTripsAndRefusesGarbage) {
  IdempotencyRetention r;
  IdempotencyWindow w;
  w.add("a key with spaces\nand a newline", {3, 5, 77, "abc"}, r, 77);
  w.add("k", {6, 6, 78, ""}, r, 78);
  auto back = IdempotencyWindow::decode(w.encode());
  ASSERT_TRUE(back.is_ok()) << back.status().to_string();
  EXPECT_TRUE(back->complete());
  const KeyedCommit* c = back->find("a key with spaces\nand a newline", r, 78);
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->first_version, 3u);
  EXPECT_EQ(c->last_version, 5u);
  EXPECT_EQ(c->timestamp_ms, 77);
  EXPECT_EQ(c->digest, "abc");
  EXPECT_EQ(back->find("k", r, 78)->digest, "");
  for (const char* bad : {"", "garbage", "aether-idempotency 1 maybe\n", "aether-idempotency 1 complete\n1 2 3\n",
                          "aether-idempotency 1 complete\n1 2 3 - zz\n", "aether-idempotency 1 complete\n1 2 3 - 6b"}) {
    EXPECT_EQ(IdempotencyWindow::decode(bad).status().code(), StatusCode::kCorruption) << bad;
  }
  // Filter lines: only in version 2, of the sizes a filter has, within its bound.
  const std::string slice128 = "filter 128 3 " + std::string(24 * 16, '0') + "\n";
  EXPECT_TRUE(IdempotencyWindow::decode("aether-idempotency 2 complete\n" + slice128).is_ok());
  for (const std::string& bad : std::vector<std::string>{
           "aether-idempotency 1 complete\n" + slice128,
           "aether-idempotency 2 complete\nfilter 128 3 00\n",
           "aether-idempotency 2 complete\nfilter 256 3 " + std::string(48 * 16, '0') + "\n",
           "aether-idempotency 2 complete\nfilter 128 129 " + std::string(24 * 16, '0') + "\n",
           "aether-idempotency 2 complete\nfilter 128 3 " + std::string(24 * 16, 'g') + "\n",
           "aether-idempotency 2 complete\n" + slice128 + "1 1 0 - 6b\n",
           "aether-idempotency 2 complete\nfilter 4294967295 3 00\n"}) {
    EXPECT_EQ(IdempotencyWindow::decode(bad).status().code(), StatusCode::kCorruption) << bad.substr(0, 60);
  }
  std::string many = "aether-idempotency 2 complete\n";
  for (uint32_t cap = 128; cap <= 128u << 12; cap *= 2) {
    many += "filter " + std::to_string(cap) + " 0 " + std::string((cap * 12 + 63) / 64 * 16, '0') + "\n";
  }
  EXPECT_EQ(IdempotencyWindow::decode(many).status().code(), StatusCode::kCorruption) << "past the bound";
}

// A memory store that counts the lookups in its key cache.
class CountingKeyCache final : public test::ForwardingJournal {
 public:
  int lookups = 0;
  Result<std::optional<IdempotentCommit>> find_idempotent(const ActorKey& k, const std::string& key) override {
    ++lookups;
    return ForwardingJournal::find_idempotent(k, key);
  }
};

// The store's key cache is asked only about a key the actor may have used:
// one its window dropped (the filter may hold it), or any key once the
// window is incomplete. A new key of a long-lived actor needs no lookup
// (with the jetstream store, one on the bucket's leader, which may be away).
TEST(CheckKey, OnlyAKeyTheWindowMayHaveDroppedIsLookedUp) {
  CountingKeyCache store;
  const ActorKey a{"default", "BankAccount", "acc"};
  const IdempotencyRetention r{2, 0};
  IdempotencyWindow w;
  for (int i = 1; i <= 50; ++i) w.add("k" + std::to_string(i), {uint64_t(i), uint64_t(i), 0, "d"}, r, 0);
  ASSERT_TRUE(w.complete());
  for (int i = 0; i < 100; ++i) {
    auto c = check_key(&w, store, a, "new-" + std::to_string(i), "d", r, 0);
    ASSERT_TRUE(c.is_ok());
    EXPECT_EQ(c->outcome, KeyCheck::Outcome::kNew);
  }
  EXPECT_LE(store.lookups, 2) << "new keys looked up (a false positive of the filter is ~0.3%)";
  const int before = store.lookups;
  auto in_window = check_key(&w, store, a, "k50", "d", r, 0);
  EXPECT_EQ(in_window->outcome, KeyCheck::Outcome::kDuplicate);
  EXPECT_EQ(store.lookups, before) << "answered from the window";
  ASSERT_TRUE(check_key(&w, store, a, "k1", "d", r, 0).is_ok());
  EXPECT_EQ(store.lookups, before + 1) << "a dropped key is asked of the cache";
  w.mark_incomplete();
  ASSERT_TRUE(check_key(&w, store, a, "new-0", "d", r, 0).is_ok());
  EXPECT_EQ(store.lookups, before + 2) << "an incomplete window asks about every key it does not hold";
}

class IdempotencySuite : public testing::TestWithParam<StoreBackend> {
 protected:
  static RuntimeOptions options(uint32_t snapshot_every = 0) {
    RuntimeOptions o;
    o.workers = 2;
    o.snapshot = {snapshot_every, 2};
    return o;
  }
  static Command deposit(int64_t amount, const std::string& key, const std::string& id = "acc") {
    return {"default", "BankAccount", id, "Deposit", R"({"amount":)" + std::to_string(amount) + "}", std::nullopt, key};
  }
  static void open(RuntimeHarness& h, const std::string& id = "acc") {
    ASSERT_TRUE(h.send("BankAccount", id, "Open", R"({"owner":"o"})").status.is_ok());
  }
  // Waits (bounded) until the actor's newest snapshot is at `version`.
  static void wait_snapshot(RuntimeHarness& h, uint64_t version) {
    const bool found = test::eventually([&] {
      auto s = h.store().latest_snapshot(key_);
      return s.is_ok() && s->has_value() && (*s)->version == version;
    });
    if (!found) FAIL() << "no snapshot at version " << version;
  }
  // Waits (bounded) until the store's key cache has `k` (jetstream writes it
  // after the commit), then removes it: what a lost cache write leaves.
  static void wait_cached(RuntimeHarness& h, const std::string& k) {
    test::eventually([&] { return h.store().find_idempotent(key_, k)->has_value(); });
    ASSERT_TRUE(h.store().find_idempotent(key_, k)->has_value()) << k;
  }
  static void lose_cached(RuntimeHarness& h, const std::string& k) {
    wait_cached(h, k);
    ASSERT_TRUE(h.store().forget_idempotent(key_, k).is_ok());
    ASSERT_FALSE(h.store().find_idempotent(key_, k)->has_value());
  }
  static void expect_duplicate(const CommandResult& r, uint64_t version, const std::string& payload) {
    ASSERT_TRUE(r.status.is_ok()) << r.status.to_string();
    EXPECT_TRUE(r.duplicate);
    EXPECT_EQ(r.version, version);
    ASSERT_EQ(r.events.size(), 1u);
    EXPECT_EQ(r.events[0].payload, payload);
  }
  static inline const ActorKey key_{"default", "BankAccount", "acc"};
};

// A commit whose key never reached the cache (a lost bucket write) is still
// a duplicate for a retry after the actor was loaded again from its events.
TEST_P(IdempotencySuite, AKeyLostFromTheCacheIsFoundInTheJournalAfterReactivation) {
  RuntimeHarness h(GetParam(), options());
  open(h);
  ASSERT_TRUE(h.rt().send_sync(deposit(5, "dep-1")).status.is_ok());
  ASSERT_TRUE(h.send("BankAccount", "acc", "Deposit", R"({"amount":7})").status.is_ok());
  lose_cached(h, "dep-1");
  h.restart();
  expect_duplicate(h.rt().send_sync(deposit(5, "dep-1")), 2, R"({"amount":5})");
  EXPECT_EQ(*h.store().latest_version(key_), 3u) << "nothing written again";
  EXPECT_EQ(h.rt().state("default", "BankAccount", "acc")->version, 3u);
}

// The same after the actor loaded a snapshot taken after the keyed commit:
// the snapshot's host record holds the key.
TEST_P(IdempotencySuite, AKeyLostFromTheCacheIsFoundAfterASnapshotLoad) {
  RuntimeHarness h(GetParam(), options(2));
  open(h);
  ASSERT_TRUE(h.rt().send_sync(deposit(5, "dep-2")).status.is_ok());
  ASSERT_TRUE(h.send("BankAccount", "acc", "Deposit", R"({"amount":7})").status.is_ok());
  ASSERT_TRUE(h.send("BankAccount", "acc", "Deposit", R"({"amount":9})").status.is_ok());
  wait_snapshot(h, 4);
  lose_cached(h, "dep-2");
  h.restart();
  expect_duplicate(h.rt().send_sync(deposit(5, "dep-2")), 2, R"({"amount":5})");
  EXPECT_EQ(h.rt().stats().last_replay_length, 0u) << "loaded from the snapshot at version 4";
  EXPECT_EQ(*h.store().latest_version(key_), 4u);
}

// A snapshot written before hosts kept a record says nothing of the keys
// before it: the cache answers for them.
TEST_P(IdempotencySuite, ASnapshotWithoutARecordDefersToTheCache) {
  RuntimeHarness h(GetParam(), options(2));
  open(h);
  ASSERT_TRUE(h.rt().send_sync(deposit(5, "dep-3")).status.is_ok());
  wait_snapshot(h, 2);
  wait_cached(h, "dep-3");
  Snapshot old = **h.store().latest_snapshot(key_);
  ASSERT_NE(old.host_record.find("complete"), std::string::npos) << old.host_record;
  old.host_record.clear();  // as an older host wrote it
  ASSERT_TRUE(h.store().save_snapshot(key_, old, 2).is_ok());
  h.restart();
  expect_duplicate(h.rt().send_sync(deposit(5, "dep-3")), 2, R"({"amount":5})");
  EXPECT_EQ(h.rt().stats().last_replay_length, 0u) << "loaded from the snapshot";
  EXPECT_EQ(*h.store().latest_version(key_), 2u);
}

TEST_P(IdempotencySuite, AKeyReusedForAnotherCommandIsRefused) {
  RuntimeHarness h(GetParam(), options());
  open(h);
  ASSERT_TRUE(h.rt().send_sync(deposit(5, "k")).status.is_ok());
  for (int round = 0; round < 2; ++round) {
    auto other = h.rt().send_sync(deposit(6, "k"));
    EXPECT_EQ(other.status.code(), StatusCode::kRejected) << other.status.to_string();
    EXPECT_EQ(other.reject_code, "idempotency_key_reused");
    EXPECT_NE(other.status.message().find("version 2"), std::string::npos) << other.status.message();
    Command withdraw = deposit(5, "k");
    withdraw.name = "Withdraw";
    EXPECT_EQ(h.rt().send_sync(withdraw).reject_code, "idempotency_key_reused");
    Command same = deposit(5, "k");
    same.payload = "{ \"amount\" : 5 }";
    expect_duplicate(h.rt().send_sync(same), 2, R"({"amount":5})");
    EXPECT_EQ(*h.store().latest_version(key_), 2u) << "nothing written";
    h.restart();  // and the same from the journal
  }
}

// Beyond its retention an actor forgets a key; the cache still knows it.
TEST_P(IdempotencySuite, KeysBeyondTheRetentionAreAnsweredByTheCache) {
  RuntimeOptions o = options();
  o.idempotency = {2, 0};
  RuntimeHarness h(GetParam(), o);
  open(h);
  for (int i = 1; i <= 3; ++i) ASSERT_TRUE(h.rt().send_sync(deposit(i, "k" + std::to_string(i))).status.is_ok());
  wait_cached(h, "k1");
  h.restart();
  expect_duplicate(h.rt().send_sync(deposit(1, "k1")), 2, R"({"amount":1})");
  expect_duplicate(h.rt().send_sync(deposit(3, "k3")), 4, R"({"amount":3})");
  EXPECT_EQ(*h.store().latest_version(key_), 4u);
}

// An actor that dropped keys from its window into the filter (and got the
// filter back from its snapshot's record) still finds a dropped key in the
// store's cache, and takes new keys as new.
TEST_P(IdempotencySuite, ANewKeyOfALongLivedActorNeedsNoLookup) {
  RuntimeOptions o = options(3);
  o.idempotency = {2, 0};
  RuntimeHarness h(GetParam(), o);
  open(h);
  for (int i = 1; i <= 6; ++i) ASSERT_TRUE(h.rt().send_sync(deposit(i, "k" + std::to_string(i))).status.is_ok());
  wait_snapshot(h, 6);
  const std::string record = (*h.store().latest_snapshot(key_))->host_record;
  EXPECT_EQ(record.rfind("aether-idempotency 2 complete\n", 0), 0u) << record;
  EXPECT_NE(record.find("\nfilter 128 3 "), std::string::npos) << "k1, k2, k3 dropped: " << record;
  wait_cached(h, "k1");
  h.restart();  // the window and its filter come back from the snapshot's record
  ASSERT_TRUE(h.rt().send_sync(deposit(7, "k7")).status.is_ok());
  expect_duplicate(h.rt().send_sync(deposit(1, "k1")), 2, R"({"amount":1})");
  for (int i = 8; i <= 12; ++i) {
    auto r = h.rt().send_sync(deposit(i, "k" + std::to_string(i)));
    ASSERT_TRUE(r.status.is_ok()) << r.status.to_string();
    EXPECT_FALSE(r.duplicate);
  }
  expect_duplicate(h.rt().send_sync(deposit(12, "k12")), 13, R"({"amount":12})");
  EXPECT_EQ(*h.store().latest_version(key_), 13u);
}

INSTANTIATE_TEST_SUITE_P(Backends, IdempotencySuite, testing::ValuesIn(test::store_backends()), test::backend_name);

}  // namespace
}  // namespace aether
