#include "store/jetstream_store.hpp"

#include <nats/nats.h>

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

namespace aether {

namespace {

using json = nlohmann::json;

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

std::string hex(const std::string& s) {
  static const char* d = "0123456789abcdef";
  std::string out;
  for (unsigned char c : s) {
    out += d[c >> 4];
    out += d[c & 15];
  }
  return out;
}

std::optional<uint64_t> header_u64(natsMsg* m, const char* name) {
  const char* v = nullptr;
  if (natsMsgHeader_Get(m, name, &v) != NATS_OK || v == nullptr) return std::nullopt;
  char* end = nullptr;
  const unsigned long long x = std::strtoull(v, &end, 10);
  if (*v == '\0' || *end != '\0') return std::nullopt;
  return x;
}

std::string header_str(natsMsg* m, const char* name) {
  const char* v = nullptr;
  if (natsMsgHeader_Get(m, name, &v) != NATS_OK || v == nullptr) return {};
  return v;
}

// Owns a natsMsg.
struct MsgPtr {
  natsMsg* m = nullptr;
  ~MsgPtr() { natsMsg_Destroy(m); }
};

bool connection_lost(natsStatus s) {
  return s == NATS_CONNECTION_CLOSED || s == NATS_CONNECTION_DISCONNECTED || s == NATS_IO_ERROR ||
         s == NATS_NO_SERVER || s == NATS_STALE_CONNECTION;
}

// Why a request to JetStream failed, as the API error code (docs/api.md):
// the connection is away, the stream has no leader (JetStream says it is
// unavailable, or nobody serves the stream), or the request timed out
// (`timeout_cause`: a lookup or a publish ack). Empty: none of these.
const char* failure_cause(bool connected, natsStatus s, int js_code, const char* timeout_cause) {
  if (!connected || connection_lost(s)) return "nats_disconnected";
  if (js_code == JSClusterNotAvailErr || js_code == JSClusterNotLeaderErr || s == NATS_NO_RESPONDERS) {
    return "stream_no_leader";
  }
  if (s == NATS_TIMEOUT) return timeout_cause;
  return "";
}

// The idempotency key and command digest a commit carries in its headers.
struct CommitTag {
  std::string key;
  std::string digest;
};

CommitTag commit_tag(natsMsg* m) { return {header_str(m, kHdrIdem), header_str(m, kHdrDigest)}; }

// The latest commit of an actor as this store knows it.
struct Tip {
  uint64_t version = 0;
  uint64_t seq = 0;  // stream sequence of the commit that reached `version`
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

  Status init() {
    // Appends are published asynchronously on their own JetStream context;
    // acks come back through on_ack.
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.Wait = conn_.options().request_timeout_ms;
    jo.PublishAsync.MaxPending = 8192;
    jo.PublishAsync.AckHandler = &JetStreamStore::on_ack;
    jo.PublishAsync.AckHandlerClosure = this;
    if (natsStatus st = natsConnection_JetStream(&ajs_, conn_.nc(), &jo); st != NATS_OK) {
      return Status::unavailable(nats_error(st, "jetstream: publishing context"));
    }
    for (const auto& ns : opts_.namespaces) {
      if (Status s = ensure_stream(events_stream(ns), subjects::all_events(ns), 0, opts_.duplicate_window_ms); !s) {
        return s;
      }
      if (Status s = ensure_stream(snap_stream(ns), subjects::all_snapshots(ns), 64, 0); !s) return s;
      KvBucketOptions bo;
      bo.name = opts_.stream_prefix + ns + "_IDEM";
      bo.replicas = opts_.replicas;
      bo.memory = opts_.storage == "memory";
      auto kv = open_kv_bucket(conn_, bo, "jetstream");
      if (!kv) return kv.status();
      idem_[ns] = *kv;
    }
    return Status::ok();
  }

  // --- the event stream ---------------------------------------------------------

  void append(const AppendRequest& req, AppendCallback done) override {
    if (req.events.empty()) {
      AppendResult r;
      r.status = Status::invalid("an append needs at least one event");
      return done(std::move(r));
    }
    if (!conn_.connected()) {
      AppendResult r;
      r.status = disconnected();
      return done(std::move(r));
    }
    in_flight_.fetch_add(1);
    auto op = std::make_unique<PendingAppend>();
    op->req = &req;
    op->done = std::move(done);
    bool cached = false;
    {
      std::lock_guard lock(mu_);
      auto it = tips_.find(subjects::events(req.key));
      cached = it != tips_.end() && it->second.version == req.expected_version;
      if (cached) op->tip = it->second;
    }
    // Version 0 needs no lookup: expecting last subject sequence 0 is the
    // server's own check that the actor has no events (unless the stream may
    // have dropped some by its limits).
    if (!cached && req.expected_version == 0 && !may_drop_events()) {
      op->tip = Tip{};
      cached = true;
    }
    if (cached) return publish(std::move(op));
    // Needs a lookup of the actor's last commit first: off this thread.
    PendingAppend* raw = op.release();
    pool_.post([this, raw] { prepare_and_publish(std::unique_ptr<PendingAppend>(raw)); });
  }

  Status read(const ActorKey& key, uint64_t from_version, uint64_t limit,
              const EventVisitor& visit) override {
    if (!conn_.connected()) return disconnected();
    auto tip = fetch_tip(key);
    if (!tip) return tip.status();
    return read_to(key, from_version, limit, visit, *tip);
  }

 protected:
  // load()'s reads: a young actor's events from memory, a known tip
  // without asking for it again.
  Status read_known(const ActorKey& key, uint64_t from_version, uint64_t latest,
                    const EventVisitor& visit) override {
    std::optional<Tip> tip;
    {
      std::lock_guard lock(mu_);
      auto it = tips_.find(subjects::events(key));
      if (it != tips_.end() && it->second.version == latest) tip = it->second;
    }
    if (!tip) return read(key, from_version, UINT64_MAX, visit);
    if (!conn_.connected()) return disconnected();
    return read_to(key, from_version, UINT64_MAX, visit, *tip);
  }

