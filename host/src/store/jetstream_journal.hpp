// JetStreamStore, the JetStream journal (store/jetstream_store.hpp): its
// declaration and the helpers its files share. Private to host/src/store:
// included only by jetstream_*.cpp.
#pragma once

#include "store/jetstream_store.hpp"

#include <nats/nats.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <future>
#include <mutex>
#include <nlohmann/json.hpp>
#include <unordered_map>

#include "core/conflict.hpp"
#include "core/guarded.hpp"
#include "core/json_limits.hpp"
#include "core/log.hpp"
#include "core/subjects.hpp"
#include "core/worker_pool.hpp"
#include "nats/connection.hpp"
#include "store/commit_codec.hpp"
#include "store/commit_scan.hpp"
#include "store/stream_subjects.hpp"
#include "store/jetstream_doubt.hpp"

namespace aether::store_detail {

using json = nlohmann::json;  // NOLINT: private header of the jetstream files

constexpr const char* kHdrFirst = "Aether-First-Version";
constexpr const char* kHdrLast = "Aether-Version";
constexpr const char* kHdrCommit = "Aether-Commit-Id";
constexpr const char* kHdrNode = "Aether-Node";
constexpr const char* kHdrIdem = "Aether-Idempotency-Key";
constexpr const char* kHdrDigest = "Aether-Command-Digest";
constexpr const char* kHdrHostRecord = "Aether-Host-Record-Bytes";
constexpr const char* kHdrPlugin = "Aether-Plugin";
constexpr const char* kHdrSchema = "Aether-Schema";
constexpr const char* kHdrTime = "Aether-Timestamp";
constexpr const char* kHdrSeq = "Aether-Stream-Seq";
constexpr const char* kHdrRepair = "Aether-Repair";

inline std::string hex(const std::string& s) {
  static const char* d = "0123456789abcdef";
  std::string out;
  for (unsigned char c : s) {
    out += d[c >> 4];
    out += d[c & 15];
  }
  return out;
}

inline std::optional<uint64_t> header_u64(natsMsg* m, const char* name) {
  const char* v = nullptr;
  if (natsMsgHeader_Get(m, name, &v) != NATS_OK || v == nullptr) return std::nullopt;
  char* end = nullptr;
  const unsigned long long x = std::strtoull(v, &end, 10);
  if (*v == '\0' || *end != '\0') return std::nullopt;
  return x;
}

inline std::string header_str(natsMsg* m, const char* name) {
  const char* v = nullptr;
  if (natsMsgHeader_Get(m, name, &v) != NATS_OK || v == nullptr) return {};
  return v;
}

// Owns a natsMsg.
struct MsgPtr {
  natsMsg* m = nullptr;
  ~MsgPtr() { natsMsg_Destroy(m); }
};

// The body of `m`, as text.
inline std::string_view msg_body(natsMsg* m) {
  return {natsMsg_GetData(m), static_cast<size_t>(std::max(0, natsMsg_GetDataLength(m)))};
}

// NATS_INSUFFICIENT_BUFFER: a publish while the connection reconnects (it
// keeps no reconnect buffer), before the disconnect callback has run.
inline bool connection_lost(natsStatus s) {
  return s == NATS_CONNECTION_CLOSED || s == NATS_CONNECTION_DISCONNECTED || s == NATS_IO_ERROR ||
         s == NATS_NO_SERVER || s == NATS_STALE_CONNECTION || s == NATS_INSUFFICIENT_BUFFER;
}

// Why a request to JetStream failed, as the API error code (docs/api.md):
// the connection is away, the stream has no leader (JetStream says it is
// unavailable, or nobody serves the stream), or the request timed out
// (`timeout_cause`: a lookup or a publish ack). Empty: none of these.
inline const char* failure_cause(bool connected, natsStatus s, int js_code, const char* timeout_cause) {
  if (!connected || connection_lost(s)) return "nats_disconnected";
  if (js_code == JSClusterNotAvailErr || js_code == JSClusterNotLeaderErr || s == NATS_NO_RESPONDERS) {
    return "stream_no_leader";
  }
  if (s == NATS_TIMEOUT) return timeout_cause;
  return "";
}

// The idempotency key and command digest a commit carries.
struct CommitTag {
  std::string key;
  std::string digest;
};

// What a commit message says of itself: its versions, its id, its tag.
struct CommitHead {
  uint64_t first = 0;
  uint64_t last = 0;
  std::string commit_id;
  CommitTag tag;
  bool marker = false;  // a repair marker (Aether-Repair): no events, `last` is the version kept
};

// The head of a commit message, from its body (the commit format,
// store/commit_codec.hpp). A commit stored by a version of the store that
// wrote its versions, id and key as headers (Aether-First-Version,
// Aether-Version, Aether-Commit-Id, Aether-Idempotency-Key,
// Aether-Command-Digest) is read from those, as is a repair marker.
// nullopt: neither says which versions the message holds.
std::optional<CommitHead> commit_head(natsMsg* m);

// The latest commit of an actor as this store knows it.
struct Tip {
  uint64_t version = 0;
  uint64_t seq = 0;  // stream sequence of the commit that reached `version`
  // That commit's first version and idempotency key (a retry of the actor's
  // last keyed command is known without a lookup).
  uint64_t first = 0;
  CommitTag tag = {};
};

class JetStreamStore final : public Journal {
 public:
  JetStreamStore(NatsConnection& c, JetStreamOptions o)
      : conn_(c), opts_(std::move(o)), pool_(std::max<uint32_t>(1, opts_.publishers), "aether-js") {}

