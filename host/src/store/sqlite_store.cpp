// The SQLite backend.
//
// One writer thread owns the write connection and turns whatever appends are
// waiting into one transaction (group commit): while a commit is being made
// durable, the next batch gathers. Inside the transaction each append checks
// its actor's version exactly (SELECT MAX(version) sees the batch's own
// earlier writes), so grouping never weakens the check. The schema's primary
// key (ns, type, id, version) makes a second event at a version impossible
// whatever a buggy writer does. Readers use their own connections (WAL).
//
// SqliteStore is declared in store/sqlite_journal.hpp (with its schema,
// statements and connections) and defined by concern: this file (opening,
// schema checks, flush, the outbox), sqlite_reads.cpp (reads, snapshots,
// repair) and sqlite_writer.cpp (the writer thread).
#include "store/sqlite_journal.hpp"

namespace aether::store_detail {

Status SqliteStore::init() {
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
  if (opts_.outbox && opts_.relay != nullptr) relay_ = std::make_unique<OutboxRelay>(*opts_.relay, *this, opts_.relay_echo);
  writer_ = std::thread([this] { write_loop(); });
  return Status::ok();
}

Status SqliteStore::flush() {
  Status s = wait_write(FlushOp{nullptr});
  if (s && relay_ && !relay_->drain(2000)) {
    log::warn("the outbox still holds commits NATS has not taken; they are broadcast at the next start");
  }
  return s;
}

Result<ActorSample> SqliteStore::sample_actors(const std::string& ns, const std::string& type, uint64_t n) {
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

Result<std::vector<OutboxEntry>> SqliteStore::outbox_fetch(size_t limit) {
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

Status SqliteStore::check_schema() {
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

}  // namespace aether::store_detail

namespace aether {

Result<std::unique_ptr<Journal>> open_sqlite_store(const SqliteOptions& options) {
  static const char* const kSync[] = {"off", "normal", "full", "extra"};
  if (std::find(std::begin(kSync), std::end(kSync), options.synchronous) == std::end(kSync)) {
    return Status::invalid("sqlite: synchronous must be off, normal, full or extra, not '" +
                           options.synchronous + "'");
  }
  auto store = std::make_unique<store_detail::SqliteStore>(options);
  if (Status s = store->init(); !s) return s;
  return std::unique_ptr<Journal>(std::move(store));
}

}  // namespace aether
