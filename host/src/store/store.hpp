// The store module: where events and snapshots live.
//
// Journal: per-actor event streams with optimistic concurrency, snapshots
// with retention, and the broadcast of every commit. An append carries the
// version the writer expects the stream to have; the journal writes all of
// the append's events or none, and only if the stream is at that version.
// Backends: memory (tests), sqlite (embedded default), jetstream
// (store/jetstream_store.hpp, the cluster's).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/records.hpp"
#include "core/status.hpp"

namespace aether {

// What the writer asks for.
struct AppendRequest {
  ActorKey key;
  // The stream must be at exactly this version (0 = no events yet).
  uint64_t expected_version = 0;
  // 1..n events, written atomically as versions expected+1 .. expected+n.
  std::vector<NewEvent> events;
  // Optional. Recorded with the commit, atomically (on its last event, see
  // StoredEvent), and in the store's key cache. When the store recognises
  // the key at append time, nothing is written and the first commit's
  // versions are returned with `duplicate` set: memory and sqlite recognise
  // every key in their cache; jetstream a key on the actor's last commit,
  // or on a commit made on the same version (a racing writer). Recognising
  // older keys is the caller's job (the runtime keeps each actor's recent
  // keys, read from the journal).
  std::string idempotency_key;
  // With a key: the digest of the command (name and canonical payload),
  // recorded with the key so that a retry can be told from a reuse.
  std::string command_digest;
  int64_t timestamp_ms = 0;
};

struct AppendResult {
  // kOk: written (or a duplicate, see below). kConflict: the stream was not
  // at expected_version; `current_version` says where it is. Other codes:
  // the store failed (kUnavailable, kInternal, kCorruption).
  Status status;
  // kOk: the stream's version after the append (the last event's version).
  uint64_t version = 0;
  // kOk: the version of the first event of this commit.
  uint64_t first_version = 0;
  // kConflict: the stream's actual version.
  uint64_t current_version = 0;
  // kOk: the idempotency key was seen before; [first_version, version] are
  // the versions that first commit wrote. Nothing was written now.
  bool duplicate = false;
  // duplicate: the command digest recorded with the first commit ("" when
  // it has none).
  std::string duplicate_digest;
  // kConflict: what moved the stream past expected_version is this
  // writer's own previous append to the actor, the one that failed with
  // "may have been applied": it is stored, and versions
  // expected_version+1 .. current_version are exactly its events. The
  // caller may apply them to the state it holds instead of reloading.
  bool previous_append_stored = false;
};

// A commit recorded under an idempotency key.
struct IdempotentCommit {
  uint64_t first_version = 0;
  uint64_t last_version = 0;
  std::string digest = {};  // the command digest recorded with it ("" = none)
};

// What Journal::truncate_after removed (or, as a dry run, would remove).
struct TruncateResult {
  // Stored records after the version: sqlite rows, JetStream commit
  // messages (decodable or not), memory events.
  uint64_t records = 0;
  // The highest version those records claim (0 when none says).
  uint64_t last_version = 0;
};

// Called once per event, in version order. Returning a non-OK status stops
// the read and makes it return that status.
using EventVisitor = std::function<Status(const StoredEvent&)>;

// Called once with the result of an append, on any thread (possibly inside
// append() itself).
using AppendCallback = std::function<void(AppendResult)>;

// The actors of one (namespace, actor type) that have events: how many,
// and up to `n` of their ids chosen at random (Journal::sample_actors).
struct ActorSample {
  uint64_t total = 0;
  std::vector<std::string> ids;
};

// Builds an ActorSample by reservoir sampling: offer() every actor once;
// each is kept with chance n / total.
class ActorSampler {
 public:
  explicit ActorSampler(uint64_t n);
  void offer(const std::string& id);
  ActorSample take() { return std::move(out_); }

 private:
  uint64_t n_;
  uint64_t rng_;  // xorshift64* state
  ActorSample out_;
};

// What Journal::load hands its caller (the runtime's activation), in order:
// begin() once, then snapshot() at most once, then event() for each event
// after the state it has.
class LoadSink {
 public:
  virtual ~LoadSink() = default;
  // `empty`: the actor has no history at all (no events, no snapshot that
  // outlived its events). A non-OK status stops the load and is returned.
  virtual Status begin(bool empty) = 0;
  // The actor's newest snapshot. True when the state was restored from it:
  // only the events after it are read then; false, all of them.
  virtual bool snapshot(const Snapshot& snapshot) = 0;
  // The events after the state, in version order. A non-OK status stops the
  // load and is returned.
  virtual Status event(const StoredEvent& event) = 0;
};

// An actor's journal: its event stream with optimistic concurrency, its
// snapshots, and the broadcast of every commit. One per backend (memory,
// sqlite, jetstream); the runtime talks to this interface only. Thread-safe.
//
// Every commit is visible on aether.<ns>.events.<type>.<id> in the one
// commit format (store/commit_codec.hpp, docs/nats.md): natively on
// JetStream, through the outbox relay on sqlite with NATS, on the local bus
// otherwise.
class Journal {
 public:
  virtual ~Journal() = default;