  ~JetStreamStore() override {
    flush();
    pool_.stop();
    closing_.store(true);  // cache writes still waiting are dropped
    cache_pool_.stop();
    if (ajs_ != nullptr) jsCtx_Destroy(ajs_);
    for (auto& [_, kv] : idem_) kvStore_Destroy(kv);
  }

  Status init();

  // --- the event stream ---------------------------------------------------------

  void append(const AppendRequest& req, AppendCallback done) override;

  Status read(const ActorKey& key, uint64_t from_version, uint64_t limit,
              const EventVisitor& visit) override;

 protected:
  // load()'s reads: a young actor's events from memory, a known tip
  // without asking for it again.
  Status read_known(const ActorKey& key, uint64_t from_version, uint64_t latest,
                    const EventVisitor& visit) override;

  bool at_hand(const ActorKey& key, uint64_t from_version, uint64_t latest) override;

  bool may_drop_events() const override { return opts_.max_age_ms > 0 || opts_.max_bytes >= 0; }

 public:
  bool remote_reads() const override { return true; }

  // Where a read of `subject` from version `from` starts: the stream
  // sequence after a known point before `from` (0: the start) and that
  // point's version.
  std::pair<uint64_t, uint64_t> read_start(const std::string& subject, uint64_t from);

  // The actor's last commit as fetch_tip read it, if it is the commit `tip`
  // (taken: a read uses it once).
  // (Return type deduced: RecentCommit is declared further down.)
  auto take_recent(const std::string& subject, const Tip& tip);

  // Visits the actor's events from `from_version` up to the commit `tip`.
  // The first commit of `subject` at stream sequence `from_seq` or after it
  // ("next by subject"; the caller destroys it), its sequence in `seq`;
  // nullptr when none is got. It needs only the stream's leader, where a
  // consumer needs the meta leader too, which may be away (a paused or
  // restarting server) while the stream's leader answers. On a single
  // replica a direct get; with replicas the leader is asked, as a lagging
  // follower may still hold a commit the leader removed (a repair).
  natsMsg* next_commit(const std::string& stream, const std::string& subject, uint64_t from_seq, uint64_t* seq);
  Status read_to(const ActorKey& key, uint64_t from_version, uint64_t limit, const EventVisitor& visit,
                 const Tip& tip);

  // The event at version `v` of a commit (versions first..last) with its tag.
  static StoredEvent tagged(uint64_t v, std::string type, std::string payload, int64_t ts, uint64_t first,
                            uint64_t last, const CommitTag& tag);

