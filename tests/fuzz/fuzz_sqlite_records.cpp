// The sqlite store's record decoding (store/sqlite_store.cpp): rows written
// behind the store's back (a damaged or hand-edited file) are read back as
// events, idempotency records and snapshots, or refused as corruption, never
// a crash. Input: a sequence of rows, each a table selector, integer columns
// and length-prefixed text/blob columns (see Reader).
#include <sqlite3.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>

#include "fuzz_input.hpp"
#include "store/store.hpp"

namespace {

struct Reader : aether::fuzz::Input {
  int64_t integer() {
    // Small values mostly, with the extremes reachable.
    switch (byte() % 8) {
      case 0: return INT64_MAX;
      case 1: return INT64_MIN;
      case 2: return -static_cast<int64_t>(byte());
      default: return byte();
    }
  }
  std::string text() { return std::string(bytes(byte() % 48)); }
};

// Binds column `i` from the input: text, blob, integer, real or NULL.
void bind_any(sqlite3_stmt* st, int i, Reader& r) {
  const uint8_t kind = r.byte() % 5;
  if (kind == 0 || kind == 1) {
    const std::string s = r.text();
    if (kind == 0) sqlite3_bind_text(st, i, s.data(), static_cast<int>(s.size()), SQLITE_TRANSIENT);
    else sqlite3_bind_blob(st, i, s.data(), static_cast<int>(s.size()), SQLITE_TRANSIENT);
  } else if (kind == 2) {
    sqlite3_bind_int64(st, i, r.integer());
  } else if (kind == 3) {
    sqlite3_bind_double(st, i, static_cast<double>(r.integer()) / 3);
  } else {
    sqlite3_bind_null(st, i);
  }
}

const char* const kInserts[] = {
    "INSERT INTO events(ns,type,id,version,event_type,payload,ts,idem_key,idem_digest,commit_first) "
    "VALUES('ns','T','a',?1,?2,?3,?4,?5,?6,?7)",
    "INSERT INTO idempotency(ns,type,id,key,first_version,last_version,digest) VALUES('ns','T','a',?1,?2,?3,?4)",
    "INSERT INTO snapshots(ns,type,id,version,plugin,schema_version,bytes,ts,host_record) "
    "VALUES('ns','T','a',?1,?2,?3,?4,?5,?6)",
};
const int kColumns[] = {7, 4, 6};

struct Db {
  std::string path;
  std::unique_ptr<aether::Journal> store;
  sqlite3* raw = nullptr;
  sqlite3_stmt* inserts[3] = {};

  Db() {
    path = "/tmp/aether-fuzz-sqlite-" + std::to_string(getpid()) + ".db";
    std::remove(path.c_str());
    aether::SqliteOptions o;
    o.path = path;
    o.synchronous = "off";
    auto opened = aether::open_sqlite_store(o);
    if (!opened) std::abort();
    store = std::move(opened).value();
    if (sqlite3_open(path.c_str(), &raw) != SQLITE_OK) std::abort();
    sqlite3_exec(raw, "PRAGMA synchronous=OFF", nullptr, nullptr, nullptr);
    for (int i = 0; i < 3; ++i) {
      if (sqlite3_prepare_v2(raw, kInserts[i], -1, &inserts[i], nullptr) != SQLITE_OK) std::abort();
    }
  }
};

void write_rows(Db& db, Reader& r) {
  sqlite3_exec(db.raw, "BEGIN; DELETE FROM events; DELETE FROM idempotency; DELETE FROM snapshots",
               nullptr, nullptr, nullptr);
  for (int row = 0; row < 32 && r.n > 0; ++row) {
    const int table = r.byte() % 3;
    sqlite3_stmt* st = db.inserts[table];
    for (int c = 1; c <= kColumns[table]; ++c) bind_any(st, c, r);
    sqlite3_step(st);  // constraint failures are fine: the row is not written
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
  }
  sqlite3_exec(db.raw, "COMMIT", nullptr, nullptr, nullptr);
}

// Takes whatever a load hands it; restores from a snapshot when `restore`.
struct Sink final : aether::LoadSink {
  bool restore = false;
  aether::Status begin(bool) override { return aether::Status::ok(); }
  bool snapshot(const aether::Snapshot&) override { return restore; }
  aether::Status event(const aether::StoredEvent&) override { return aether::Status::ok(); }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Db db;
  Reader r{{data, size}};
  const uint64_t from = r.integer();
  const std::string key = r.text();
  write_rows(db, r);
  const aether::ActorKey actor{"ns", "T", "a"};
  (void)db.store->read_all(actor);
  (void)db.store->read_all(actor, from, 3);
  (void)db.store->latest_version(actor);
  (void)db.store->find_idempotent(actor, key);
  (void)db.store->latest_snapshot(actor);
  (void)db.store->list_snapshots(actor);
  Sink sink;
  sink.restore = (from & 1) != 0;
  (void)db.store->load(actor, 0, sink);
  return 0;
}
