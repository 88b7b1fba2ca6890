// SqliteStore: the writer thread: group commit of appends and snapshots.
#include "store/sqlite_journal.hpp"

namespace aether::store_detail {

void SqliteStore::append(const AppendRequest& req, AppendCallback done) {
  if (req.events.empty()) {
    AppendResult r;
    r.status = Status::invalid("an append needs at least one event");
    done(std::move(r));
    return;
  }
  {
    std::lock_guard lock(mu_);
    if (stopping_) {
      AppendResult r;
      r.status = Status::unavailable("the store is closing");
      done(std::move(r));
      return;
    }
    queue_.emplace_back(AppendOp{&req, std::move(done), {}});
  }
  cv_.notify_one();
}

Status SqliteStore::save_snapshot(const ActorKey& key, const Snapshot& snap, uint32_t keep) {
  return wait_write(SnapshotOp{key, snap, keep == 0 ? 1 : keep, nullptr});
}

void SqliteStore::run_append(AppendOp& op) {
  const AppendRequest& req = *op.req;
  AppendResult& res = op.result;
  const std::optional<uint64_t> cur = admit_append(req, res);
  if (!cur) return;
  if (!insert_events(req, *cur, res) || !insert_idempotency_row(req, res) || !insert_outbox_row(req, res)) {
    rollback_to_savepoint_ = true;
    return;
  }
  res.first_version = req.expected_version + 1;
  res.version = req.expected_version + req.events.size();
}

std::optional<uint64_t> SqliteStore::admit_append(const AppendRequest& req, AppendResult& res) {
  if (!req.idempotency_key.empty()) {
    auto hit = find_idem(write_, req.key, req.idempotency_key);
    if (!hit) {
      res.status = hit.status();
      return std::nullopt;
    }
    if (hit->has_value()) {
      res.duplicate = true;
      res.first_version = (*hit)->first_version;
      res.version = (*hit)->last_version;
      res.duplicate_digest = (*hit)->digest;
      return std::nullopt;
    }
  }
  auto cur = max_version(write_, req.key);
  if (!cur) {
    res.status = cur.status();
    return std::nullopt;
  }
  if (*cur != req.expected_version) {
    res.current_version = *cur;
    res.status = version_conflict(req.key, req.expected_version, *cur);
    return std::nullopt;
  }
  return *cur;
}

bool SqliteStore::insert_events(const AppendRequest& req, uint64_t cur, AppendResult& res) {
  Stmt& ins = write_.insert_event;
  uint64_t v = req.expected_version;
  for (const NewEvent& e : req.events) {
    Resetter r{ins};
    ins.bind_key(req.key);
    ins.bind(4, static_cast<int64_t>(++v));
    ins.bind(5, e.type);
    ins.bind(6, e.payload);
    ins.bind(7, req.timestamp_ms);
    if (!req.idempotency_key.empty() && v == req.expected_version + req.events.size()) {
      // The key goes with the commit's last event: in the journal itself.
      ins.bind(8, req.idempotency_key);
      ins.bind(9, req.command_digest);
      ins.bind(10, static_cast<int64_t>(req.expected_version + 1));
    }
    if (ins.step() != SQLITE_DONE) {
      // Cannot happen through the version check above unless another
      // process writes the file; the primary key refuses it either way.
      res.status = Status::conflict(db_error(write_.db, "insert event"));
      res.current_version = cur;
      return false;
    }
  }
  return true;
}

bool SqliteStore::insert_idempotency_row(const AppendRequest& req, AppendResult& res) {
  if (req.idempotency_key.empty()) return true;
  Stmt& s = write_.insert_idem;
  Resetter r{s};
  s.bind_key(req.key);
  s.bind(4, req.idempotency_key);
  s.bind(5, static_cast<int64_t>(req.expected_version + 1));
  s.bind(6, static_cast<int64_t>(req.expected_version + req.events.size()));
  s.bind(7, req.command_digest);
  if (s.step() == SQLITE_DONE) return true;
  res.status = Status::internal(db_error(write_.db, "insert idempotency key"));
  return false;
}

bool SqliteStore::insert_outbox_row(const AppendRequest& req, AppendResult& res) {
  if (!opts_.outbox) return true;
  const std::string subject = subjects::events(req.key);
  const std::string data = encode_commit(req, req.expected_version + 1,
                                         commit_prefix_ + std::to_string(++commit_counter_), opts_.node_id);
  Stmt& o = write_.insert_outbox;
  Resetter r{o};
  o.bind(1, subject);
  o.bind(2, data);
  if (o.step() == SQLITE_DONE) return true;
  res.status = Status::internal(db_error(write_.db, "insert outbox"));
  return false;
}

void SqliteStore::broadcast(const AppendOp& a) {
  if (opts_.broadcast == nullptr || opts_.outbox || !a.result.status || a.result.duplicate) return;
  publish_commit(*opts_.broadcast, *a.req, a.result.first_version,
                 commit_prefix_ + std::to_string(++commit_counter_), opts_.node_id);
}

Status SqliteStore::run_snapshot(SnapshotOp& op) {
  Stmt& s = write_.save_snapshot;
  {
    Resetter r{s};
    s.bind_key(op.key);
    s.bind(4, static_cast<int64_t>(op.snap.version));
    s.bind(5, op.snap.plugin);
    s.bind(6, static_cast<int64_t>(op.snap.schema_version));
    s.bind_blob(7, op.snap.bytes);
    s.bind(8, op.snap.timestamp_ms);
    s.bind_blob(9, op.snap.host_record);
    if (s.step() != SQLITE_DONE) return Status::internal(db_error(write_.db, "save snapshot"));
  }
  Stmt& t = write_.trim_snapshots;
  Resetter r{t};
  t.bind_key(op.key);
  t.bind(4, static_cast<int64_t>(op.keep));
  if (t.step() != SQLITE_DONE) return Status::internal(db_error(write_.db, "trim snapshots"));
  return Status::ok();
}

void SqliteStore::step_once(Stmt& s) {
  s.step();
  s.reset();
}

void SqliteStore::write_loop() {
  std::vector<WriteOp> batch;
  for (;;) {
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty() && stopping_) return;
      const size_t n = std::min<size_t>(queue_.size(), std::max<uint32_t>(1, opts_.max_batch));
      for (size_t i = 0; i < n; ++i) {
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
    }
    run_batch(batch);
    batch.clear();
    checkpointer_->bound_wal(write_.db);
  }
}

