// The SQLite backend.
//
// One writer thread owns the write connection and turns whatever appends are
// waiting into one transaction (group commit): while a commit is being made
// durable, the next batch gathers. Inside the transaction each append checks
// its actor's version exactly (SELECT MAX(version) sees the batch's own
// earlier writes), so grouping never weakens the check. The schema's primary
// key (ns, type, id, version) makes a second event at a version impossible
// whatever a buggy writer does. Readers use their own connections (WAL).
#include <sqlite3.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <future>
#include <mutex>
#include <optional>
#include <thread>
#include <variant>

#include "core/conflict.hpp"
#include "core/json_limits.hpp"
#include "core/log.hpp"
#include "core/subjects.hpp"
#include "store/commit_codec.hpp"
#include "store/outbox_relay.hpp"
#include "store/sqlite_checkpointer.hpp"
#include "store/store.hpp"

namespace aether {
namespace {

constexpr int kSchemaVersion = 2;

const char* const kSchema = R"sql(
CREATE TABLE IF NOT EXISTS aether_meta (
  key   TEXT PRIMARY KEY,
  value TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS events (
  ns         TEXT    NOT NULL,
  type       TEXT    NOT NULL,
  id         TEXT    NOT NULL,
  version    INTEGER NOT NULL CHECK (version >= 1),
  event_type TEXT    NOT NULL,
  payload    TEXT    NOT NULL,
  ts         INTEGER NOT NULL,
  idem_key     TEXT,
  idem_digest  TEXT,
  commit_first INTEGER,
  PRIMARY KEY (ns, type, id, version)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS idempotency (
  ns            TEXT    NOT NULL,
  type          TEXT    NOT NULL,
  id            TEXT    NOT NULL,
  key           TEXT    NOT NULL,
  first_version INTEGER NOT NULL,
  last_version  INTEGER NOT NULL,
  digest        TEXT,
  PRIMARY KEY (ns, type, id, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS snapshots (
  ns             TEXT    NOT NULL,
  type           TEXT    NOT NULL,
  id             TEXT    NOT NULL,
  version        INTEGER NOT NULL,
  plugin         TEXT    NOT NULL,
  schema_version INTEGER NOT NULL,
  bytes          BLOB    NOT NULL,
  ts             INTEGER NOT NULL,
  host_record    BLOB,
  PRIMARY KEY (ns, type, id, version)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS outbox (
  id      INTEGER PRIMARY KEY AUTOINCREMENT,
  subject TEXT NOT NULL,
  data    TEXT NOT NULL
);
)sql";

// From schema version 1: the idempotency key of a commit moves into the
// journal (on its last event), the key cache and snapshots gain a column.
const char* const kMigrateFrom1 = R"sql(
ALTER TABLE events ADD COLUMN idem_key TEXT;
ALTER TABLE events ADD COLUMN idem_digest TEXT;
ALTER TABLE events ADD COLUMN commit_first INTEGER;
ALTER TABLE idempotency ADD COLUMN digest TEXT;
ALTER TABLE snapshots ADD COLUMN host_record BLOB;
UPDATE aether_meta SET value='2' WHERE key='schema_version';
)sql";

// A prepared statement, reset after each use.
class Stmt {
 public:
  Stmt() = default;
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;
  ~Stmt() { sqlite3_finalize(s_); }

  int prepare(sqlite3* db, const char* sql) {
    return sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &s_, nullptr);
  }
  sqlite3_stmt* get() { return s_; }
  sqlite3_stmt** ptr() { return &s_; }
  void bind(int i, const std::string& v) {
    sqlite3_bind_text(s_, i, v.data(), static_cast<int>(v.size()), SQLITE_STATIC);
  }
  void bind_blob(int i, const std::string& v) {
    sqlite3_bind_blob(s_, i, v.data(), static_cast<int>(v.size()), SQLITE_STATIC);
  }
  void bind(int i, int64_t v) { sqlite3_bind_int64(s_, i, v); }
  void bind_key(const ActorKey& k) {
    bind(1, k.ns);
    bind(2, k.type);
    bind(3, k.id);
  }
  int step() { return sqlite3_step(s_); }
  void reset() {
    sqlite3_reset(s_);
    sqlite3_clear_bindings(s_);
  }
  int64_t col_int(int i) { return sqlite3_column_int64(s_, i); }
  std::string col_text(int i) {
    const auto* p = sqlite3_column_blob(s_, i);
    return p == nullptr ? std::string()
                        : std::string(static_cast<const char*>(p),
                                      static_cast<size_t>(sqlite3_column_bytes(s_, i)));
  }
  int col_type(int i) { return sqlite3_column_type(s_, i); }
  // Assigns a column into `out`, reusing its capacity.
  void col_assign(int i, std::string& out) {
    const auto* p = static_cast<const char*>(sqlite3_column_blob(s_, i));
    out.assign(p == nullptr ? "" : p, static_cast<size_t>(sqlite3_column_bytes(s_, i)));
  }

 private:
  sqlite3_stmt* s_ = nullptr;
};

// Resets a statement when the scope ends.
struct Resetter {
  Stmt& s;
  ~Resetter() { s.reset(); }
};

std::string db_error(sqlite3* db, const std::string& what) {
  return "sqlite: " + what + ": " + sqlite3_errmsg(db);
}

Status exec(sqlite3* db, const char* sql) {
  char* err = nullptr;
  if (sqlite3_exec(db, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    std::string m = err != nullptr ? err : sqlite3_errmsg(db);
    sqlite3_free(err);
    return Status::internal("sqlite: " + std::string(sql).substr(0, 40) + "...: " + m);
  }
  return Status::ok();
}

// One connection with the statements it needs.
struct Connection {
  sqlite3* db = nullptr;
  Stmt max_version, insert_event, find_idem, insert_idem, forget_idem, read_events;
  Stmt save_snapshot, trim_snapshots, list_snapshots;
  Stmt savepoint, release, rollback_to;
  Stmt insert_outbox, fetch_outbox, ack_outbox;

  // sqlite3_close_v2 defers the close until the statements (members,
  // finalized after this body) are gone.
  ~Connection() {
    sqlite3_close_v2(db);
  }

  Status open(const std::string& path, const std::string& synchronous, bool create) {
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX;
    if (create) flags |= SQLITE_OPEN_CREATE;
    if (sqlite3_open_v2(path.c_str(), &db, flags, nullptr) != SQLITE_OK) {
      return Status::unavailable(db_error(db, "cannot open " + path));
    }
    sqlite3_busy_timeout(db, 10000);
    if (Status s = exec(db, "PRAGMA journal_mode=WAL"); !s) return s;
    const std::string sync = "PRAGMA synchronous=" + synchronous;
    if (Status s = exec(db, sync.c_str()); !s) return s;
    return Status::ok();
  }

  Status prepare() {
    struct {
      Stmt* s;
      const char* sql;
    } all[] = {
        {&max_version, "SELECT MAX(version) FROM events WHERE ns=?1 AND type=?2 AND id=?3"},
        {&insert_event,
         "INSERT INTO events(ns,type,id,version,event_type,payload,ts,idem_key,idem_digest,commit_first) "
         "VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10)"},
        {&find_idem,
         "SELECT first_version,last_version,digest FROM idempotency WHERE ns=?1 AND type=?2 AND id=?3 "
         "AND key=?4"},
        {&insert_idem,
         "INSERT INTO idempotency(ns,type,id,key,first_version,last_version,digest) "
         "VALUES(?1,?2,?3,?4,?5,?6,?7)"},
        {&forget_idem, "DELETE FROM idempotency WHERE ns=?1 AND type=?2 AND id=?3 AND key=?4"},
        {&read_events,
         "SELECT version,event_type,payload,ts,idem_key,idem_digest,commit_first FROM events "
         "WHERE ns=?1 AND type=?2 AND id=?3 AND version>=?4 ORDER BY version LIMIT ?5"},
        {&save_snapshot,
         "INSERT OR REPLACE INTO snapshots(ns,type,id,version,plugin,schema_version,bytes,ts,host_record) "
         "VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9)"},
        {&trim_snapshots,
         "DELETE FROM snapshots WHERE ns=?1 AND type=?2 AND id=?3 AND version NOT IN "
         "(SELECT version FROM snapshots WHERE ns=?1 AND type=?2 AND id=?3 "
         "ORDER BY version DESC LIMIT ?4)"},
        {&insert_outbox, "INSERT INTO outbox(subject,data) VALUES(?1,?2)"},
        {&fetch_outbox, "SELECT id,subject,data FROM outbox ORDER BY id LIMIT ?1"},
        {&ack_outbox, "DELETE FROM outbox WHERE id <= ?1"},
        {&savepoint, "SAVEPOINT append"},
        {&release, "RELEASE append"},
        {&rollback_to, "ROLLBACK TO append"},
        {&list_snapshots,
         "SELECT version,plugin,schema_version,bytes,ts,host_record FROM snapshots WHERE ns=?1 "
         "AND type=?2 AND id=?3 ORDER BY version DESC LIMIT ?4"},
    };
    for (auto& [s, sql] : all) {
      if (s->prepare(db, sql) != SQLITE_OK) {
        return Status::internal(db_error(db, std::string("prepare ") + sql));
      }
    }
    return Status::ok();
  }
};

struct AppendOp {
  const AppendRequest* req;
  AppendCallback done;
  AppendResult result;
};
struct SnapshotOp {
  ActorKey key;
  Snapshot snap;
  uint32_t keep;
  std::promise<Status>* done;
};
struct FlushOp {
  std::promise<Status>* done;
};
struct AckOutboxOp {
  uint64_t up_to;
  std::promise<Status>* done;
};
using WriteOp = std::variant<AppendOp, SnapshotOp, FlushOp, AckOutboxOp>;

class SqliteStore final : public Journal, public Outbox {
 public:
  explicit SqliteStore(SqliteOptions opts) : opts_(std::move(opts)) {}

  ~SqliteStore() override {
    relay_.reset();  // it reads and acknowledges through the writer
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    if (writer_.joinable()) writer_.join();
    if (checkpointer_) checkpointer_->stop();
  }

  Status init() {
    const std::filesystem::path p(opts_.path);
    if (p.has_parent_path()) {
      std::error_code ec;
      std::filesystem::create_directories(p.parent_path(), ec);
      if (ec) {
        return Status::unavailable("sqlite: cannot create directory " +
                                   p.parent_path().string() + ": " + ec.message());
      }
    }
    if (Status s = write_.open(opts_.path, opts_.synchronous, true); !s) return s;
    if (Status s = check_schema(); !s) return s;
    if (Status s = write_.prepare(); !s) return s;
    for (uint32_t i = 0; i < std::max<uint32_t>(1, opts_.read_connections); ++i) {
      auto c = std::make_unique<Connection>();
      if (Status s = c->open(opts_.path, opts_.synchronous, false); !s) return s;
      if (Status s = c->prepare(); !s) return s;
      readers_.push_back(std::move(c));
    }
    // Checkpoints off the commit path (sqlite_checkpointer.hpp).
    checkpointer_ = std::make_unique<WalCheckpointer>(opts_.path, opts_.wal_checkpoint_pages, opts_.wal_max_pages,
                                                      opts_.on_checkpoint);
    if (Status s = checkpointer_->start(write_.db); !s) return s;
    // Before the writer starts: the writer reads relay_ without a lock.
    if (opts_.outbox && opts_.relay != nullptr) relay_ = std::make_unique<OutboxRelay>(*opts_.relay, *this);
    writer_ = std::thread([this] { write_loop(); });
    return Status::ok();
  }

  void append(const AppendRequest& req, AppendCallback done) override {
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

  Status read(const ActorKey& key, uint64_t from_version, uint64_t limit,
              const EventVisitor& visit) override {
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

  Result<uint64_t> latest_version(const ActorKey& key) override {
    Lease c(*this);
    return max_version(*c, key);
  }

  Result<std::optional<IdempotentCommit>> find_idempotent(const ActorKey& key,
                                                          const std::string& k) override {
    Lease c(*this);
    return find_idem(*c, key, k);
  }

  Status forget_idempotent(const ActorKey& key, const std::string& k) override {
    Lease c(*this);
    Stmt& s = c->forget_idem;
    Resetter r{s};
    s.bind_key(key);
    s.bind(4, k);
    if (s.step() != SQLITE_DONE) return Status::unavailable(db_error(c->db, "forget idempotency key"));
    return Status::ok();
  }

  Status flush() override {
    Status s = wait_write(FlushOp{nullptr});
    if (s && relay_ && !relay_->drain(2000)) {
      log::warn("the outbox still holds commits NATS has not taken; they are broadcast at the next start");
    }
    return s;
  }

  Status save_snapshot(const ActorKey& key, const Snapshot& snap, uint32_t keep) override {
    return wait_write(SnapshotOp{key, snap, keep == 0 ? 1 : keep, nullptr});
  }

  Result<std::optional<Snapshot>> latest_snapshot(const ActorKey& key) override {
    auto all = list_n(key, 1);
    if (!all) return all.status();
    if (all->empty()) return std::optional<Snapshot>();
    return std::optional<Snapshot>(std::move(all->front()));
  }

  Result<std::vector<Snapshot>> list_snapshots(const ActorKey& key) override { return list_n(key, INT64_MAX); }

  Result<ActorSample> sample_actors(const std::string& ns, const std::string& type, uint64_t n) override {
    static constexpr const char* kSql[] = {
        "SELECT COUNT(*) FROM (SELECT DISTINCT id FROM events WHERE ns=?1 AND type=?2)",
        "SELECT id FROM (SELECT DISTINCT id FROM events WHERE ns=?1 AND type=?2) "
        "ORDER BY random() LIMIT ?3"};
    Lease c(*this);
    ActorSample out;
    for (int q = 0; q < 2; ++q) {
      Stmt s;
      if (s.prepare(c->db, kSql[q]) != SQLITE_OK) return Status::internal(db_error(c->db, kSql[q]));
      s.bind(1, ns);
      s.bind(2, type);
      s.bind(3, static_cast<int64_t>(std::min<uint64_t>(n, INT64_MAX)));
      for (;;) {
        const int rc = s.step();
        if (rc == SQLITE_DONE) break;
        if (rc != SQLITE_ROW) return Status::unavailable(db_error(c->db, "list actors"));
        if (q == 0) out.total = static_cast<uint64_t>(s.col_int(0));
        if (q == 1) out.ids.push_back(s.col_text(0));
      }
    }
    return out;
  }

  Result<std::vector<OutboxEntry>> outbox_fetch(size_t limit) override {
    Lease c(*this);
    Stmt& s = c->fetch_outbox;
    Resetter r{s};
    s.bind(1, static_cast<int64_t>(limit));
    std::vector<OutboxEntry> out;
    for (;;) {
      const int rc = s.step();
      if (rc == SQLITE_DONE) return out;
      if (rc != SQLITE_ROW) return Status::unavailable(db_error(c->db, "read outbox"));
      out.push_back({static_cast<uint64_t>(s.col_int(0)), s.col_text(1), s.col_text(2)});
    }
  }

  Status outbox_ack(uint64_t up_to) override { return wait_write(AckOutboxOp{up_to, nullptr}); }

  Result<TruncateResult> truncate_after(const ActorKey& key, uint64_t version, bool dry_run) override {
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

  Result<uint64_t> drop_snapshots_after(const ActorKey& key, uint64_t version, bool dry_run) override {
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

 private:
  // Operator repair runs on a connection of its own, in one IMMEDIATE
  // transaction: it is rare, and it leaves the group-commit writer alone
  // (the busy timeout orders the two). A dry run rolls back.
  template <class T, class F>
  Result<T> in_repair_tx(bool dry_run, F&& body) {
    Connection c;
    if (Status s = c.open(opts_.path, opts_.synchronous, false); !s) return s;
    if (Status s = exec(c.db, "BEGIN IMMEDIATE"); !s) return s;
    Result<T> r = body(c);
    if (!r || dry_run) {
      exec(c.db, "ROLLBACK");
      return r;
    }
    if (Status s = exec(c.db, "COMMIT"); !s) return s;
    return r;
  }

  // Runs `sql` with the actor's key as ?1..?3 and `version` as ?4; returns
  // the first row's two integer columns (0, 0 when it returns no row).
  static Result<std::pair<uint64_t, uint64_t>> key_query(Connection& c, const ActorKey& key, uint64_t version,
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

  // A read connection borrowed from the pool for one call.
  class Lease {
   public:
    explicit Lease(SqliteStore& s) : s_(s) {
      std::unique_lock lock(s_.read_mu_);
      s_.read_cv_.wait(lock, [&] { return !s_.readers_.empty(); });
      c_ = std::move(s_.readers_.back());
      s_.readers_.pop_back();
    }
    ~Lease() {
      {
        std::lock_guard lock(s_.read_mu_);
        s_.readers_.push_back(std::move(c_));
      }
      s_.read_cv_.notify_one();
    }
    Connection* operator->() { return c_.get(); }
    Connection& operator*() { return *c_; }

   private:
    SqliteStore& s_;
    std::unique_ptr<Connection> c_;
  };

  Status check_schema() {
    if (Status s = exec(write_.db, kSchema); !s) return s;
    Stmt q;
    if (q.prepare(write_.db, "SELECT value FROM aether_meta WHERE key='schema_version'") !=
        SQLITE_OK) {
      return Status::internal(db_error(write_.db, "read schema version"));
    }
    if (q.step() == SQLITE_ROW) {
      const std::string v = q.col_text(0);
      if (v == "1") return exec(write_.db, kMigrateFrom1);
      if (v != std::to_string(kSchemaVersion)) {
        return Status::invalid("sqlite: " + opts_.path + " has store schema version " + v +
                               ", this host reads version " + std::to_string(kSchemaVersion));
      }
      return Status::ok();
    }
    const std::string ins = "INSERT INTO aether_meta(key,value) VALUES('schema_version','" +
                            std::to_string(kSchemaVersion) + "')";
    return exec(write_.db, ins.c_str());
  }

  static Result<uint64_t> max_version(Connection& c, const ActorKey& key) {
    Stmt& s = c.max_version;
    Resetter r{s};
    s.bind_key(key);
    if (s.step() != SQLITE_ROW) return Status::unavailable(db_error(c.db, "read version"));
    return static_cast<uint64_t>(s.col_int(0));  // NULL reads as 0
  }

  static Result<std::optional<IdempotentCommit>> find_idem(Connection& c, const ActorKey& key,
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

  Result<std::vector<Snapshot>> list_n(const ActorKey& key, int64_t n) {
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

  template <class Op>
  Status wait_write(Op op) {
    std::promise<Status> p;
    auto f = p.get_future();
    op.done = &p;
    {
      std::lock_guard lock(mu_);
      if (stopping_) return Status::unavailable("the store is closing");
      queue_.emplace_back(std::move(op));
    }
    cv_.notify_one();
    return f.get();
  }

  // Runs one append inside the open transaction.
  void run_append(AppendOp& op) {
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

  // The actor's current version when the append may go ahead; else nullopt
  // with `res` answered (a duplicate of an earlier commit, a conflict or an
  // error).
  std::optional<uint64_t> admit_append(const AppendRequest& req, AppendResult& res) {
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

  bool insert_events(const AppendRequest& req, uint64_t cur, AppendResult& res) {
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

  bool insert_idempotency_row(const AppendRequest& req, AppendResult& res) {
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

  bool insert_outbox_row(const AppendRequest& req, AppendResult& res) {
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

  // Without the outbox, a commit goes to the local bus once it is durable.
  void broadcast(const AppendOp& a) {
    if (opts_.broadcast == nullptr || opts_.outbox || !a.result.status || a.result.duplicate) return;
    publish_commit(*opts_.broadcast, *a.req, a.result.first_version,
                   commit_prefix_ + std::to_string(++commit_counter_), opts_.node_id);
  }

  Status run_snapshot(SnapshotOp& op) {
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

  static void step_once(Stmt& s) {
    s.step();
    s.reset();
  }

  void write_loop() {
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

  void run_batch(std::vector<WriteOp>& batch) {
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

  SqliteOptions opts_;
  Connection write_;
  std::unique_ptr<WalCheckpointer> checkpointer_;
  uint64_t commit_counter_ = 0;  // writer thread only
  // node id and start time: commit ids stay unique across restarts.
  const std::string commit_prefix_ = commit_id_prefix(opts_.node_id);
  bool rollback_to_savepoint_ = false;

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<WriteOp> queue_;
  bool stopping_ = false;
  std::thread writer_;
  std::unique_ptr<OutboxRelay> relay_;  // with opts_.outbox and opts_.relay

  std::mutex read_mu_;
  std::condition_variable read_cv_;
  std::vector<std::unique_ptr<Connection>> readers_;
};

}  // namespace

Result<std::unique_ptr<Journal>> open_sqlite_store(const SqliteOptions& options) {
  static const char* const kSync[] = {"off", "normal", "full", "extra"};
  if (std::find(std::begin(kSync), std::end(kSync), options.synchronous) == std::end(kSync)) {
    return Status::invalid("sqlite: synchronous must be off, normal, full or extra, not '" +
                           options.synchronous + "'");
  }
  auto store = std::make_unique<SqliteStore>(options);
  if (Status s = store->init(); !s) return s;
  return std::unique_ptr<Journal>(std::move(store));
}

}  // namespace aether
