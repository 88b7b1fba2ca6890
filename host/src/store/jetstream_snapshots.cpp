// JetStreamStore: snapshots.
#include "store/jetstream_journal.hpp"

namespace aether::store_detail {

Status JetStreamStore::save_snapshot(const ActorKey& key, const Snapshot& snap, uint32_t keep) {
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

Result<std::optional<Snapshot>> JetStreamStore::latest_snapshot(const ActorKey& key) {
  if (!conn_.connected()) return disconnected();
  natsMsg* m = nullptr;
  jsErrCode err = static_cast<jsErrCode>(0);
  // Without limits every event stays in the stream, so a snapshot only
  // shortens the replay and any replica's may be used. With limits, the
  // newest snapshot may be the only record of dropped events: the leader's.
  const std::string stream = snap_stream(key.ns), subject = subjects::snapshots(key);
  uint64_t seq = 0;
  natsStatus s = may_drop_events() ? get_last(&m, &seq, stream, subject, &err)
                                   : get_last_any_replica(&m, &seq, stream, subject, &err);
  if (s == NATS_NOT_FOUND) return std::optional<Snapshot>();
  if (s != NATS_OK) {
    return request_failed(s, err, "lookup of the latest snapshot of " + key.to_string(), "lookup_timeout",
                          Applied::kNo);
  }
  MsgPtr owner{m};
  auto snap = decode_snapshot(key, m);
  if (!snap) return snap.status();
  if (auto seq = header_u64(m, kHdrSeq)) {
    std::lock_guard lock(mu_);
    points_[subjects::events(key)] = Tip{snap->version, *seq};
  }
  return std::optional<Snapshot>(std::move(snap).value());
}

Result<uint64_t> JetStreamStore::drop_snapshots_after(const ActorKey& key, uint64_t version, bool dry_run) {
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

Result<std::vector<Snapshot>> JetStreamStore::list_snapshots(const ActorKey& key) {
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

Result<Snapshot> JetStreamStore::decode_snapshot(const ActorKey& key, natsMsg* m) {
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
  const std::string_view data = msg_body(m);
  const uint64_t host = header_u64(m, kHdrHostRecord).value_or(0);
  if (host > data.size()) {
    return Status::corruption("snapshot of " + key.to_string() + ": host record longer than the data");
  }
  s.host_record.assign(data.substr(0, host));
  s.bytes.assign(data.substr(host));
  return s;
}

}  // namespace aether::store_detail