  // Visits the events from version `from` of one commit (versions
  // first..last, JSON `text`, key and digest `tag`). False stops the read: `emit`
  // said so, or the body is undecodable (then `result` says where).
  template <class Emit, class Where>
  static bool visit_commit(uint64_t first, uint64_t last, std::string_view text, const CommitTag& tag,
                           uint64_t from, ScannedCommit& scanned, Emit& emit, Status& result, const Where& where) {
    // Anyone allowed to publish on the events subject can put any bytes
    // there: checked before a payload reaches a plugin or a reply.
    if (Status bad = check_json_text(text, kMaxStoredJsonDepth, "commit body"); !bad) {
      result = Status::corruption(where() + ": undecodable commit body (" + bad.message() + ")");
      return false;
    }
    if (scan_commit(text, scanned) && scanned.events.size() == last - first + 1) {
      uint64_t v = first;
      for (const ScannedEvent& e : scanned.events) {
        if (v >= from &&
            !emit(tagged(v, std::string(e.type), std::string(e.payload), scanned.timestamp, first, last, tag))) {
          return false;
        }
        ++v;
      }
      return true;
    }
    // Not in the shape the scanner reads: the full parser decides.
    json body = json::parse(text.begin(), text.end(), nullptr, false);
    if (body.is_discarded() || !body.contains("events") || !body["events"].is_array() ||
        body["events"].size() != last - first + 1) {
      result = Status::corruption(where() + ": undecodable commit body");
      return false;
    }
    const auto t = body.find("timestamp");
    const int64_t ts = t != body.end() && t->is_number_integer() ? t->get<int64_t>() : 0;
    uint64_t v = first;
    for (const auto& e : body["events"]) {
      if (v >= from) {
        if (!e.contains("type") || !e["type"].is_string() || !e.contains("payload")) {
          result = Status::corruption(where() + ": undecodable event at version " + std::to_string(v));
          return false;
        }
        if (!emit(tagged(v, e["type"].get<std::string>(), e["payload"].dump(), ts, first, last, tag))) return false;
      }
      ++v;
    }
    return true;
  }

  // The stream's subjects of (ns, type), from the stream info (the server
  // counts them; no message is read).
  Result<ActorSample> sample_actors(const std::string& ns, const std::string& type, uint64_t n) override;

  Result<uint64_t> latest_version(const ActorKey& key) override;

  Result<std::optional<IdempotentCommit>> find_idempotent(const ActorKey& key,
                                                          const std::string& k) override;

  Result<TruncateResult> truncate_after(const ActorKey& key, uint64_t version, bool dry_run) override;

  // nats-server 2.9 does not move a subject's "last message" back when that
  // message is deleted: a last-by-subject lookup then finds nothing and the
  // expected-last-subject-sequence check sees no message. A marker
  // published after the deletions becomes the subject's last message again:
  // it carries the version kept (Aether-Version) and Aether-Repair, and no
  // events; readers skip it.
  Status publish_repair_marker(const ActorKey& key, uint64_t version);

  Status forget_idempotent(const ActorKey& key, const std::string& k) override;

  Status flush() override;

  void note_remote_commit(const ActorKey& key, uint64_t version) override;

  // --- snapshots -------------------------------------------------------------

  Status save_snapshot(const ActorKey& key, const Snapshot& snap, uint32_t keep) override;

  Result<std::optional<Snapshot>> latest_snapshot(const ActorKey& key) override;

  Result<uint64_t> drop_snapshots_after(const ActorKey& key, uint64_t version, bool dry_run) override;

  Result<std::vector<Snapshot>> list_snapshots(const ActorKey& key) override;

 private:
  std::string events_stream(const std::string& ns) const { return opts_.stream_prefix + ns; }
  std::string snap_stream(const std::string& ns) const { return opts_.stream_prefix + ns + "_SNAPSHOTS"; }
  static std::string idem_key(const ActorKey& key, const std::string& k) {
    return key.type + "." + key.id + "." + hex(k);
  }
  kvStore* idem_kv(const std::string& ns) const {
    auto it = idem_.find(ns);
    return it == idem_.end() ? nullptr : it->second;
  }

  Status disconnected() const {
    return Status::unavailable(conn_.not_connected_message()).with_cause("nats_disconnected", Applied::kNo);
  }

  // An unavailable status for a failed request to JetStream (`what`: "publish
  // to <subject>"), with its cause when it is one of those the API names
  // (failure_cause) and whether the command may have been applied.
  Status request_failed(natsStatus s, int js_code, const std::string& what, const char* timeout_cause,
                        Applied applied) const;

  // `duplicates_ms`: the deduplication window (0: the server's default).
  Status ensure_stream(const std::string& name, const std::string& subject, int64_t per_subject,
                       int64_t duplicates_ms);

  // The last message on `subject` in `stream`. On a single-replica stream, a
  // direct get: answered by the stream's server without the JetStream API's
  // JSON and base64 round. With replicas, a direct get may be answered by a
  // follower that lags, so the API (served by the leader) is asked instead
  // (leader_get_last: the leader's answer, not a lagging member's claim
  // that there is no leader). `seq`: the message's stream sequence.
  natsStatus get_last(natsMsg** m, uint64_t* seq, const std::string& stream, const std::string& subject,
                      jsErrCode* err);

