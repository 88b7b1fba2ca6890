// Idempotency keys: what an actor remembers of its keyed commits, and how a
// keyed command is told to be new, a retry (a duplicate) or a reuse of a key
// for another command.
//
// The record of a key is the journal: a commit made with a key carries it,
// with the command's digest, on its last event (StoredEvent). An actor
// rebuilds its window of recent keys when it activates, from the events it
// replays and from the host record of the snapshot it starts from, so no
// separate write can be missed. The store's key cache (the jetstream bucket,
// the sqlite table) answers only for keys the window no longer holds.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/records.hpp"
#include "core/status.hpp"
#include "runtime/runtime.hpp"
#include "store/store.hpp"

namespace aether {

// The reject code of a key reused for a different command (422).
inline constexpr const char* kIdempotencyKeyReused = "idempotency_key_reused";

// The digest of a command: SHA-256 (first 128 bits, hex) of its name, a zero
// byte and its payload as canonical JSON (parsed and written again: object
// members sorted by name, no whitespace, strings with the minimal escapes).
// Two commands match iff their digests are equal.
std::string command_digest(std::string_view name, std::string_view payload);

// Whether a retry with digest `retry` matches a first commit recorded with
// `first`. An empty digest (a commit recorded before digests were kept) is
// taken as a match.
bool digests_match(const std::string& first, const std::string& retry);

// A commit made with an idempotency key.
struct KeyedCommit {
  uint64_t first_version = 0;
  uint64_t last_version = 0;
  int64_t timestamp_ms = 0;
  std::string digest;
};

// The keys an actor's window has dropped, as a Bloom filter: a key it says
// it does not hold was never dropped (no false negatives); one it may hold
// is looked up in the store's key cache. Slices of doubling capacity (the
// first for 128 keys; 12 bits and 8 probes a key, ~0.3% false positives
// a full slice, which add up over the slices: ~2% with all seven) within
// kMaxBytes of bits: 7 slices, 16,256 keys in 23.8 KiB; then it takes no
// more keys. The probes come from SHA-256 of the key, so a record written
// by one host reads the same in another.
class KeyFilter {
 public:
  static constexpr size_t kMaxBytes = 32 * 1024;

  // False when full: the key is not held.
  bool add(std::string_view key);
  bool may_hold(std::string_view key) const;
  bool empty() const { return slices_.empty(); }
  void clear() { slices_.clear(); }
  size_t bytes() const;

  // Record lines "filter <capacity> <count> <bits in hex>\n", one a slice.
  void encode(std::string& out) const;
  // One such line (without "filter " and the newline); false when it does
  // not decode or the filter would pass kMaxBytes.
  bool decode_slice(std::string_view line);

 private:
  struct Slice {
    uint32_t capacity = 0;
    uint32_t count = 0;
    std::vector<uint64_t> bits;  // capacity * 12 bits, rounded up to 64
  };
  static size_t words_for(uint32_t capacity) { return (static_cast<size_t>(capacity) * 12 + 63) / 64; }
  std::vector<Slice> slices_;
};

// The keys of an actor's most recent keyed commits, within a retention.
// Not thread-safe: owned by the actor, touched by the worker that runs it.
class IdempotencyWindow {
 public:
  // Records a keyed commit; commits come in version order. Drops the keys the
  // retention no longer covers.
  void add(std::string key, KeyedCommit commit, const IdempotencyRetention& retention, int64_t now_ms);

  // The commit of `key`, if remembered and still within the retention.
  const KeyedCommit* find(const std::string& key, const IdempotencyRetention& retention, int64_t now_ms);

  // True iff every keyed commit of the actor is remembered, in the window
  // or in the filter of the keys it dropped: then a key that find() does
  // not know and may_have_dropped() does not hold was never used.
  bool complete() const { return complete_; }
  // Whether `key` may be one the window dropped (its filter holds it).
  bool may_have_dropped(std::string_view key) const { return dropped_.may_hold(key); }
  // Some keys are not known (dropped by the retention, or from before a
  // snapshot that kept no record, or events the stream dropped).
  void mark_incomplete() {
    complete_ = false;
    dropped_.clear();  // every key not in the window is looked up now
  }

  size_t size() const { return entries_.size(); }

  // The host record kept with a snapshot, and back. decode() fails with
  // kCorruption on a record it cannot read.
  std::string encode() const;
  static Result<IdempotencyWindow> decode(std::string_view record);

 private:
  void trim(const IdempotencyRetention& retention, int64_t now_ms);

  std::deque<std::pair<std::string, KeyedCommit>> entries_;  // oldest first
  KeyFilter dropped_;  // the keys trimmed while the window was complete
  bool complete_ = true;
};

// The window an actor starts from when it loads `snapshot`: decoded from its
// host record; a snapshot without one (written by an older host) gives an
// empty, incomplete window.
Result<std::unique_ptr<IdempotencyWindow>> window_from_snapshot(const Snapshot& snapshot);

// The host record of an actor's window for a snapshot (`window` may be null:
// no keyed commits).
std::string snapshot_record(const IdempotencyWindow* window);

// Records the key that a replayed or committed event carries, if any.
void remember_key(std::unique_ptr<IdempotencyWindow>& window, const StoredEvent& event,
                  const IdempotencyRetention& retention, int64_t now_ms);

// What a keyed command is.
struct KeyCheck {
  enum class Outcome { kNew, kDuplicate, kReused };
  Outcome outcome = Outcome::kNew;
  IdempotentCommit first;  // kDuplicate, kReused: the commit made with the key
};

// Looks `key` up for a command with `digest`: in the actor's window (null:
// no keyed commits), then, only when the window is incomplete or its
// filter of dropped keys may hold the key, in the store's key cache. Fails
// only when that cache lookup fails.
Result<KeyCheck> check_key(IdempotencyWindow* window, Journal& store, const ActorKey& actor,
                           const std::string& key, const std::string& digest,
                           const IdempotencyRetention& retention, int64_t now_ms);

// The 422 answer to a key reused for another command.
Status key_reused(const ActorKey& actor, const std::string& key, const IdempotentCommit& first);

}  // namespace aether
