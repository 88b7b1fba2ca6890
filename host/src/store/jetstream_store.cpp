// The JetStream backend of the store module (store/jetstream_store.hpp).
// JetStreamStore is declared in store/jetstream_journal.hpp and defined by
// concern: this file (setup, streams, errors, flush), jetstream_reads.cpp
// (reads and their caches, behind Journal::load), jetstream_append.cpp
// (publishing commits and their acks), jetstream_repair.cpp (the key cache
// and truncate_after) and jetstream_snapshots.cpp.
#include "store/jetstream_journal.hpp"

namespace aether::store_detail {

Status JetStreamStore::init() {
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

Status JetStreamStore::flush() {
  std::unique_lock lock(flush_mu_);
  flush_cv_.wait(lock, [&] { return in_flight_.load() == 0; });
  return Status::ok();
}

void JetStreamStore::note_remote_commit(const ActorKey& key, uint64_t version) {
  std::lock_guard lock(mu_);
  auto it = tips_.find(subjects::events(key));
  if (it != tips_.end() && it->second.version < version) tips_.erase(it);
}

Status JetStreamStore::request_failed(natsStatus s, int js_code, const std::string& what, const char* timeout_cause,
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

Status JetStreamStore::ensure_stream(const std::string& name, const std::string& subject, int64_t per_subject,
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

natsStatus JetStreamStore::direct_get_last(natsMsg** m, const std::string& stream, const std::string& subject,
                                           int64_t wait_ms) {
  jsDirectGetMsgOptions o;
  jsDirectGetMsgOptions_Init(&o);
  o.LastBySubject = subject.c_str();
  jsOptions jo;
  jsOptions_Init(&jo);
  jo.Wait = wait_ms;
  return js_DirectGetMsg(m, conn_.js(), stream.c_str(), wait_ms > 0 ? &jo : nullptr, &o);
}

natsStatus JetStreamStore::get_at(natsMsg** m, const std::string& stream, uint64_t seq) {
  jsDirectGetMsgOptions o;
  jsDirectGetMsgOptions_Init(&o);
  o.Sequence = seq;
  if (js_DirectGetMsg(m, conn_.js(), stream.c_str(), nullptr, &o) == NATS_OK) return NATS_OK;
  *m = nullptr;
  return static_cast<natsStatus>(leader_get_seq(conn_, stream, seq, m));
}

natsStatus JetStreamStore::get_last(natsMsg** m, uint64_t* seq, const std::string& stream, const std::string& subject,
                                    jsErrCode* err) {
  if (opts_.replicas <= 1) {
    natsStatus s = direct_get_last(m, stream, subject);
    if (s == NATS_OK) *seq = natsMsg_GetSequence(*m);
    if (s != NATS_NO_RESPONDERS) return s;  // else: a stream created without allow_direct
  }
  int code = 0;
  const auto s = static_cast<natsStatus>(leader_get_last(conn_, stream, subject, m, seq, &code));
  if (err != nullptr) *err = static_cast<jsErrCode>(code);
  return s;
}

natsStatus JetStreamStore::get_last_any_replica(natsMsg** m, uint64_t* seq, const std::string& stream,
                                                const std::string& subject, jsErrCode* err) {
  if (opts_.replicas > 1) {
    // A replica answers within milliseconds; one that does not (a paused
    // server still in the group) should not cost a whole request timeout
    // before the leader is asked.
    natsStatus s = direct_get_last(m, stream, subject, std::max<int64_t>(50, conn_.options().request_timeout_ms / 4));
    if (s == NATS_OK) *seq = natsMsg_GetSequence(*m);
    if (s == NATS_OK || s == NATS_NOT_FOUND) return s;
  }
  return get_last(m, seq, stream, subject, err);
}

}  // namespace aether::store_detail

namespace aether {

Result<std::unique_ptr<Journal>> open_jetstream_store(NatsConnection& connection,
                                                    const JetStreamOptions& options) {
  auto store = std::make_unique<store_detail::JetStreamStore>(connection, options);
  if (Status s = store->init(); !s) return s;
  return std::unique_ptr<Journal>(std::move(store));
}

}  // namespace aether