  // The message at stream sequence `seq`: a message never changes under its
  // sequence, so any replica that has it may answer (a direct get, which
  // works while the JetStream API waits for a leader); the API when none
  // does.
  natsStatus get_at(natsMsg** m, const std::string& stream, uint64_t seq);

  // The last message on `subject` as a direct get, answered by any server
  // that holds the stream; waits `wait_ms` (0: nats.request_timeout).
  natsStatus direct_get_last(natsMsg** m, const std::string& stream, const std::string& subject,
                             int64_t wait_ms = 0);

  // The same, for a lookup that an older answer cannot make wrong (a
  // snapshot: an older one only means a longer replay): a direct get on
  // every replica count, answered by any server that holds the stream, so
  // it goes on working while the JetStream API waits for its leaders (after
  // a server's pause or restart the API answers "temporarily unavailable"
  // for seconds). The API is asked when no direct get answers.
  natsStatus get_last_any_replica(natsMsg** m, uint64_t* seq, const std::string& stream, const std::string& subject,
                                  jsErrCode* err);

  // A key of the idempotency bucket. With replicas, asked of the bucket's
  // leader: a direct get may be answered by a follower that has not yet
  // stored a key the leader acknowledged.
  natsStatus get_idempotent(const std::string& ns, kvStore* kv, const std::string& name, std::string& value,
                            int& js_code);

  // The actor's latest commit, from the server.
  // `for_append`: when the JetStream API answers that the stream has no
  // leader (a server back from a pause or a restart answers so for seconds,
  // often before the real leader does), a direct get answered by any
  // replica is used instead. Safe for an append only: the publish carries
  // the tip's sequence as its expected last sequence, which the leader
  // checks, so a tip from a replica that lags turns into a conflict, never
  // into a commit at the wrong place. Such a tip is not cached.
  Result<Tip> fetch_tip(const ActorKey& key, bool for_append = false);

  // An append on its way: from append() to the server's ack.
  struct PendingAppend {
    const AppendRequest* req = nullptr;
    AppendCallback done;
    Tip tip;
    std::string subject;
    std::string commit_id;
    uint64_t first = 0;
    uint64_t last = 0;
    int sends = 0;                                   // of its commit message
    bool maybe_stored = false;                       // a send went unanswered
    std::chrono::steady_clock::time_point deadline;  // the first send + nats.request_timeout
  };

  // How long the first send of a commit waits for its acknowledgement
  // (each later one twice as long as the one before) before the same
  // message is sent again, while nats.request_timeout leaves time: a
  // publish that reached a stream leader as it lost its leadership (a
  // server back from a pause disrupts the group) is never answered, and
  // the new leader, elected within a second or so, takes the next send.
  static constexpr int64_t kSendWaitMs = 1000;
  // A send is not made with less time than this left before the deadline.
  static constexpr int64_t kMinSendWaitMs = 100;
  // Before a commit is sent again after "no responders" (no leader to take
  // it), and between reads of a tip that does not show it yet.
  static constexpr int64_t kNoLeaderPauseMs = 100;

  void finish(std::unique_ptr<PendingAppend> op, AppendResult r);

  // Runs on the pool: idempotency check and tip lookup, then publish.
  void prepare_and_publish(std::unique_ptr<PendingAppend> op);
  // True (and `op` answered as a duplicate) when its idempotency key is the
  // one of the actor's last commit, per `op->tip`.
  bool last_commit_is_this(std::unique_ptr<PendingAppend>& op);

  // Builds the commit message and publishes it asynchronously.
  void publish(std::unique_ptr<PendingAppend> op);

  // Publishes `msg`, the commit of `op`, asynchronously (again, after a
  // send went unanswered: the same message id, which the server stores
  // once). Waits for the acknowledgement kSendWaitMs at most, or what is
  // left of the deadline. Takes `msg`.
  void send_commit(std::unique_ptr<PendingAppend> op, natsMsg* msg);
  // A send of `msg` not made (`s`: why): answered, and `msg` held in doubt
  // when an earlier send may be stored, else destroyed. Takes `msg`.
  void send_failed(std::unique_ptr<PendingAppend> op, natsMsg* msg, natsStatus s);

  natsMsg* build_commit(const AppendRequest& req, const std::string& subject, uint64_t expected_seq,
                        uint64_t first, const std::string& commit_id);

  // cnats calls this for every async publish: ack, error or timeout.
  static void on_ack(jsCtx*, natsMsg* msg, jsPubAck* pa, jsPubAckErr* pae, void* closure);

