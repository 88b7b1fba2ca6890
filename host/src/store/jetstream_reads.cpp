// JetStreamStore: reads (the tip and recent-commit caches behind load).
#include "store/jetstream_journal.hpp"

namespace aether::store_detail {

Status JetStreamStore::read(const ActorKey& key, uint64_t from_version, uint64_t limit,
                            const EventVisitor& visit) {
  if (!conn_.connected()) return disconnected();
  auto tip = fetch_tip(key);
  if (!tip) return tip.status();
  return read_to(key, from_version, limit, visit, *tip);
}

Status JetStreamStore::read_known(const ActorKey& key, uint64_t from_version, uint64_t latest,
                                  const EventVisitor& visit) {
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

bool JetStreamStore::at_hand(const ActorKey& key, uint64_t from_version, uint64_t latest) {
  const std::string subject = subjects::events(key);
  std::lock_guard lock(mu_);
  auto tip = tips_.find(subject);
  auto recent = recent_.find(subject);
  return tip != tips_.end() && recent != recent_.end() && tip->second.version == latest &&
         recent->second.seq == tip->second.seq && recent->second.last == latest &&
         recent->second.first <= std::max<uint64_t>(from_version, 1);
}

std::pair<uint64_t, uint64_t> JetStreamStore::read_start(const std::string& subject, uint64_t from) {
  std::lock_guard lock(mu_);
  if (auto it = points_.find(subject); it != points_.end() && it->second.version < from) {
    return {it->second.seq + 1, it->second.version};
  }
  return {0, 0};
}

auto JetStreamStore::take_recent(const std::string& subject, const Tip& tip) {
  std::lock_guard lock(mu_);
  std::optional<RecentCommit> out;
  auto it = recent_.find(subject);
  if (it != recent_.end() && it->second.seq == tip.seq && it->second.last == tip.version) {
    out = std::move(it->second);
    recent_.erase(it);
  }
  return out;
}

natsMsg* JetStreamStore::next_commit(const std::string& stream, const std::string& subject, uint64_t from_seq,
                                     uint64_t* seq) {
  natsMsg* m = nullptr;
  if (opts_.replicas > 1) {
    if (leader_get_next(conn_, stream, subject, from_seq, &m, seq) == NATS_OK) return m;
    natsMsg_Destroy(m);
    return nullptr;
  }
  jsDirectGetMsgOptions o;
  jsDirectGetMsgOptions_Init(&o);
  o.Sequence = from_seq;
  o.NextBySubject = subject.c_str();
  if (js_DirectGetMsg(&m, conn_.js(), stream.c_str(), nullptr, &o) != NATS_OK) return nullptr;
  *seq = natsMsg_GetSequence(m);
  return m;
}

Status JetStreamStore::read_to(const ActorKey& key, uint64_t from_version, uint64_t limit, const EventVisitor& visit,
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
    auto where = [&] {
      return "actor " + key.to_string() + ", stream sequence " + std::to_string(seq);
    };
    const std::optional<CommitHead> head = commit_head(m);
    if (!head) {
      result = Status::corruption(where() + ": undecodable commit (no versions in its body or headers)");
      return false;
    }
    if (head->marker) return true;  // a repair marker holds no events
    if (expect != 0 && head->first != expect) {
      result = Status::corruption(where() + ": expected version " + std::to_string(expect) +
                                  ", found " + std::to_string(head->first) + " (a gap or repeat)");
      return false;
    }
    expect = head->last + 1;
    if (head->last < from) return true;
    const std::string_view text = msg_body(m);
    return visit_commit(head->first, head->last, text, head->tag, from, scanned, emit, result, where);
  };
  // A few commits (at most one per event): a get each (next_commit) costs
  // the server far less than a consumer. Anything unexpected goes on with
  // the consumer from where it stopped.
  const std::string stream = events_stream(key.ns);
  if (tip.version - base_version <= kDirectReadEvents) {
    for (uint64_t i = 0; i <= kDirectReadEvents; ++i) {
      if (recent && expect == recent->first) return visit_recent();  // the rest is the last commit
      uint64_t seq = 0;
      const uint64_t from_seq = start_seq == 0 ? 1 : start_seq;
      natsMsg* m = next_commit(stream, subject, from_seq, &seq);
      if (m == nullptr) break;
      MsgPtr owner{m};
      // An answer that is not the next message of this subject goes on
      // with the consumer.
      const char* got = natsMsg_GetSubject(m);
      if (seq < from_seq || seq > tip.seq || got == nullptr || subject != got) break;
      if (!on_commit(m, seq) || seq == tip.seq) return result;
      start_seq = seq + 1;
    }
  }
  const Status walked = walk(stream, subject, start_seq, tip.seq, on_commit);
  if (!walked) return walked;
  return result;
}

std::optional<CommitHead> commit_head(natsMsg* m) {
  CommitHead h;
  if (!header_str(m, kHdrRepair).empty()) {
    auto kept = header_u64(m, kHdrLast);
    if (!kept) return std::nullopt;
    h.marker = true;
    h.last = *kept;
    return h;
  }
  if (auto last = header_u64(m, kHdrLast)) {
    // A commit of a store that wrote these as headers.
    auto first = header_u64(m, kHdrFirst);
    if (!first || *first == 0 || *last < *first) return std::nullopt;
    h.first = *first;
    h.last = *last;
    h.commit_id = header_str(m, kHdrCommit);
    h.tag = {header_str(m, kHdrIdem), header_str(m, kHdrDigest)};
    return h;
  }
  const std::string_view text = msg_body(m);
  if (ScannedHead s; scan_commit_head(text, s)) {
    h.first = s.first_version;
    h.last = s.version;
    h.commit_id = s.commit_id;
    h.tag = {std::string(s.idempotency_key), std::string(s.command_digest)};
  } else {
    // Escapes in a string member (an idempotency key may hold any
    // character), or another layout of the same JSON: the full parser.
    if (!check_json_text(text, kMaxStoredJsonDepth, "commit body")) return std::nullopt;
    const json j = json::parse(text.begin(), text.end(), nullptr, false);
    if (!j.is_object()) return std::nullopt;
    auto num = [&](const char* k, uint64_t& out) {
      auto it = j.find(k);
      if (it == j.end() || !it->is_number_unsigned()) return false;
      out = it->get<uint64_t>();
      return true;
    };
    auto str = [&](const char* k, std::string& out, bool required) {
      auto it = j.find(k);
      if (it == j.end()) return !required;
      if (!it->is_string()) return false;
      out = it->get<std::string>();
      return true;
    };
    if (!num("first_version", h.first) || !num("version", h.last) || !str("commit_id", h.commit_id, true) ||
        !str("idempotency_key", h.tag.key, false) || !str("command_digest", h.tag.digest, false)) {
      return std::nullopt;
    }
  }
  if (h.first == 0 || h.last < h.first) return std::nullopt;
  return h;
}

StoredEvent JetStreamStore::tagged(uint64_t v, std::string type, std::string payload, int64_t ts, uint64_t first,
                                   uint64_t last, const CommitTag& tag) {
  StoredEvent e{v, std::move(type), std::move(payload), ts};
  if (v == last && !tag.key.empty()) {
    e.idempotency_key = tag.key;
    e.command_digest = tag.digest;
    e.commit_first_version = first;
  }
  return e;
}

Result<ActorSample> JetStreamStore::sample_actors(const std::string& ns, const std::string& type, uint64_t n) {
  if (!conn_.connected()) return disconnected();
  return sample_stream_subjects(conn_.js(), events_stream(ns), "aether." + ns + ".events." + type + ".", n);
}

Result<uint64_t> JetStreamStore::latest_version(const ActorKey& key) {
  auto tip = fetch_tip(key);
  if (!tip) return tip.status();
  return tip->version;
}

Result<Tip> JetStreamStore::fetch_tip(const ActorKey& key, bool for_append) {
  natsMsg* m = nullptr;
  jsErrCode err = static_cast<jsErrCode>(0);
  const std::string subject = subjects::events(key);
  uint64_t seq = 0;
  natsStatus s = get_last(&m, &seq, events_stream(key.ns), subject, &err);
  bool from_leader = true;
  if (for_append && opts_.replicas > 1 && (err == JSClusterNotAvailErr || err == JSClusterNotLeaderErr)) {
    if (natsStatus d = direct_get_last(&m, events_stream(key.ns), subject); d == NATS_OK || d == NATS_NOT_FOUND) {
      s = d;
      if (d == NATS_OK) seq = natsMsg_GetSequence(m);
      from_leader = false;
    }
  }
  Tip tip;
  if (s == NATS_NOT_FOUND) {
    tip = Tip{};
  } else if (s != NATS_OK) {
    return request_failed(s, err, "lookup of the last commit of actor " + key.to_string(), "lookup_timeout",
                          Applied::kNo);
  } else {
    MsgPtr owner{m};
    std::optional<CommitHead> head = commit_head(m);
    if (!head) {
      return Status::corruption("actor " + key.to_string() + ", stream sequence " +
                                std::to_string(seq) + ": undecodable commit (no versions in its body or headers)");
    }
    tip = Tip{head->last, seq, head->first, head->tag};
    if (!head->marker && from_leader) {
      // Kept for a read that follows at once (activation): when the events
      // it needs are all in this commit, it reads no further.
      std::lock_guard lock(mu_);
      if (recent_.size() >= kRecentCommits) recent_.clear();
      recent_[subject] = RecentCommit{seq, head->first, head->last,
                                      std::string(natsMsg_GetData(m), static_cast<size_t>(natsMsg_GetDataLength(m))),
                                      std::move(head->tag)};
    }
  }
  if (!from_leader) return tip;
  std::lock_guard lock(mu_);
  // Not kept for an actor without events: reads of ids that do not exist
  // would grow the cache without bound.
  if (tip.version > 0) tips_[subject] = tip; else tips_.erase(subject);
  return tip;
}

}  // namespace aether::store_detail
