// JetStreamStore: appends: publish, ack, settle.
#include "store/jetstream_journal.hpp"

#include <thread>

#include "bus/bus.hpp"

namespace aether::store_detail {

void JetStreamStore::append(const AppendRequest& req, AppendCallback done) {
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
  if (cached) {
    if (last_commit_is_this(op)) return;
    return publish(std::move(op));
  }
  // Needs a lookup of the actor's last commit first: off this thread.
  PendingAppend* raw = op.release();
  pool_.post([this, raw] { prepare_and_publish(std::unique_ptr<PendingAppend>(raw)); });
}

void JetStreamStore::finish(std::unique_ptr<PendingAppend> op, AppendResult r) {
  op->done(std::move(r));
  if (in_flight_.fetch_sub(1) == 1) {
    std::lock_guard lock(flush_mu_);
    flush_cv_.notify_all();
  }
}

void JetStreamStore::prepare_and_publish(std::unique_ptr<PendingAppend> op) {
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
    // The actor has a version its writer did not know of.
    forget(subject);
    return finish(std::move(op), stored_in_doubt(req, d));
  }
  auto t = fetch_tip(req.key, /*for_append=*/true);
  if (!t) {
    r.status = t.status();
    return finish(std::move(op), std::move(r));
  }
  op->tip = *t;
  if (last_commit_is_this(op)) return;
  if (t->version != req.expected_version) return finish(std::move(op), conflict(req, t->version));
  publish(std::move(op));
}

bool JetStreamStore::last_commit_is_this(std::unique_ptr<PendingAppend>& op) {
  const AppendRequest& req = *op->req;
  if (req.idempotency_key.empty() || op->tip.tag.key != req.idempotency_key) return false;
  // The actor's last commit is this key's (a retry from a writer that
  // missed it): the same commit; its key goes to the cache again.
  AppendResult r;
  r.duplicate = true;
  r.first_version = op->tip.first;
  r.version = op->tip.version;
  r.duplicate_digest = op->tip.tag.digest;
  record_idempotent(req.key, req.idempotency_key, {r.first_version, r.version, r.duplicate_digest});
  finish(std::move(op), std::move(r));
  return true;
}

void JetStreamStore::publish(std::unique_ptr<PendingAppend> op) {
  const AppendRequest& req = *op->req;
  op->subject = subjects::events(req.key);
  op->first = req.expected_version + 1;
  op->last = req.expected_version + req.events.size();
  op->commit_id = commit_prefix_ + std::to_string(++commit_counter_);
  op->deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(conn_.options().request_timeout_ms);
  natsMsg* m = build_commit(req, op->subject, op->tip.seq, op->first, op->commit_id);
  send_commit(std::move(op), m);
}

void JetStreamStore::send_commit(std::unique_ptr<PendingAppend> op, natsMsg* msg) {
  const int64_t left = std::chrono::duration_cast<std::chrono::milliseconds>(
                           op->deadline - std::chrono::steady_clock::now()).count();
  const bool again = op->maybe_stored;
  if (op->sends > 0 && left < kMinSendWaitMs) {
    // A send again that came too late (a busy pool): not made.
    return send_failed(std::move(op), msg, again ? NATS_TIMEOUT : NATS_NO_RESPONDERS);
  }
  // Each send waits twice as long as the one before: an acknowledgement
  // that is only slow (a loaded server) is not met by ever more sends.
  const int64_t wait = kSendWaitMs << std::min(op->sends, 4);
  ++op->sends;
  // Pending appends are keyed by their message, which cnats hands back to
  // the ack handler (unique while it lives: the entry goes before the
  // message does).
  natsMsg* const msg_key = msg;
  PendingAppend* raw = op.get();
  {
    std::lock_guard lock(pending_mu_);
    pending_[msg_key] = std::move(op);
  }
  jsPubOptions po;
  jsPubOptions_Init(&po);
  po.MaxWait = std::max<int64_t>(1, std::min(wait, left));
  natsMsg* m = msg;
  natsStatus s = js_PublishMsgAsync(ajs_, &m, &po);
  if (s == NATS_OK) return;
  std::unique_ptr<PendingAppend> back;
  {
    std::lock_guard lock(pending_mu_);
    auto it = pending_.find(msg_key);
    if (it != pending_.end() && it->second.get() == raw) {
      back = std::move(it->second);
      pending_.erase(it);
    }
  }
  if (!back) {
    natsMsg_Destroy(m);
    return;
  }
  send_failed(std::move(back), m, s);
}