  bool at_hand(const ActorKey& key, uint64_t from_version, uint64_t latest) override {
    const std::string subject = subjects::events(key);
    std::lock_guard lock(mu_);
    auto tip = tips_.find(subject);
    auto recent = recent_.find(subject);
    return tip != tips_.end() && recent != recent_.end() && tip->second.version == latest &&
           recent->second.seq == tip->second.seq && recent->second.last == latest &&
           recent->second.first <= std::max<uint64_t>(from_version, 1);
  }

  bool may_drop_events() const override { return opts_.max_age_ms > 0 || opts_.max_bytes >= 0; }

 public:
  bool remote_reads() const override { return true; }

  // Where a read of `subject` from version `from` starts: the stream
  // sequence after a known point before `from` (0: the start) and that
  // point's version.
  std::pair<uint64_t, uint64_t> read_start(const std::string& subject, uint64_t from) {
    std::lock_guard lock(mu_);
    if (auto it = points_.find(subject); it != points_.end() && it->second.version < from) {
      return {it->second.seq + 1, it->second.version};
    }
    return {0, 0};
  }

  // The actor's last commit as fetch_tip read it, if it is the commit `tip`
  // (taken: a read uses it once).
  // (Return type deduced: RecentCommit is declared further down.)
  auto take_recent(const std::string& subject, const Tip& tip) {
    std::lock_guard lock(mu_);
    std::optional<RecentCommit> out;
    auto it = recent_.find(subject);
    if (it != recent_.end() && it->second.seq == tip.seq && it->second.last == tip.version) {
      out = std::move(it->second);
      recent_.erase(it);
    }
    return out;
  }

  // Visits the actor's events from `from_version` up to the commit `tip`.
  Status read_to(const ActorKey& key, uint64_t from_version, uint64_t limit, const EventVisitor& visit,
                 const Tip& tip) {
    const std::string subject = subjects::events(key);
    const uint64_t from = from_version == 0 ? 1 : from_version;
    if (tip.version < from || limit == 0) return Status::ok();
    // The commits read hold the versions after base_version.
    auto [start_seq, base_version] = read_start(subject, from);
    uint64_t delivered = 0;
    ScannedCommit scanned;
    Status result = Status::ok();
    // Hands one event to the visitor; false stops the read.
    auto emit = [&](StoredEvent se) {
      if (Status s = visit(se); !s) {
        result = s;
        return false;
      }
      return ++delivered < limit;
    };
    // The events wanted all in the last commit, which fetch_tip has just
    // read (an activation): no walk.
    std::optional<RecentCommit> recent = take_recent(subject, tip);
    // Visits the last commit from memory.
    auto visit_recent = [&] {
      const std::string where = "actor " + key.to_string() + ", stream sequence " + std::to_string(tip.seq);
      visit_commit(recent->first, recent->last, recent->body, recent->tag, from, scanned, emit, result,
                   [&] { return where; });
      return result;
    };
    if (recent && recent->first <= from) return visit_recent();
    uint64_t expect = 0;  // next version expected once the first commit is seen
    auto on_commit = [&](natsMsg* m, uint64_t seq) -> bool {
      if (!header_str(m, kHdrRepair).empty()) return true;  // a repair marker holds no events
      auto first = header_u64(m, kHdrFirst);
      auto last = header_u64(m, kHdrLast);
      auto where = [&] {
        return "actor " + key.to_string() + ", stream sequence " + std::to_string(seq);
      };
      if (!first || !last || *first == 0 || *last < *first) {
        result = Status::corruption(where() + ": undecodable commit (version headers missing)");
        return false;
      }
      if (expect != 0 && *first != expect) {
        result = Status::corruption(where() + ": expected version " + std::to_string(expect) +
                                    ", found " + std::to_string(*first) + " (a gap or repeat)");
        return false;
      }
      expect = *last + 1;
      if (*last < from) return true;
      const std::string_view text(natsMsg_GetData(m), static_cast<size_t>(natsMsg_GetDataLength(m)));
      return visit_commit(*first, *last, text, commit_tag(m), from, scanned, emit, result, where);
    };
    // A few commits (at most one per event): a direct get each, "next by
    // subject", costs the server far less than a consumer. Anything
    // unexpected goes on with the consumer from where it stopped.
    const std::string stream = events_stream(key.ns);
    if (opts_.replicas <= 1 && tip.version - base_version <= kDirectReadEvents) {
      for (uint64_t i = 0; i <= kDirectReadEvents; ++i) {
        if (recent && expect == recent->first) return visit_recent();  // the rest is the last commit
        jsDirectGetMsgOptions o;
        jsDirectGetMsgOptions_Init(&o);
        o.Sequence = start_seq == 0 ? 1 : start_seq;
        o.NextBySubject = subject.c_str();
        natsMsg* m = nullptr;
        if (js_DirectGetMsg(&m, conn_.js(), stream.c_str(), nullptr, &o) != NATS_OK) break;
        MsgPtr owner{m};
        const uint64_t seq = natsMsg_GetSequence(m);
        if (seq == 0 || seq > tip.seq) break;
        if (!on_commit(m, seq) || seq == tip.seq) return result;
        start_seq = seq + 1;
      }
    }
    const Status walked = walk(stream, subject, start_seq, tip.seq, on_commit);
    if (!walked) return walked;
    return result;
  }

  // The event at version `v` of a commit (versions first..last) with its tag.
  static StoredEvent tagged(uint64_t v, std::string type, std::string payload, int64_t ts, uint64_t first,
                            uint64_t last, const CommitTag& tag) {
    StoredEvent e{v, std::move(type), std::move(payload), ts};
    if (v == last && !tag.key.empty()) {
      e.idempotency_key = tag.key;
      e.command_digest = tag.digest;
      e.commit_first_version = first;
    }
    return e;
  }

  // Visits the events from version `from` of one commit (versions
  // first..last, JSON `text`, headers `tag`). False stops the read: `emit`
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
  Result<ActorSample> sample_actors(const std::string& ns, const std::string& type, uint64_t n) override {
    if (!conn_.connected()) return disconnected();
    return sample_stream_subjects(conn_.js(), events_stream(ns), "aether." + ns + ".events." + type + ".", n);
  }

