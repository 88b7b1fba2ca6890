// SqliteStore: reads, snapshots out, and repair.
#include "store/sqlite_journal.hpp"

namespace aether::store_detail {

Status SqliteStore::read(const ActorKey& key, uint64_t from_version, uint64_t limit,
                         const EventVisitor& visit) {
  const uint64_t from = from_version == 0 ? 1 : from_version;
  // Versions are stored as signed 64-bit integers: none is past INT64_MAX.
  if (from > static_cast<uint64_t>(INT64_MAX)) return Status::ok();
  Lease c(*this);
  Stmt& s = c->read_events;
  Resetter r{s};
  s.bind_key(key);
  s.bind(4, static_cast<int64_t>(from));
  s.bind(5, static_cast<int64_t>(std::min<uint64_t>(limit, INT64_MAX)));
  uint64_t expect = from;
  StoredEvent e;
  for (;;) {
    const int rc = s.step();
    if (rc == SQLITE_DONE) return Status::ok();
    if (rc != SQLITE_ROW) return Status::unavailable(db_error(c->db, "read events"));
    e.version = static_cast<uint64_t>(s.col_int(0));
    auto where = [&key] { return "actor " + key.to_string() + ", event at version "; };
    if (e.version != expect) {
      return Status::corruption(where() + std::to_string(expect) + ": stream jumps to version " +
                                std::to_string(e.version) + " (a gap in the stored versions)");
    }
    if (s.col_type(1) != SQLITE_TEXT || s.col_type(2) == SQLITE_NULL) {
      return Status::corruption(where() + std::to_string(e.version) +
                                ": undecodable record (event type or payload missing)");
    }
    s.col_assign(1, e.type);
    s.col_assign(2, e.payload);
    if (e.type.empty() || e.payload.empty()) {
      return Status::corruption(where() + std::to_string(e.version) +
                                ": undecodable record (empty event type or payload)");
    }
    if (Status bad = check_json_text(e.payload, kMaxStoredJsonDepth, "payload"); !bad) {
      return Status::corruption(where() + std::to_string(e.version) + ": undecodable record (" +
                                bad.message() + ")");
    }
    e.timestamp_ms = s.col_int(3);
    s.col_assign(4, e.idempotency_key);
    s.col_assign(5, e.command_digest);
    e.commit_first_version = static_cast<uint64_t>(s.col_int(6));
    if (Status st = visit(e); !st) return st;
    ++expect;
  }
}

Result<uint64_t> SqliteStore::latest_version(const ActorKey& key) {
  Lease c(*this);
  return max_version(*c, key);
}

Result<std::optional<IdempotentCommit>> SqliteStore::find_idempotent(const ActorKey& key,
                                                                     const std::string& k) {
  Lease c(*this);
  return find_idem(*c, key, k);
}

Status SqliteStore::forget_idempotent(const ActorKey& key, const std::string& k) {
  Lease c(*this);
  Stmt& s = c->forget_idem;
  Resetter r{s};
  s.bind_key(key);
  s.bind(4, k);
  if (s.step() != SQLITE_DONE) return Status::unavailable(db_error(c->db, "forget idempotency key"));
  return Status::ok();
}

Result<std::optional<Snapshot>> SqliteStore::latest_snapshot(const ActorKey& key) {
  auto all = list_n(key, 1);
  if (!all) return all.status();
  if (all->empty()) return std::optional<Snapshot>();
  return std::optional<Snapshot>(std::move(all->front()));
}

Result<TruncateResult> SqliteStore::truncate_after(const ActorKey& key, uint64_t version, bool dry_run) {
  return in_repair_tx<TruncateResult>(dry_run, [&](Connection& c) -> Result<TruncateResult> {
    auto kept = key_query(c, key, version,
                          "SELECT COUNT(*), COALESCE(MAX(version),0) FROM events WHERE ns=?1 AND "
                          "type=?2 AND id=?3 AND version<=?4");
    if (!kept) return kept.status();
    if (kept->first != version) {
      return Status::invalid("actor " + key.to_string() + " has " + std::to_string(kept->first) +
                             " events up to version " + std::to_string(version) +
                             ": the versions to keep are not all there");
    }
    auto gone = key_query(c, key, version,
                          "SELECT COUNT(*), COALESCE(MAX(version),0) FROM events WHERE ns=?1 AND "
                          "type=?2 AND id=?3 AND version>?4");
    if (!gone) return gone.status();
    if (!dry_run) {
      for (const char* sql : {"DELETE FROM events WHERE ns=?1 AND type=?2 AND id=?3 AND version>?4",
                              "DELETE FROM idempotency WHERE ns=?1 AND type=?2 AND id=?3 AND "
                              "last_version>?4"}) {
        if (auto d = key_query(c, key, version, sql); !d) return d.status();
      }
    }
    return TruncateResult{gone->first, gone->second};
  });
}

Result<uint64_t> SqliteStore::drop_snapshots_after(const ActorKey& key, uint64_t version, bool dry_run) {
  return in_repair_tx<uint64_t>(dry_run, [&](Connection& c) -> Result<uint64_t> {
    auto n = key_query(c, key, version,
                       "SELECT COUNT(*), 0 FROM snapshots WHERE ns=?1 AND type=?2 AND id=?3 AND version>?4");
    if (!n) return n.status();
    if (!dry_run) {
      auto d = key_query(c, key, version,
                         "DELETE FROM snapshots WHERE ns=?1 AND type=?2 AND id=?3 AND version>?4");
      if (!d) return d.status();
    }
    return n->first;
  });
}

Result<std::pair<uint64_t, uint64_t>> SqliteStore::key_query(Connection& c, const ActorKey& key, uint64_t version,
                                                             const char* sql) {
  Stmt s;
  if (sqlite3_prepare_v2(c.db, sql, -1, s.ptr(), nullptr) != SQLITE_OK) {
    return Status::internal(db_error(c.db, std::string("prepare ") + sql));
  }
  s.bind_key(key);
  s.bind(4, static_cast<int64_t>(std::min<uint64_t>(version, INT64_MAX)));
  const int rc = s.step();
  if (rc == SQLITE_DONE) return std::pair<uint64_t, uint64_t>{0, 0};
  if (rc != SQLITE_ROW) return Status::unavailable(db_error(c.db, sql));
  return std::pair<uint64_t, uint64_t>{static_cast<uint64_t>(s.col_int(0)), static_cast<uint64_t>(s.col_int(1))};
}

Result<uint64_t> SqliteStore::max_version(Connection& c, const ActorKey& key) {
  Stmt& s = c.max_version;
  Resetter r{s};
  s.bind_key(key);
  if (s.step() != SQLITE_ROW) return Status::unavailable(db_error(c.db, "read version"));
  return static_cast<uint64_t>(s.col_int(0));  // NULL reads as 0
}

Result<std::optional<IdempotentCommit>> SqliteStore::find_idem(Connection& c, const ActorKey& key,
                                                               const std::string& k) {
  Stmt& s = c.find_idem;
  Resetter r{s};
  s.bind_key(key);
  s.bind(4, k);
  const int rc = s.step();
  if (rc == SQLITE_DONE) return std::optional<IdempotentCommit>();
  if (rc != SQLITE_ROW) return Status::unavailable(db_error(c.db, "read idempotency key"));
  return std::optional<IdempotentCommit>(IdempotentCommit{
      static_cast<uint64_t>(s.col_int(0)), static_cast<uint64_t>(s.col_int(1)), s.col_text(2)});
}

Result<std::vector<Snapshot>> SqliteStore::list_n(const ActorKey& key, int64_t n) {
  Lease c(*this);
  Stmt& s = c->list_snapshots;
  Resetter r{s};
  s.bind_key(key);
  s.bind(4, n);
  std::vector<Snapshot> out;
  for (;;) {
    const int rc = s.step();
    if (rc == SQLITE_DONE) return out;
    if (rc != SQLITE_ROW) return Status::unavailable(db_error(c->db, "read snapshots"));
    Snapshot snap;
    snap.version = static_cast<uint64_t>(s.col_int(0));
    snap.plugin = s.col_text(1);
    snap.schema_version = static_cast<uint32_t>(s.col_int(2));
    snap.bytes = s.col_text(3);
    snap.timestamp_ms = s.col_int(4);
    snap.host_record = s.col_text(5);
    out.push_back(std::move(snap));
  }
}

}  // namespace aether::store_detail