void JetStreamStore::send_failed(std::unique_ptr<PendingAppend> op, natsMsg* msg, natsStatus s) {
  forget(op->subject);
  AppendResult r;
  if (op->maybe_stored) {
    // An earlier send may be stored.
    in_doubt_.hold(msg);
    r.status = maybe_stored_status(*op, s, 0);
  } else {
    natsMsg_Destroy(msg);
    r.status = request_failed(s, 0, "publish to " + op->subject, "", Applied::kNo);
  }
  finish(std::move(op), std::move(r));
}

natsMsg* JetStreamStore::build_commit(const AppendRequest& req, const std::string& subject, uint64_t expected_seq,
                                      uint64_t first, const std::string& commit_id) {
  const std::string data = encode_commit(req, first, commit_id, opts_.node_id);
  natsMsg* m = nullptr;
  natsMsg_Create(&m, subject.c_str(), nullptr, data.data(), static_cast<int>(data.size()));
  // The message id is the commit's first version. The server deduplicates by it
  // within the stream's duplicate window as it applies a message, on every
  // replica alike, so of two commits of one version only the first is
  // stored: the fence against a second writer of the actor (every commit
  // made on one version has the same first version, whatever its length,
  // which its last version would not give). The expected
  // last subject sequence alone is no fence on a replicated stream:
  // nats-server 2.9 checks it before the proposal, against what the leader
  // has applied (its issue 4320), and a new leader forgets what is still in
  // its pipeline, so two publishes expecting one sequence could both be
  // stored. A retry of a keyed command is found by its key (the actor's
  // window of recent keys, the key cache, the actor's last commit).
  const std::string msg_id = req.key.ns + "." + req.key.type + "." + req.key.id + "." + std::to_string(first) +
                             repaired_suffix(subject);
  natsMsgHeader_Set(m, "Nats-Msg-Id", msg_id.c_str());
  natsMsgHeader_Set(m, "Nats-Expected-Last-Subject-Sequence", std::to_string(expected_seq).c_str());
  // No header of our own: the versions, the commit id and the idempotency
  // key are read from the body (commit_head). Each header costs the writer
  // and the server (BENCHMARKS.md, "The commit headers").
  return m;
}

void JetStreamStore::on_ack(jsCtx*, natsMsg* msg, jsPubAck* pa, jsPubAckErr* pae, void* closure) {
  run_guarded("jetstream store: publish ack", [&] {
    static_cast<JetStreamStore*>(closure)->acked(msg, pa, pae);
  });
}