  Result<uint64_t> latest_version(const ActorKey& key) override {
    auto tip = fetch_tip(key);
    if (!tip) return tip.status();
    return tip->version;
  }

  Result<std::optional<IdempotentCommit>> find_idempotent(const ActorKey& key,
                                                          const std::string& k) override {
    kvStore* kv = idem_kv(key.ns);
    if (kv == nullptr) return Status::not_found("namespace " + key.ns + " has no store");
    std::string v;
    int js_code = 0;
    natsStatus s = get_idempotent(key.ns, kv, idem_key(key, k), v, js_code);
    if (s == NATS_NOT_FOUND) return std::optional<IdempotentCommit>();
    if (s != NATS_OK) {
      return request_failed(s, js_code, "idempotency key lookup of actor " + key.to_string(), "lookup_timeout",
                            Applied::kNo);
    }
    // "first,last" or "first,last,digest".
    IdempotentCommit c;
    unsigned long long a = 0, b = 0;
    int used = 0;
    if (std::sscanf(v.c_str(), "%llu,%llu%n", &a, &b, &used) != 2 ||
        (static_cast<size_t>(used) != v.size() && v[static_cast<size_t>(used)] != ',')) {
      return Status::corruption("jetstream: idempotency record of " + key.to_string() + " is undecodable");
    }
    c.first_version = a;
    c.last_version = b;
    if (static_cast<size_t>(used) < v.size()) c.digest = v.substr(static_cast<size_t>(used) + 1);
    return std::optional<IdempotentCommit>(c);
  }

  Result<TruncateResult> truncate_after(const ActorKey& key, uint64_t version, bool dry_run) override {
    if (!conn_.connected()) return disconnected();
    const std::string stream = events_stream(key.ns);
    auto plan = plan_truncate(key, version);
    if (!plan) return plan.status();
    TruncateResult r{plan->doomed.size(), plan->last_version};
    if (dry_run) return r;
    forget_actor(key);
    // Newest first: an interrupted repair leaves a prefix of the history,
    // and running it again finishes it.
    std::vector<std::string> keys;
    for (auto it = plan->doomed.rbegin(); it != plan->doomed.rend(); ++it) {
      if (Status st = delete_message(stream, it->seq); !st) return st;
      if (!it->idempotency_key.empty()) keys.push_back(idem_key(key, it->idempotency_key));
    }
    forget_keys(key.ns, std::move(keys));
    forget_actor(key);
    if (version > 0 && r.records > 0) {
      if (Status st = publish_repair_marker(key, version); !st) return st;
    }
    return r;
  }

  // nats-server 2.9 does not move a subject's "last message" back when that
  // message is deleted: a last-by-subject lookup then finds nothing and the
  // expected-last-subject-sequence check sees no message. A marker
  // published after the deletions becomes the subject's last message again:
  // it carries the version kept (Aether-Version) and Aether-Repair, and no
  // events; readers skip it.
  Status publish_repair_marker(const ActorKey& key, uint64_t version) {
    const std::string subject = subjects::events(key);
    const std::string body = json{{"ns", key.ns}, {"type", key.type}, {"actor_id", key.id}, {"version", version},
                                  {"repair", "truncated after version " + std::to_string(version)},
                                  {"events", json::array()}}.dump();
    natsMsg* m = nullptr;
    natsMsg_Create(&m, subject.c_str(), nullptr, body.data(), static_cast<int>(body.size()));
    MsgPtr owner{m};
    natsMsgHeader_Set(m, kHdrLast, std::to_string(version).c_str());
    natsMsgHeader_Set(m, kHdrRepair, ("truncated-after-" + std::to_string(version)).c_str());
    natsMsgHeader_Set(m, kHdrNode, opts_.node_id.c_str());
    natsMsgHeader_Set(m, "Nats-Msg-Id", (key.ns + "." + key.type + "." + key.id + repaired_suffix(subject)).c_str());
    jsPubAck* pa = nullptr;
    jsErrCode err = static_cast<jsErrCode>(0);
    natsStatus s = js_PublishMsg(&pa, conn_.js(), m, nullptr, &err);
    jsPubAck_Destroy(pa);
    if (s != NATS_OK) return Status::unavailable(nats_error(s, "jetstream: repair marker on " + subject));
    return Status::ok();
  }

  Status forget_idempotent(const ActorKey& key, const std::string& k) override {
    kvStore* kv = idem_kv(key.ns);
    if (kv == nullptr) return Status::not_found("namespace " + key.ns + " has no store");
    natsStatus s = kvStore_Purge(kv, idem_key(key, k).c_str(), nullptr);
    if (s != NATS_OK) return Status::unavailable(nats_error(s, "jetstream: forget idempotency key"));
    return Status::ok();
  }

  Status flush() override {
    std::unique_lock lock(flush_mu_);
    flush_cv_.wait(lock, [&] { return in_flight_.load() == 0; });
    return Status::ok();
  }

  void note_remote_commit(const ActorKey& key, uint64_t version) override {
    std::lock_guard lock(mu_);
    auto it = tips_.find(subjects::events(key));
    if (it != tips_.end() && it->second.version < version) tips_.erase(it);
  }

  // --- snapshots -------------------------------------------------------------