  // --- the event stream ---

  // Appends atomically; `done` receives the outcome. Appends of different
  // actors may be grouped into one commit; each actor's version check stays
  // exact.
  // REQUIRES: `request` stays valid and unchanged until `done` was called
  // (the store reads it in place instead of copying the events).
  virtual void append(const AppendRequest& request, AppendCallback done) = 0;

  // Loads an actor for activation: the stream's version (`known_latest` > 0
  // when the journal has just reported it, so it need not be asked again),
  // then the newest snapshot when one can shorten the replay, then the
  // events after the state `sink` has. Each backend picks its reads (a
  // JetStream journal answers a young actor from memory without a round
  // trip). Events committed while it loads may or may not be visited.
  Status load(const ActorKey& key, uint64_t known_latest, LoadSink& sink);

  // Visits the events of `key` with version >= from_version (1-based), at
  // most `limit` of them, in order. A record that cannot be decoded, or a gap
  // or repeat in the versions, stops the read with kCorruption naming the
  // actor and the version where it was met.
  virtual Status read(const ActorKey& key, uint64_t from_version, uint64_t limit,
                      const EventVisitor& visit) = 0;

  // The stream's version (0 when it has no events).
  virtual Result<uint64_t> latest_version(const ActorKey& key) = 0;

  // True when an actor whose stream has no events has no history at all, so
  // that an append expecting version 0 proves the actor new. False when
  // stream limits (a maximum age or size) can drop events while the actor's
  // snapshots stay.
  bool empty_stream_is_new() const { return !may_drop_events(); }

  // True when reads are network round trips: the runtime then runs an
  // actor's load and idempotency lookup on its I/O threads, so that its
  // workers keep running the commands of active actors meanwhile.
  virtual bool remote_reads() const { return false; }

  // The commit recorded under `idempotency_key` in the journal's key cache,
  // if any. A cache: a key may be missing from it (jetstream writes it after
  // the commit); the events' idempotency fields are the record.
  virtual Result<std::optional<IdempotentCommit>> find_idempotent(
      const ActorKey& key, const std::string& idempotency_key) = 0;

  // Operator repair: removes every stored record of `key` after `version`
  // (the commits that follow it, whether they decode or not) and what the
  // journal remembers of them (cached tips, their idempotency keys), so that
  // the actor loads at `version` again. kInvalidArgument when the stored
  // history does not reach `version` or no commit ends there. With
  // `dry_run`, removes nothing and says what it would remove. The caller
  // makes sure nothing appends to the actor meanwhile (Runtime::repair).
  virtual Result<TruncateResult> truncate_after(const ActorKey& key, uint64_t version, bool dry_run) {
    (void)key;
    (void)version;
    (void)dry_run;
    return Status::invalid("this store cannot truncate an actor's history");
  }

  // Removes a key from the cache (tests and tools: what a lost cache write
  // leaves behind).
  virtual Status forget_idempotent(const ActorKey& key, const std::string& idempotency_key) {
    (void)key;
    (void)idempotency_key;
    return Status::internal("this store has no idempotency key cache to edit");
  }

  // How many actors of `type` in `ns` have events, and up to `n` of their
  // ids picked at random (the shadow check of a reload samples passive
  // actors with it). A backend that cannot list its actors says so.
  virtual Result<ActorSample> sample_actors(const std::string& ns, const std::string& type, uint64_t n) {
    (void)ns;
    (void)type;
    (void)n;
    return Status::invalid("this store cannot list its actors");
  }
  // A commit another node made, seen on the events subject: a journal that
  // caches actors' latest versions (jetstream) then asks the server at the
  // actor's next append instead of failing once on a stale cache. Safety
  // never depends on it: the journal's own version check still decides.
  virtual void note_remote_commit(const ActorKey& key, uint64_t version) {
    (void)key;
    (void)version;
  }

  // Blocks until every append accepted so far is durable (as durable as the
  // backend's settings make it), and for a journal with an outbox relay until
  // the relay has published the outbox (up to 2 s). Called on shutdown.
  virtual Status flush() = 0;

  // Appends and waits: for tests, tools and benchmarks.
  AppendResult append_sync(const AppendRequest& request);