  void acked(natsMsg* msg, jsPubAck* pa, jsPubAckErr* pae);

  // `body`: the stored commit message, for this process's own readers
  // (JetStreamOptions::echo); empty: they have it already.
  void committed(std::unique_ptr<PendingAppend> op, uint64_t seq, std::string_view body = {});

  // Hands a stored commit to this process's own readers (JetStreamOptions::echo).
  void echo_commit(const std::string& subject, std::string_view body);

  // Deletes keys from the cache on the cache thread, after the writes still
  // waiting there (one of them may be a removed commit's key), and waits for
  // it, bounded: on a timeout the deletes still run, in order, later.
  void forget_keys(const std::string& ns, std::vector<std::string> keys);

  // Writes a key to the cache (the bucket) on its own thread, never holding
  // up an append: at most kMaxCacheWrites wait; beyond, keys are left out.
  void record_idempotent(const ActorKey& key, const std::string& idempotency_key, const IdempotentCommit& c);

  void settle(std::unique_ptr<PendingAppend> op, uint64_t seq, bool duplicate, jsErrCode code, natsStatus err);
  // settle() of a commit sent more than once, when the server's answer
  // does not say whether an earlier send was stored.
  void settle_resent(std::unique_ptr<PendingAppend> op);
  // publish_not_acknowledged, "may have been applied", for a commit with an
  // unanswered send and `err`/`code` the last send's answer.
  Status maybe_stored_status(const PendingAppend& op, natsStatus err, int code) const;

  // The conflict an append meets when the actor's commit in doubt turned
  // out stored (`d`, from in_doubt_.settle): previous_append_stored when it
  // is this writer's commit, the one the caller's last append was.
  AppendResult stored_in_doubt(const AppendRequest& req, const InDoubtCommits::Settled& d);
  AppendResult conflict(const AppendRequest& req, uint64_t current);

  void forget(const std::string& subject);

  // A commit message that truncate_after removes.
  struct Doomed {
    uint64_t seq = 0;
    std::string idempotency_key;
  };
  struct TruncatePlan {
    std::vector<Doomed> doomed;
    uint64_t last_version = 0;
  };

  // The messages of the actor after the commit that ends at `version`.
  Result<TruncatePlan> plan_truncate(const ActorKey& key, uint64_t version);

  // Visits every message of `subject` in `stream` (none when it has none).
  template <class F>
  Status walk_subject(const std::string& stream, const std::string& subject, F&& visit) {
    natsMsg* m = nullptr;
    uint64_t last_seq = 0;
    jsErrCode err = static_cast<jsErrCode>(0);
    natsStatus s = get_last(&m, &last_seq, stream, subject, &err);
    if (s == NATS_NOT_FOUND) return Status::ok();
    if (s != NATS_OK) return Status::unavailable(nats_error(s, "jetstream: last message of " + subject));
    natsMsg_Destroy(m);
    return walk(stream, subject, 0, last_seq, std::forward<F>(visit));
  }

  Status delete_message(const std::string& stream, uint64_t seq);

  // Drops everything cached about an actor's commits and snapshots, and
  // marks it repaired: the server still remembers the message ids of the
  // removed commits for its duplicate window, and would take the next
  // commit of the same version (or idempotency key) for one of them.
  void forget_actor(const ActorKey& key);

  // While an actor is marked repaired, its commits' message ids carry a
  // suffix of that repair, so they never match the ids of removed commits.
  std::string repaired_suffix(const std::string& subject);

  Result<Snapshot> decode_snapshot(const ActorKey& key, natsMsg* m);