  Status save_snapshot(const ActorKey& key, const Snapshot& snap, uint32_t keep) override {
    if (!conn_.connected()) return disconnected();
    const std::string subject = subjects::snapshots(key);
    natsMsg* m = nullptr;
    // The host's record, if any, goes first in the data; a header says how
    // long it is (a snapshot without the header is the plugin's bytes only).
    const std::string data = snap.host_record + snap.bytes;
    natsMsg_Create(&m, subject.c_str(), nullptr, data.data(), static_cast<int>(data.size()));
    MsgPtr owner{m};
    if (!snap.host_record.empty()) {
      natsMsgHeader_Set(m, kHdrHostRecord, std::to_string(snap.host_record.size()).c_str());
    }
    natsMsgHeader_Set(m, kHdrLast, std::to_string(snap.version).c_str());
    natsMsgHeader_Set(m, kHdrPlugin, snap.plugin.c_str());
    natsMsgHeader_Set(m, kHdrSchema, std::to_string(snap.schema_version).c_str());
    natsMsgHeader_Set(m, kHdrTime, std::to_string(snap.timestamp_ms).c_str());
    {
      std::lock_guard lock(mu_);
      auto it = tips_.find(subjects::events(key));
      if (it != tips_.end() && it->second.version == snap.version) {
        natsMsgHeader_Set(m, kHdrSeq, std::to_string(it->second.seq).c_str());
      }
    }
    jsPubAck* pa = nullptr;
    jsErrCode err = static_cast<jsErrCode>(0);
    natsStatus s = js_PublishMsg(&pa, conn_.js(), m, nullptr, &err);
    jsPubAck_Destroy(pa);
    if (s != NATS_OK) return Status::unavailable(nats_error(s, "jetstream: save snapshot"));
    // Retention: one purge of the actor's snapshot subject keeping the newest
    // `keep` (the stream also caps a subject at 64).
    jsOptions po;
    jsOptions_Init(&po);
    po.Stream.Purge.Subject = subject.c_str();
    po.Stream.Purge.Keep = keep == 0 ? 1 : keep;
    jsErrCode perr = static_cast<jsErrCode>(0);
    if (natsStatus ps = js_PurgeStream(conn_.js(), snap_stream(key.ns).c_str(), &po, &perr); ps != NATS_OK) {
      // The snapshot is saved; older ones stay until the next save purges them.
      log::warn(nats_error(ps, "jetstream: snapshot retention of " + key.to_string()));
    }
    return Status::ok();
  }

  Result<std::optional<Snapshot>> latest_snapshot(const ActorKey& key) override {
    if (!conn_.connected()) return disconnected();
    natsMsg* m = nullptr;
    jsErrCode err = static_cast<jsErrCode>(0);
    natsStatus s = get_last(&m, snap_stream(key.ns), subjects::snapshots(key), &err);
    if (s == NATS_NOT_FOUND) return std::optional<Snapshot>();
    if (s != NATS_OK) return Status::unavailable(nats_error(s, "jetstream: latest snapshot"));
    MsgPtr owner{m};
    auto snap = decode_snapshot(key, m);
    if (!snap) return snap.status();
    if (auto seq = header_u64(m, kHdrSeq)) {
      std::lock_guard lock(mu_);
      points_[subjects::events(key)] = Tip{snap->version, *seq};
    }
    return std::optional<Snapshot>(std::move(snap).value());
  }

  Result<uint64_t> drop_snapshots_after(const ActorKey& key, uint64_t version, bool dry_run) override {
    if (!conn_.connected()) return disconnected();
    const std::string stream = snap_stream(key.ns);
    std::vector<uint64_t> doomed;
    auto found = walk_subject(stream, subjects::snapshots(key), [&](natsMsg* m, uint64_t seq) {
      const auto v = header_u64(m, kHdrLast);
      if (!v || *v > version) doomed.push_back(seq);
      return true;
    });
    if (!found) return found;
    if (dry_run) return uint64_t{doomed.size()};
    forget_actor(key);
    for (uint64_t seq : doomed) {
      if (Status st = delete_message(stream, seq); !st) return st;
    }
    return uint64_t{doomed.size()};
  }

  Result<std::vector<Snapshot>> list_snapshots(const ActorKey& key) override {
    if (!conn_.connected()) return disconnected();
    std::vector<Snapshot> out;
    Status failure = Status::ok();
    Status w = walk(snap_stream(key.ns), subjects::snapshots(key), 0, 0, [&](natsMsg* m, uint64_t) {
      auto s = decode_snapshot(key, m);
      if (!s) {
        failure = s.status();
        return false;
      }
      out.push_back(std::move(s).value());
      return true;
    });
    if (!w) return w;
    if (!failure) return failure;
    std::reverse(out.begin(), out.end());
    return out;
  }

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
                        Applied applied) const {
    const std::string cause = failure_cause(conn_.connected(), s, js_code, timeout_cause);
    const std::string wait = std::to_string(conn_.options().request_timeout_ms) + " ms";
    const std::string maybe = applied == Applied::kMaybe ? "; the commit may or may not be stored" : "";
    std::string m;
    if (cause == "nats_disconnected") {
      m = conn_.not_connected_message() + " during the " + what + maybe;
    } else if (cause == "stream_no_leader") {
      m = "jetstream: " + what + ": the stream has no leader (" + natsStatus_GetText(s) +
          (js_code != 0 ? ", error code " + std::to_string(js_code) : "") +
          "); it is electing one or too few of its servers are up";
    } else if (cause == "lookup_timeout") {
      m = "jetstream: " + what + " timed out after " + wait + " (the stream's leader did not answer)";
    } else if (cause == "publish_not_acknowledged") {
      m = "jetstream: " + what + ": no acknowledgement within " + wait + maybe;
    } else {
      m = nats_error(s, "jetstream: " + what) + (js_code != 0 ? " (error code " + std::to_string(js_code) + ")" : "");
    }
    Status st = Status::unavailable(m);
    return cause.empty() ? st : st.with_cause(cause, applied);
  }