void SqliteStore::run_batch(std::vector<WriteOp>& batch) {
  Status tx = exec(write_.db, "BEGIN IMMEDIATE");
  std::vector<Status> snap_status(batch.size());
  size_t appends = 0;
  if (tx) {
    for (size_t i = 0; i < batch.size(); ++i) {
      if (auto* a = std::get_if<AppendOp>(&batch[i])) {
        ++appends;
        // Only an append of several rows can fail half-way and need a savepoint.
        const bool multi = a->req->events.size() > 1 || !a->req->idempotency_key.empty() || opts_.outbox;
        if (multi) step_once(write_.savepoint);
        rollback_to_savepoint_ = false;
        run_append(*a);
        if (multi && rollback_to_savepoint_) step_once(write_.rollback_to);
        if (multi) step_once(write_.release);
      } else if (auto* s = std::get_if<SnapshotOp>(&batch[i])) {
        snap_status[i] = run_snapshot(*s);
      } else if (auto* k = std::get_if<AckOutboxOp>(&batch[i])) {
        Stmt& d = write_.ack_outbox;
        Resetter r{d};
        d.bind(1, static_cast<int64_t>(k->up_to));
        snap_status[i] = d.step() == SQLITE_DONE ? Status::ok()
                                                 : Status::internal(db_error(write_.db, "ack outbox"));
      }
    }
    tx = exec(write_.db, "COMMIT");
    if (!tx) exec(write_.db, "ROLLBACK");
  }
  if (!tx) {
    log::error("sqlite store: group commit failed: " + tx.message());
    tx = Status::unavailable("the store could not commit: " + tx.message());
  }
  if (appends > 0 && opts_.on_commit_batch) opts_.on_commit_batch(appends);
  if (appends > 0 && tx && relay_) relay_->notify();
  for (size_t i = 0; i < batch.size(); ++i) {
    if (auto* a = std::get_if<AppendOp>(&batch[i])) {
      if (!tx) {
        a->result = AppendResult{};
        a->result.status = tx;
      }
      broadcast(*a);
      a->done(std::move(a->result));
    } else if (auto* s = std::get_if<SnapshotOp>(&batch[i])) {
      s->done->set_value(tx ? snap_status[i] : tx);
    } else if (auto* k = std::get_if<AckOutboxOp>(&batch[i])) {
      k->done->set_value(tx ? snap_status[i] : tx);
    } else {
      std::get<FlushOp>(batch[i]).done->set_value(tx);
    }
  }
}

}  // namespace aether::store_detail
