// SqliteStore, the SQLite journal (open_sqlite_store in store/store.hpp):
// its schema, statements, connections and declaration. Private to
// host/src/store: included only by sqlite_*.cpp.
#pragma once

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

namespace aether::store_detail {

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

inline std::string db_error(sqlite3* db, const std::string& what) {
  return "sqlite: " + what + ": " + sqlite3_errmsg(db);
}

inline Status exec(sqlite3* db, const char* sql) {
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

  Status init();

  void append(const AppendRequest& req, AppendCallback done) override;

  Status read(const ActorKey& key, uint64_t from_version, uint64_t limit,
              const EventVisitor& visit) override;

  Result<uint64_t> latest_version(const ActorKey& key) override;

  Result<std::optional<IdempotentCommit>> find_idempotent(const ActorKey& key,
                                                          const std::string& k) override;

  Status forget_idempotent(const ActorKey& key, const std::string& k) override;

  Status flush() override;

  Status save_snapshot(const ActorKey& key, const Snapshot& snap, uint32_t keep) override;

  Result<std::optional<Snapshot>> latest_snapshot(const ActorKey& key) override;

  Result<std::vector<Snapshot>> list_snapshots(const ActorKey& key) override { return list_n(key, INT64_MAX); }

  Result<ActorSample> sample_actors(const std::string& ns, const std::string& type, uint64_t n) override;

  Result<std::vector<OutboxEntry>> outbox_fetch(size_t limit) override;

  Status outbox_ack(uint64_t up_to) override { return wait_write(AckOutboxOp{up_to, nullptr}); }

  Result<TruncateResult> truncate_after(const ActorKey& key, uint64_t version, bool dry_run) override;

  Result<uint64_t> drop_snapshots_after(const ActorKey& key, uint64_t version, bool dry_run) override;

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
                                                         const char* sql);

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

  Status check_schema();

  static Result<uint64_t> max_version(Connection& c, const ActorKey& key);

  static Result<std::optional<IdempotentCommit>> find_idem(Connection& c, const ActorKey& key,
                                                           const std::string& k);

  Result<std::vector<Snapshot>> list_n(const ActorKey& key, int64_t n);

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
  void run_append(AppendOp& op);

  // The actor's current version when the append may go ahead; else nullopt
  // with `res` answered (a duplicate of an earlier commit, a conflict or an
  // error).
  std::optional<uint64_t> admit_append(const AppendRequest& req, AppendResult& res);

  bool insert_events(const AppendRequest& req, uint64_t cur, AppendResult& res);

  bool insert_idempotency_row(const AppendRequest& req, AppendResult& res);

  bool insert_outbox_row(const AppendRequest& req, AppendResult& res);

  // Without the outbox, a commit goes to the local bus once it is durable.
  void broadcast(const AppendOp& a);

  Status run_snapshot(SnapshotOp& op);

  static void step_once(Stmt& s);

  void write_loop();

  void run_batch(std::vector<WriteOp>& batch);

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

}  // namespace aether::store_detail