  // `duplicates_ms`: the deduplication window (0: the server's default).
  Status ensure_stream(const std::string& name, const std::string& subject, int64_t per_subject,
                       int64_t duplicates_ms) {
    jsStreamConfig cfg;
    jsStreamConfig_Init(&cfg);
    cfg.Name = name.c_str();
    const char* subjects[] = {subject.c_str()};
    cfg.Subjects = subjects;
    cfg.SubjectsLen = 1;
    cfg.Storage = opts_.storage == "memory" ? js_MemoryStorage : js_FileStorage;
    cfg.Replicas = opts_.replicas;
    cfg.MaxAge = opts_.max_age_ms * 1000000;
    cfg.MaxBytes = opts_.max_bytes;
    cfg.AllowDirect = true;
    if (duplicates_ms > 0) cfg.Duplicates = duplicates_ms * 1000000;
    if (per_subject > 0) cfg.MaxMsgsPerSubject = per_subject;
    jsStreamInfo* si = nullptr;
    jsErrCode err = static_cast<jsErrCode>(0);
    natsStatus s = js_AddStream(&si, conn_.js(), &cfg, nullptr, &err);
    jsStreamInfo_Destroy(si);
    if (s == NATS_OK || err == JSStreamNameExistErr) return Status::ok();
    return Status::unavailable(nats_error(s, "jetstream: stream " + name + " (error code " +
                                                 std::to_string(err) + ")"));
  }

  // The last message on `subject` in `stream`. On a single-replica stream, a
  // direct get: answered by the stream's server without the JetStream API's
  // JSON and base64 round. With replicas, a direct get may be answered by a
  // follower that lags, so the API (served by the leader) is asked instead.
  natsStatus get_last(natsMsg** m, const std::string& stream, const std::string& subject, jsErrCode* err) {
    if (opts_.replicas <= 1) {
      jsDirectGetMsgOptions o;
      jsDirectGetMsgOptions_Init(&o);
      o.LastBySubject = subject.c_str();
      natsStatus s = js_DirectGetMsg(m, conn_.js(), stream.c_str(), nullptr, &o);
      if (s != NATS_NO_RESPONDERS) return s;  // else: a stream created without allow_direct
    }
    return js_GetLastMsg(m, conn_.js(), stream.c_str(), subject.c_str(), nullptr, err);
  }

  // A key of the idempotency bucket. With replicas, asked of the bucket's
  // leader: a direct get may be answered by a follower that has not yet
  // stored a key the leader acknowledged.
  natsStatus get_idempotent(const std::string& ns, kvStore* kv, const std::string& name, std::string& value,
                            int& js_code) {
    if (opts_.replicas > 1) {
      uint64_t rev = 0;
      return static_cast<natsStatus>(kv_get_leader(conn_, opts_.stream_prefix + ns + "_IDEM", name, value, rev,
                                                   &js_code));
    }
    kvEntry* e = nullptr;
    natsStatus s = kvStore_Get(&e, kv, name.c_str());
    if (s == NATS_OK) {
      value = kvEntry_ValueString(e);
      kvEntry_Destroy(e);
    }
    return s;
  }

  // The actor's latest commit, from the cache or the server.
  // With `last`: also the idempotency key and first version of that commit.
  struct LastCommit {
    CommitTag tag;
    uint64_t first = 0;
  };
  Result<Tip> fetch_tip(const ActorKey& key, LastCommit* last_commit = nullptr) {
    natsMsg* m = nullptr;
    jsErrCode err = static_cast<jsErrCode>(0);
    const std::string subject = subjects::events(key);
    natsStatus s = get_last(&m, events_stream(key.ns), subject, &err);
    Tip tip;
    if (s == NATS_NOT_FOUND) {
      tip = Tip{};
    } else if (s != NATS_OK) {
      return request_failed(s, err, "lookup of the last commit of actor " + key.to_string(), "lookup_timeout",
                            Applied::kNo);
    } else {
      MsgPtr owner{m};
      auto last = header_u64(m, kHdrLast);
      const uint64_t seq = natsMsg_GetSequence(m);
      if (!last) {
        return Status::corruption("actor " + key.to_string() + ", stream sequence " +
                                  std::to_string(seq) + ": commit without version headers");
      }
      tip = Tip{*last, seq};
      const auto first = header_u64(m, kHdrFirst);
      if (first) {
        // Kept for a read that follows at once (activation): when the events
        // it needs are all in this commit, it reads no further.
        std::lock_guard lock(mu_);
        if (recent_.size() >= kRecentCommits) recent_.clear();
        recent_[subject] = RecentCommit{seq, *first, *last,
                                        std::string(natsMsg_GetData(m), static_cast<size_t>(natsMsg_GetDataLength(m))),
                                        commit_tag(m)};
      }
      if (last_commit != nullptr) {
        last_commit->tag = commit_tag(m);
        last_commit->first = first.value_or(0);
      }
    }
    std::lock_guard lock(mu_);
    // Not kept for an actor without events: reads of ids that do not exist
    // would grow the cache without bound.
    if (tip.version > 0) tips_[subject] = tip; else tips_.erase(subject);
    return tip;
  }

  // An append on its way: from append() to the server's ack.
  struct PendingAppend {
    const AppendRequest* req = nullptr;
    AppendCallback done;
    Tip tip;
    std::string subject;
    std::string commit_id;
    uint64_t first = 0;
    uint64_t last = 0;
  };

  void finish(std::unique_ptr<PendingAppend> op, AppendResult r) {
    op->done(std::move(r));
    if (in_flight_.fetch_sub(1) == 1) {
      std::lock_guard lock(flush_mu_);
      flush_cv_.notify_all();
    }
  }

  // Runs on the pool: idempotency check and tip lookup, then publish.
  void prepare_and_publish(std::unique_ptr<PendingAppend> op) {
    const AppendRequest& req = *op->req;
    AppendResult r;
    // No lookup in the key cache: the caller knows the actor's recent keys
    // from the journal, and the cache may be unreachable while the stream
    // is not (another leader).
    const std::string subject = subjects::events(req.key);
    if (auto d = in_doubt_.settle(subject, conn_.js(), conn_.options().request_timeout_ms); !d.settled) {
      r.status = request_failed(d.status, d.js_code, "publish to " + subject + " (again: the actor's previous commit, "
                                "which may or may not be stored, before this one)", "publish_not_acknowledged",
                                Applied::kNo);
      return finish(std::move(op), std::move(r));
    } else if (d.stored) {
      // The actor has a version its writer did not know of: reload it.
      forget(subject);
      return finish(std::move(op), conflict(req, req.expected_version + 1));
    }
    LastCommit last;
    auto t = fetch_tip(req.key, req.idempotency_key.empty() ? nullptr : &last);
    if (!t) {
      r.status = t.status();
      return finish(std::move(op), std::move(r));
    }
    if (!req.idempotency_key.empty() && last.tag.key == req.idempotency_key) {
      // The actor's last commit is this key's (a retry from a writer that
      // missed it): the same commit; its key goes to the cache again.
      r.duplicate = true;
      r.first_version = last.first;
      r.version = t->version;
      r.duplicate_digest = last.tag.digest;
      record_idempotent(req.key, req.idempotency_key, {r.first_version, r.version, r.duplicate_digest});
      return finish(std::move(op), std::move(r));
    }
    if (t->version != req.expected_version) return finish(std::move(op), conflict(req, t->version));
    op->tip = *t;
    publish(std::move(op));
  }