  // Reads into a vector: for tests, tools and the HTTP API.
  Result<std::vector<StoredEvent>> read_all(const ActorKey& key, uint64_t from_version = 1,
                                            uint64_t limit = UINT64_MAX);

  // --- snapshots ---

  // Saves a snapshot and deletes all but the newest `keep` of this actor.
  virtual Status save_snapshot(const ActorKey& key, const Snapshot& snapshot, uint32_t keep) = 0;

  // The newest snapshot of `key`, if any.
  virtual Result<std::optional<Snapshot>> latest_snapshot(const ActorKey& key) = 0;

  // All snapshots of `key`, newest first (for retention checks and tools).
  virtual Result<std::vector<Snapshot>> list_snapshots(const ActorKey& key) = 0;

  // Operator repair: removes the snapshots of `key` above `version` (with
  // `dry_run`, only counts them). Returns how many.
  virtual Result<uint64_t> drop_snapshots_after(const ActorKey& key, uint64_t version, bool dry_run) {
    (void)key;
    (void)version;
    (void)dry_run;
    return Status::invalid("this store cannot drop snapshots");
  }

 protected:
  // load()'s read strategy, for a backend to refine.
  //
  // read() of every event from `from_version` on, where `latest` is what
  // latest_version() has just returned: a backend that remembers where that
  // version is need not ask again. Events committed since may or may not be
  // visited.
  virtual Status read_known(const ActorKey& key, uint64_t from_version, uint64_t latest,
                            const EventVisitor& visit) {
    (void)latest;
    return read(key, from_version, UINT64_MAX, visit);
  }

  // True when read_known(key, from_version, latest) needs no round trip
  // (the events are in memory): then no snapshot is looked up either.
  virtual bool at_hand(const ActorKey& key, uint64_t from_version, uint64_t latest) {
    (void)key;
    (void)from_version;
    (void)latest;
    return false;
  }

  // True when events can disappear while the actor's snapshots stay (stream
  // limits such as a maximum age).
  virtual bool may_drop_events() const { return false; }
};

class Bus;             // bus/bus.hpp
class NatsConnection;  // nats/connection.hpp

// The in-memory backend: for tests and throw-away hosts. Every commit is
// published on `broadcast` (when given and it has subscribers) in the commit
// format (store/commit_codec.hpp), before append() calls back; `node_id`
// goes into it. REQUIRES: `broadcast` outlives the store.
std::unique_ptr<Journal> make_memory_store(Bus* broadcast = nullptr, const std::string& node_id = "node-1");

struct CheckpointInfo;  // store/sqlite_checkpointer.hpp

struct SqliteOptions {
  std::string path;  // the database file; created if missing
  // PRAGMA synchronous: "off", "normal", "full" (default) or "extra".
  std::string synchronous = "full";
  // Most appends grouped into one transaction.
  uint32_t max_batch = 1024;
  // Read connections kept open for concurrent readers.
  uint32_t read_connections = 4;
  // Called after each group commit with the number of appends it carried.
  std::function<void(size_t)> on_commit_batch;
  // Write every commit also to an outbox table, in the same transaction, for
  // a relay to broadcast (at-least-once) after the commit (OutboxRelay,
  // store/outbox_relay.hpp). `node_id` goes into the commit message.
  bool outbox = false;
  // With `outbox`: the store runs the relay to this connection itself, wakes
  // it after each commit and drains it in flush(). REQUIRES: outlives the
  // store.
  NatsConnection* relay = nullptr;
  // With the relay on a connection that does not echo (NatsOptions::no_echo):
  // each relayed commit, once the server has it, is handed to this process's
  // subscribers on this bus (Bus::deliver_local). REQUIRES: outlives the
  // store.
  Bus* relay_echo = nullptr;
  std::string node_id = "node-1";
  // Without the outbox: every commit is published on this in-process bus
  // (when it has subscribers) after it committed, before append() calls
  // back. REQUIRES: outlives the store.
  Bus* broadcast = nullptr;
  // WAL checkpoints run on a thread of their own (sqlite_checkpointer.hpp)
  // once the WAL holds this many pages (4 KiB each), never inside a commit;
  // past `wal_max_pages` the writer checkpoints between two batches, which
  // bounds the WAL.
  int wal_checkpoint_pages = 1000;
  int wal_max_pages = 8192;
  // Called after each checkpoint (from the thread that ran it).
  std::function<void(const CheckpointInfo&)> on_checkpoint;
};

// The SQLite backend (WAL, group commit). Fails if the file cannot be opened
// or its schema is not aether's.
Result<std::unique_ptr<Journal>> open_sqlite_store(const SqliteOptions& options);

}  // namespace aether