void JetStreamStore::acked(natsMsg* msg, jsPubAck* pa, jsPubAckErr* pae) {
  auto* self = this;
  std::unique_ptr<PendingAppend> op;
  {
    std::lock_guard lock(self->pending_mu_);
    auto it = self->pending_.find(msg);
    if (it != self->pending_.end()) {
      op = std::move(it->second);
      self->pending_.erase(it);
    }
  }
  // No answer, or none that says "not stored": the commit is in doubt.
  const bool refused = pae != nullptr && (pae->ErrCode != 0 || pae->Err == NATS_NO_RESPONDERS);
  if (op && pa != nullptr && !pa->Duplicate) {
    MsgPtr owner{msg};
    return self->committed(std::move(op), pa->Sequence, msg_body(msg));
  }
  // Unanswered within its send's wait, or nobody to take it (the stream is
  // electing a leader), with time left: sent again, off cnats' thread.
  const bool unanswered = pa == nullptr && pae != nullptr && pae->ErrCode == 0 && pae->Err == NATS_TIMEOUT;
  const bool no_leader = pa == nullptr && pae != nullptr && pae->ErrCode == 0 && pae->Err == NATS_NO_RESPONDERS;
  const int64_t pause_ms = no_leader ? kNoLeaderPauseMs : 0;
  if (op && (unanswered || no_leader) &&
      std::chrono::steady_clock::now() + std::chrono::milliseconds(pause_ms + kMinSendWaitMs) < op->deadline) {
    if (unanswered) op->maybe_stored = true;
    PendingAppend* raw = op.release();
    self->pool_.post([self, raw, msg, pause_ms] {
      if (pause_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(pause_ms));
      self->send_commit(std::unique_ptr<PendingAppend>(raw), msg);
    });
    return;
  }
  // A commit with an unanswered send is kept in doubt by settle(), which
  // finds out what a later send's answer means.
  const bool resent = op && op->maybe_stored;
  if (pa == nullptr && !refused && !resent) in_doubt_.hold(msg);
  else natsMsg_Destroy(msg);
  if (!op) return;
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

void JetStreamStore::echo_commit(const std::string& subject, std::string_view body) {
  if (opts_.echo != nullptr && !body.empty()) opts_.echo->deliver_local(Message{subject, std::string(body)});
}

void JetStreamStore::committed(std::unique_ptr<PendingAppend> op, uint64_t seq, std::string_view body) {
  echo_commit(op->subject, body);
  const AppendRequest& req = *op->req;
  {
    std::lock_guard lock(mu_);
    tips_[op->subject] = Tip{op->last, seq, op->first, {req.idempotency_key, req.command_digest}};
  }
  // The key is in the commit (its body): the cache write comes after the
  // reply and may be lost without harm.
  if (!req.idempotency_key.empty()) {
    record_idempotent(req.key, req.idempotency_key, {op->first, op->last, req.command_digest});
  }
  AppendResult r;
  r.first_version = op->first;
  r.version = op->last;
  finish(std::move(op), std::move(r));
}

void JetStreamStore::settle(std::unique_ptr<PendingAppend> op, uint64_t seq, bool duplicate, jsErrCode code,
                            natsStatus err) {
  const AppendRequest& req = *op->req;
  forget(op->subject);
  if (duplicate) {
    // The server already had this message id: our own retried publish, or
    // another writer's commit of the same version.
    // Sequence 0: the server has only staged a message of that id (its
    // proposal is not applied yet).
    natsMsg* stored = nullptr;
    natsStatus gs = seq != 0 ? get_at(&stored, events_stream(req.key.ns), seq) : NATS_NOT_FOUND;
    MsgPtr so{stored};
    const std::optional<CommitHead> head = gs == NATS_OK ? commit_head(stored) : std::nullopt;
    if (head && head->commit_id == op->commit_id) {
      // Our own publish, stored before: its acknowledgement was lost.
      return committed(std::move(op), seq, msg_body(stored));
    }
    if (head && !req.idempotency_key.empty() && head->tag.key == req.idempotency_key) {
      // An earlier commit of this idempotency key: that one is the result.
      AppendResult r;
      r.duplicate = true;
      r.first_version = head->first;
      r.version = head->last;
      r.duplicate_digest = head->tag.digest;
      record_idempotent(req.key, req.idempotency_key, {r.first_version, r.version, r.duplicate_digest});
      return finish(std::move(op), std::move(r));
    }
    // A send of this commit after an unanswered one, and the commit under
    // its message id not at hand (only staged, or not readable now): the
    // actor's last commit says whose it is. One at hand that is another
    // commit means this one is not stored: its version is taken.
    if (op->maybe_stored && !head) return settle_resent(std::move(op));
    auto t = fetch_tip(req.key);
    return finish(std::move(op), conflict(req, t ? t->version : op->last));
  }
  const bool resent = op->maybe_stored;
  if (code == JSStreamWrongLastSequenceErr) {
    if (resent) return settle_resent(std::move(op));
    auto t = fetch_tip(req.key);
    return finish(std::move(op), conflict(req, t ? t->version : 0));
  }
  // An error JetStream answered, or nobody to take the message: not
  // stored, unless an earlier send of it was. Anything else (no ack in
  // time, the connection lost meanwhile) leaves the commit unknown.
  const bool refused = code != 0 || err == NATS_NO_RESPONDERS;
  AppendResult r;
  if (resent) {
    in_doubt_.hold(build_commit(req, op->subject, op->tip.seq, op->first, op->commit_id));
    r.status = maybe_stored_status(*op, err, code);
  } else {
    r.status = request_failed(err, code, "publish to " + op->subject, "publish_not_acknowledged",
                              refused ? Applied::kNo : Applied::kMaybe);
  }
  finish(std::move(op), std::move(r));
}

Status JetStreamStore::maybe_stored_status(const PendingAppend& op, natsStatus err, int code) const {
  const Status s = request_failed(err, code, "publish to " + op.subject + " (sent " + std::to_string(op.sends) +
                                  " times, one unanswered)", "publish_not_acknowledged", Applied::kMaybe);
  if (s.applied() == Applied::kMaybe) return s;
  return Status::unavailable(s.message() + "; the commit may or may not be stored")
      .with_cause("publish_not_acknowledged", Applied::kMaybe);
}

// A commit sent more than once, answered "duplicate" without the commit
// at hand, or refused for its expected last sequence: nats-server checks
// that before the message id, so an earlier send of the commit, stored,
// looks like another writer's commit. The actor's last commit, read from
// the leader, says whether it is this one; while it is older than this
// commit, an earlier send may still be on its way to being stored, so it
// is read again until the deadline. Anything else leaves the commit in
// doubt: it is never answered "not stored".
void JetStreamStore::settle_resent(std::unique_ptr<PendingAppend> op) {
  const AppendRequest& req = *op->req;
  Result<Tip> t = fetch_tip(req.key);
  for (int reads = 1; (!t || t->version < op->first) && reads < 100 &&
                      std::chrono::steady_clock::now() + std::chrono::milliseconds(kNoLeaderPauseMs) < op->deadline;
       ++reads) {
    std::this_thread::sleep_for(std::chrono::milliseconds(kNoLeaderPauseMs));
    forget(op->subject);
    t = fetch_tip(req.key);
  }
  if (t && t->first == op->first && t->version == op->last) {
    natsMsg* stored = nullptr;
    if (get_at(&stored, events_stream(req.key.ns), t->seq) == NATS_OK) {
      MsgPtr owner{stored};
      const std::optional<CommitHead> head = commit_head(stored);
      if (head && head->commit_id == op->commit_id) {
        in_doubt_.drop(op->subject);
        return committed(std::move(op), t->seq, msg_body(stored));
      }
    }
  }
  forget(op->subject);
  // Kept: the actor's next append settles it first (prepare_and_publish).
  in_doubt_.hold(build_commit(req, op->subject, op->tip.seq, op->first, op->commit_id));
  AppendResult r;
  r.status = Status::unavailable("jetstream: publish to " + op->subject + ": sent " + std::to_string(op->sends) +
                                 " times, one unanswered, and the stream holds " +
                                 (t ? "version " + std::to_string(t->version) + " of the actor, not this commit as its last"
                                    : "an actor whose last commit could not be read (" + t.status().message() + ")") +
                                 "; the commit may or may not be stored")
                 .with_cause("publish_not_acknowledged", Applied::kMaybe);
  finish(std::move(op), std::move(r));
}

AppendResult JetStreamStore::stored_in_doubt(const AppendRequest& req, const InDoubtCommits::Settled& d) {
  const std::optional<CommitHead> mine = commit_head(d.held.get());
  if (!mine || mine->first != req.expected_version + 1) return conflict(req, req.expected_version + 1);
  bool ours = !d.duplicate;
  if (d.duplicate) {
    // The server had a message of its id, the version: an earlier copy of
    // this commit, or another writer's commit of the same version. The one
    // at that sequence says which.
    natsMsg* stored = nullptr;
    if (get_at(&stored, events_stream(req.key.ns), d.seq) == NATS_OK) {
      MsgPtr owner{stored};
      const std::optional<CommitHead> there = commit_head(stored);
      ours = there && there->commit_id == mine->commit_id;
    }
  }
  if (!ours) return conflict(req, req.expected_version + 1);
  // Ours: this process's own readers get it now, its acknowledgement having
  // been lost; the actor's tip is known without a lookup, and the commit's
  // key goes to the cache (its first write was skipped with the lost ack).
  echo_commit(subjects::events(req.key), msg_body(d.held.get()));
  const CommitTag& tag = mine->tag;
  {
    std::lock_guard lock(mu_);
    tips_[subjects::events(req.key)] = Tip{mine->last, d.seq, mine->first, tag};
  }
  if (!tag.key.empty()) record_idempotent(req.key, tag.key, {mine->first, mine->last, tag.digest});
  AppendResult r = conflict(req, mine->last);
  r.previous_append_stored = true;
  return r;
}

AppendResult JetStreamStore::conflict(const AppendRequest& req, uint64_t current) {
  AppendResult r;
  r.current_version = current;
  r.status = version_conflict(req.key, req.expected_version, current);
  return r;
}

void JetStreamStore::forget(const std::string& subject) {
  std::lock_guard lock(mu_);
  tips_.erase(subject);
}

}  // namespace aether::store_detail