  // Builds the commit message and publishes it asynchronously.
  void publish(std::unique_ptr<PendingAppend> op) {
    const AppendRequest& req = *op->req;
    op->subject = subjects::events(req.key);
    op->first = req.expected_version + 1;
    op->last = req.expected_version + req.events.size();
    op->commit_id = commit_prefix_ + std::to_string(++commit_counter_);
    natsMsg* m = build_commit(req, op->subject, op->tip.seq, op->first, op->last, op->commit_id);
    // Pending appends are keyed by commit id: two writers may race with the
    // same Nats-Msg-Id.
    const std::string msg_id = op->commit_id;
    PendingAppend* raw = op.get();
    {
      std::lock_guard lock(pending_mu_);
      pending_[msg_id] = std::move(op);
    }
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MaxWait = conn_.options().request_timeout_ms;
    natsStatus s = js_PublishMsgAsync(ajs_, &m, &po);
    if (s != NATS_OK) {
      natsMsg_Destroy(m);
      std::unique_ptr<PendingAppend> back;
      {
        std::lock_guard lock(pending_mu_);
        auto it = pending_.find(msg_id);
        if (it != pending_.end() && it->second.get() == raw) {
          back = std::move(it->second);
          pending_.erase(it);
        }
      }
      if (back) {
        forget(back->subject);
        AppendResult r;
        r.status = request_failed(s, 0, "publish to " + back->subject, "", Applied::kNo);
        finish(std::move(back), std::move(r));
      }
    }
  }

  natsMsg* build_commit(const AppendRequest& req, const std::string& subject, uint64_t expected_seq,
                        uint64_t first, uint64_t last, const std::string& commit_id) {
    const std::string data = encode_commit(req, first, commit_id, opts_.node_id);
    natsMsg* m = nullptr;
    natsMsg_Create(&m, subject.c_str(), nullptr, data.data(), static_cast<int>(data.size()));
    // The server deduplicates by this id within the stream's duplicate
    // window: by version (a retried publish, a racing writer of the same
    // version), or for a command with an idempotency key by that key, so a
    // retry of a command whose commit landed but whose key was not recorded
    // is still caught.
    const std::string msg_id = req.key.ns + "." + req.key.type + "." + req.key.id + "." +
                               (req.idempotency_key.empty() ? std::to_string(last) : "key." + hex(req.idempotency_key)) +
                               repaired_suffix(subject);
    natsMsgHeader_Set(m, "Nats-Msg-Id", msg_id.c_str());
    natsMsgHeader_Set(m, "Nats-Expected-Last-Subject-Sequence", std::to_string(expected_seq).c_str());
    // Headers only for what is read back without decoding the body (the
    // versions, the commit id, the idempotency key). The node and the event
    // types are in the body alone: no reader needs them as headers, and each
    // header costs the writer and the server (BENCHMARKS.md, "The commit
    // headers").
    natsMsgHeader_Set(m, kHdrFirst, std::to_string(first).c_str());
    natsMsgHeader_Set(m, kHdrLast, std::to_string(last).c_str());
    natsMsgHeader_Set(m, kHdrCommit, commit_id.c_str());
    if (!req.idempotency_key.empty()) {
      natsMsgHeader_Set(m, kHdrIdem, req.idempotency_key.c_str());
      if (!req.command_digest.empty()) natsMsgHeader_Set(m, kHdrDigest, req.command_digest.c_str());
    }
    return m;
  }

  // cnats calls this for every async publish: ack, error or timeout.
  static void on_ack(jsCtx*, natsMsg* msg, jsPubAck* pa, jsPubAckErr* pae, void* closure) {
    run_guarded("jetstream store: publish ack", [&] {
      static_cast<JetStreamStore*>(closure)->acked(msg, pa, pae);
    });
  }

  void acked(natsMsg* msg, jsPubAck* pa, jsPubAckErr* pae) {
    auto* self = this;
    const std::string msg_id = header_str(msg, kHdrCommit);
    // No answer, or none that says "not stored": the commit is in doubt.
    const bool refused = pae != nullptr && (pae->ErrCode != 0 || pae->Err == NATS_NO_RESPONDERS);
    if (pa == nullptr && !refused) in_doubt_.hold(msg);
    else natsMsg_Destroy(msg);
    std::unique_ptr<PendingAppend> op;
    {
      std::lock_guard lock(self->pending_mu_);
      auto it = self->pending_.find(msg_id);
      if (it == self->pending_.end()) return;
      op = std::move(it->second);
      self->pending_.erase(it);
    }
    if (pa != nullptr && !pa->Duplicate) return self->committed(std::move(op), pa->Sequence);
    // Everything else needs requests to the server: not on cnats' thread.
    const uint64_t seq = pa != nullptr ? pa->Sequence : 0;
    const bool duplicate = pa != nullptr;
    const jsErrCode code = pae != nullptr ? pae->ErrCode : static_cast<jsErrCode>(0);
    const natsStatus err = pae != nullptr ? pae->Err : NATS_OK;
    PendingAppend* raw = op.release();
    self->pool_.post([self, raw, seq, duplicate, code, err] {
      self->settle(std::unique_ptr<PendingAppend>(raw), seq, duplicate, code, err);
    });
  }