  // Visits the messages of `subject` in `stream` from `start_seq` (0 = the
  // first) through an ephemeral consumer without acks, until `last_seq`
  // (0 = until none is pending) or the visitor returns false. Not cnats's
  // "ordered consumer": on a missed heartbeat or a gap (a server restart
  // during the read) it recreates itself on a thread that can crash the
  // process (cnats 3.x reads the thread's handle before it is stored). Here
  // a gap in the consumer's sequence fails the read instead.
  template <class F>
  Status walk(const std::string& stream, const std::string& subject, uint64_t start_seq,
              uint64_t last_seq, F&& visit) {
    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Stream = stream.c_str();
    so.Config.AckPolicy = js_AckNone;
    so.Config.MemoryStorage = true;
    so.Config.FlowControl = true;  // the server paces a long read to what this client takes
    so.Config.Heartbeat = 5LL * 1000 * 1000 * 1000;  // required with flow control
    so.Config.InactiveThreshold = static_cast<int64_t>(conn_.options().request_timeout_ms) * 4 * 1000000;
    so.Config.DeliverPolicy = start_seq > 0 ? js_DeliverByStartSequence : js_DeliverAll;
    so.Config.OptStartSeq = start_seq;
    natsSubscription* sub = nullptr;
    jsErrCode err = static_cast<jsErrCode>(0);
    natsStatus s = js_SubscribeSync(&sub, conn_.js(), subject.c_str(), nullptr, &so, &err);
    if (s != NATS_OK) return request_failed(s, err, "read of " + subject, "lookup_timeout", Applied::kNo);
    Status result = Status::ok();
    uint64_t consumer_seq = 0;
    for (;;) {
      natsMsg* m = nullptr;
      s = natsSubscription_NextMsg(&m, sub, conn_.options().request_timeout_ms * 2);
      if (s == NATS_TIMEOUT && last_seq == 0) break;  // nothing (more) on the subject
      if (s != NATS_OK) {
        result = request_failed(s, 0, "read of " + subject, "lookup_timeout", Applied::kNo);
        break;
      }
      MsgPtr owner{m};
      jsMsgMetaData* meta = nullptr;
      if (natsMsg_GetMetaData(&meta, m) != NATS_OK) continue;
      const uint64_t seq = meta->Sequence.Stream;
      const uint64_t pending = meta->NumPending;
      const uint64_t delivered = meta->Sequence.Consumer;
      jsMsgMetaData_Destroy(meta);
      if (delivered != ++consumer_seq) {
        result = Status::unavailable("jetstream: read of " + subject + " missed messages (consumer sequence " +
                                     std::to_string(delivered) + ", expected " + std::to_string(consumer_seq) +
                                     "); retry the read");
        break;
      }
      if (!visit(m, seq)) break;
      if (last_seq != 0 ? seq >= last_seq : pending == 0) break;
    }
    natsSubscription_Unsubscribe(sub);
    natsSubscription_Destroy(sub);
    return result;
  }

  NatsConnection& conn_;
  JetStreamOptions opts_;
  std::unordered_map<std::string, kvStore*> idem_;

  std::mutex mu_;
  std::unordered_map<std::string, Tip> tips_;    // actor subject -> latest commit known
  std::unordered_map<std::string, Tip> points_;  // actor subject -> a snapshot's (version, seq)
  // actor subject -> the body of its last commit as fetch_tip last saw it
  struct RecentCommit {
    uint64_t seq = 0;
    uint64_t first = 0;
    uint64_t last = 0;
    std::string body;
    CommitTag tag;
  };
  static constexpr size_t kRecentCommits = 1024;
  static constexpr uint64_t kDirectReadEvents = 8;  // read by direct gets up to this many events
  std::unordered_map<std::string, RecentCommit> recent_;
  // Actors whose history was truncated, until the duplicate window passed.
  struct Repaired {
    std::chrono::steady_clock::time_point until;
    std::string tag;
  };
  // How long a repaired actor's message ids carry a suffix: past the stream's
  // duplicate window, so that a version written again after a repair is not
  // taken for the removed commit of that version.
  static constexpr std::chrono::minutes kRepairedWindow{10};
  std::chrono::milliseconds repaired_window() const {
    return std::max<std::chrono::milliseconds>(kRepairedWindow,
                                               std::chrono::milliseconds(2 * opts_.duplicate_window_ms));
  }
  std::unordered_map<std::string, Repaired> repaired_;
  std::atomic<bool> any_repaired_{false};
  uint64_t repairs_ = 0;
  std::atomic<uint64_t> commit_counter_{0};
  // node id and start time: commit ids stay unique across restarts.
  const std::string commit_prefix_ = commit_id_prefix(opts_.node_id);

  jsCtx* ajs_ = nullptr;  // async publishing context (acks -> on_ack)
  InDoubtCommits in_doubt_;  // settled before the actor's next append
  std::mutex pending_mu_;
  std::unordered_map<natsMsg*, std::unique_ptr<PendingAppend>> pending_;  // by the message published

  std::atomic<uint64_t> in_flight_{0};
  std::mutex flush_mu_;
  std::condition_variable flush_cv_;
  WorkerPool pool_;
  static constexpr uint64_t kMaxCacheWrites = 10000;
  std::atomic<uint64_t> cache_writes_{0};  // waiting or running
  std::atomic<bool> closing_{false};
  WorkerPool cache_pool_{1, "aether-js-idem"};
};

}  // namespace aether::store_detail