  void committed(std::unique_ptr<PendingAppend> op, uint64_t seq) {
    const AppendRequest& req = *op->req;
    {
      std::lock_guard lock(mu_);
      tips_[op->subject] = Tip{op->last, seq};
    }
    // The key is in the commit (its headers): the cache write comes after the
    // reply and may be lost without harm.
    if (!req.idempotency_key.empty()) {
      record_idempotent(req.key, req.idempotency_key, {op->first, op->last, req.command_digest});
    }
    AppendResult r;
    r.first_version = op->first;
    r.version = op->last;
    finish(std::move(op), std::move(r));
  }

  // Deletes keys from the cache on the cache thread, after the writes still
  // waiting there (one of them may be a removed commit's key), and waits for
  // it, bounded: on a timeout the deletes still run, in order, later.
  void forget_keys(const std::string& ns, std::vector<std::string> keys) {
    kvStore* kv = idem_kv(ns);
    if (kv == nullptr || keys.empty()) return;
    auto done = std::make_shared<std::promise<void>>();
    auto finished = done->get_future();
    cache_pool_.post([kv, keys = std::move(keys), done] {
      for (const auto& k : keys) kvStore_Delete(kv, k.c_str());
      done->set_value();
    });
    if (finished.wait_for(std::chrono::seconds(10)) != std::future_status::ready) {
      log::warn("jetstream: the idempotency keys of a repair are still being deleted");
    }
  }

  // Writes a key to the cache (the bucket) on its own thread, never holding
  // up an append: at most kMaxCacheWrites wait; beyond, keys are left out.
  void record_idempotent(const ActorKey& key, const std::string& idempotency_key, const IdempotentCommit& c) {
    kvStore* kv = idem_kv(key.ns);
    if (kv == nullptr) return;
    if (cache_writes_.fetch_add(1) >= kMaxCacheWrites) {
      cache_writes_.fetch_sub(1);
      return;
    }
    std::string name = idem_key(key, idempotency_key);
    std::string val = std::to_string(c.first_version) + "," + std::to_string(c.last_version) + "," + c.digest;
    cache_pool_.post([this, kv, name = std::move(name), val = std::move(val)] {
      if (!closing_.load()) kvStore_PutString(nullptr, kv, name.c_str(), val.c_str());
      cache_writes_.fetch_sub(1);
    });
  }

  void settle(std::unique_ptr<PendingAppend> op, uint64_t seq, bool duplicate, jsErrCode code, natsStatus err) {
    const AppendRequest& req = *op->req;
    forget(op->subject);
    if (duplicate) {
      // The server already had this message id: our own retried publish, or
      // another writer's commit of the same version.
      natsMsg* stored = nullptr;
      natsStatus gs = js_GetMsg(&stored, conn_.js(), events_stream(req.key.ns).c_str(), seq, nullptr, nullptr);
      MsgPtr so{stored};
      if (gs == NATS_OK && header_str(stored, kHdrCommit) == op->commit_id) return committed(std::move(op), seq);
      if (gs == NATS_OK && !req.idempotency_key.empty() && header_str(stored, kHdrIdem) == req.idempotency_key) {
        // An earlier commit of this idempotency key: that one is the result.
        AppendResult r;
        r.duplicate = true;
        r.first_version = header_u64(stored, kHdrFirst).value_or(0);
        r.version = header_u64(stored, kHdrLast).value_or(0);
        r.duplicate_digest = header_str(stored, kHdrDigest);
        record_idempotent(req.key, req.idempotency_key, {r.first_version, r.version, r.duplicate_digest});
        return finish(std::move(op), std::move(r));
      }
      auto t = fetch_tip(req.key);
      return finish(std::move(op), conflict(req, t ? t->version : op->last));
    }
    if (code == JSStreamWrongLastSequenceErr) {
      auto t = fetch_tip(req.key);
      return finish(std::move(op), conflict(req, t ? t->version : 0));
    }
    // An error JetStream answered, or nobody to take the message: not
    // stored. Anything else (no ack in time, the connection lost meanwhile)
    // leaves the commit unknown.
    const bool refused = code != 0 || err == NATS_NO_RESPONDERS;
    AppendResult r;
    r.status = request_failed(err, code, "publish to " + op->subject, "publish_not_acknowledged",
                              refused ? Applied::kNo : Applied::kMaybe);
    finish(std::move(op), std::move(r));
  }

  AppendResult conflict(const AppendRequest& req, uint64_t current) {
    AppendResult r;
    r.current_version = current;
    r.status = version_conflict(req.key, req.expected_version, current);
    return r;
  }

  void forget(const std::string& subject) {
    std::lock_guard lock(mu_);
    tips_.erase(subject);
  }

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
  Result<TruncatePlan> plan_truncate(const ActorKey& key, uint64_t version) {
    TruncatePlan plan;
    bool found = version == 0;
    uint64_t reached = 0;       // the last version of the commits kept so far
    uint64_t undecodable = 0;   // the sequence of a kept commit without version headers
    Status walked = walk_subject(events_stream(key.ns), subjects::events(key), [&](natsMsg* m, uint64_t seq) {
      const auto last = header_u64(m, kHdrLast);
      if (found) {
        plan.doomed.push_back({seq, header_str(m, kHdrIdem)});
        if (last) plan.last_version = std::max(plan.last_version, *last);
        return true;
      }
      if (!last) {
        undecodable = undecodable == 0 ? seq : undecodable;
      } else if (*last == version) {
        found = true;
      } else if (*last < version) {
        reached = *last;
      }
      return true;
    });
    if (!walked) return walked;
    const std::string who = "actor " + key.to_string();
    if (!found) {
      return Status::invalid("no commit of " + who + " ends at version " + std::to_string(version) +
                             " (the commits before it end at version " + std::to_string(reached) +
                             "): truncate after a version a commit ends at");
    }
    if (undecodable != 0) {
      return Status::invalid(who + ": the record at stream sequence " + std::to_string(undecodable) +
                             " comes before version " + std::to_string(version) +
                             " and does not decode: truncate after an earlier version");
    }
    return plan;
  }

  // Visits every message of `subject` in `stream` (none when it has none).
  template <class F>
  Status walk_subject(const std::string& stream, const std::string& subject, F&& visit) {
    natsMsg* m = nullptr;
    jsErrCode err = static_cast<jsErrCode>(0);
    natsStatus s = get_last(&m, stream, subject, &err);
    if (s == NATS_NOT_FOUND) return Status::ok();
    if (s != NATS_OK) return Status::unavailable(nats_error(s, "jetstream: last message of " + subject));
    const uint64_t last_seq = natsMsg_GetSequence(m);
    natsMsg_Destroy(m);
    return walk(stream, subject, 0, last_seq, std::forward<F>(visit));
  }

  Status delete_message(const std::string& stream, uint64_t seq) {
    jsErrCode err = static_cast<jsErrCode>(0);
    natsStatus s = js_DeleteMsg(conn_.js(), stream.c_str(), seq, nullptr, &err);
    if (s == NATS_OK || err == JSSequenceNotFoundErr || err == JSNoMessageFoundErr) return Status::ok();
    return Status::unavailable(nats_error(s, "jetstream: delete message " + std::to_string(seq) + " of " +
                                                 stream + " (error code " + std::to_string(err) + ")"));
  }

  // Drops everything cached about an actor's commits and snapshots, and
  // marks it repaired: the server still remembers the message ids of the
  // removed commits for its duplicate window, and would take the next
  // commit of the same version (or idempotency key) for one of them.
  void forget_actor(const ActorKey& key) {
    const std::string subject = subjects::events(key);
    const auto now = std::chrono::steady_clock::now();
    std::lock_guard lock(mu_);
    tips_.erase(subject);
    points_.erase(subject);
    recent_.erase(subject);
    std::erase_if(repaired_, [&](const auto& r) { return r.second.until < now; });
    repaired_[subject] = Repaired{now + kRepairedWindow, "repair-" + commit_prefix_ + std::to_string(++repairs_)};
    any_repaired_.store(true);
  }

  // While an actor is marked repaired, its commits' message ids carry a
  // suffix of that repair, so they never match the ids of removed commits.
  std::string repaired_suffix(const std::string& subject) {
    if (!any_repaired_.load(std::memory_order_relaxed)) return {};
    std::lock_guard lock(mu_);
    auto it = repaired_.find(subject);
    if (it == repaired_.end() || it->second.until < std::chrono::steady_clock::now()) return {};
    return "." + it->second.tag;
  }

  Result<Snapshot> decode_snapshot(const ActorKey& key, natsMsg* m) {
    auto version = header_u64(m, kHdrLast);
    auto schema = header_u64(m, kHdrSchema);
    if (!version || !schema) {
      return Status::corruption("snapshot of " + key.to_string() + ": headers missing");
    }
    Snapshot s;
    s.version = *version;
    s.schema_version = static_cast<uint32_t>(*schema);
    s.plugin = header_str(m, kHdrPlugin);
    s.timestamp_ms = static_cast<int64_t>(header_u64(m, kHdrTime).value_or(0));
    const std::string_view data(natsMsg_GetData(m), static_cast<size_t>(natsMsg_GetDataLength(m)));
    const uint64_t host = header_u64(m, kHdrHostRecord).value_or(0);
    if (host > data.size()) {
      return Status::corruption("snapshot of " + key.to_string() + ": host record longer than the data");
    }
    s.host_record.assign(data.substr(0, host));
    s.bytes.assign(data.substr(host));
    return s;
  }

  // Visits the messages of `subject` in `stream` from `start_seq` (0 = the
  // first) through an ordered consumer, until `last_seq` (0 = until none is
  // pending) or the visitor returns false.
  template <class F>
  Status walk(const std::string& stream, const std::string& subject, uint64_t start_seq,
              uint64_t last_seq, F&& visit) {
    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Stream = stream.c_str();
    so.Ordered = true;
    so.Config.DeliverPolicy = start_seq > 0 ? js_DeliverByStartSequence : js_DeliverAll;
    so.Config.OptStartSeq = start_seq;
    natsSubscription* sub = nullptr;
    jsErrCode err = static_cast<jsErrCode>(0);
    natsStatus s = js_SubscribeSync(&sub, conn_.js(), subject.c_str(), nullptr, &so, &err);
    if (s != NATS_OK) return request_failed(s, err, "read of " + subject, "lookup_timeout", Applied::kNo);
    Status result = Status::ok();
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
      jsMsgMetaData_Destroy(meta);
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
  static constexpr std::chrono::minutes kRepairedWindow{10};  // > the stream's 2-minute duplicate window
  std::unordered_map<std::string, Repaired> repaired_;
  std::atomic<bool> any_repaired_{false};
  uint64_t repairs_ = 0;
  std::atomic<uint64_t> commit_counter_{0};
  // node id and start time: commit ids stay unique across restarts.
  const std::string commit_prefix_ = commit_id_prefix(opts_.node_id);

  jsCtx* ajs_ = nullptr;  // async publishing context (acks -> on_ack)
  InDoubtCommits in_doubt_;  // settled before the actor's next append
  std::mutex pending_mu_;
  std::unordered_map<std::string, std::unique_ptr<PendingAppend>> pending_;  // by commit id

  std::atomic<uint64_t> in_flight_{0};
  std::mutex flush_mu_;
  std::condition_variable flush_cv_;
  WorkerPool pool_;
  static constexpr uint64_t kMaxCacheWrites = 10000;
  std::atomic<uint64_t> cache_writes_{0};  // waiting or running
  std::atomic<bool> closing_{false};
  WorkerPool cache_pool_{1, "aether-js-idem"};
};

}  // namespace

Result<std::unique_ptr<Journal>> open_jetstream_store(NatsConnection& connection,
                                                    const JetStreamOptions& options) {
  auto store = std::make_unique<JetStreamStore>(connection, options);
  if (Status s = store->init(); !s) return s;
  return std::unique_ptr<Journal>(std::move(store));
}

}  // namespace aether
