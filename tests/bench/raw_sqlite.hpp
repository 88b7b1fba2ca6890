// Raw SQLite writing the rows the runtime writes (Counter's Incremented
// events of actors a0..a<actors-1>) into aether's schema, at the same
// durability (WAL, synchronous=FULL): the baseline of the sqlite benchmarks.
#pragma once

#include <sqlite3.h>

#include <string>

namespace aether::bench {

class RawEventWriter {
 public:
  // `path`: a database that already has aether's schema.
  explicit RawEventWriter(const std::string& path) {
    sqlite3_open(path.c_str(), &db_);
    sqlite3_exec(db_, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL", nullptr, nullptr, nullptr);
    sqlite3_prepare_v2(db_,
                       "INSERT INTO events(ns,type,id,version,event_type,payload,ts) "
                       "VALUES('default','Counter',?1,?2,'Incremented','{\"by\":1}',?3)",
                       -1, &ins_, nullptr);
  }
  ~RawEventWriter() {
    sqlite3_finalize(ins_);
    sqlite3_close(db_);
  }
  RawEventWriter(const RawEventWriter&) = delete;
  RawEventWriter& operator=(const RawEventWriter&) = delete;

  void begin() { sqlite3_exec(db_, "BEGIN", nullptr, nullptr, nullptr); }
  void commit() { sqlite3_exec(db_, "COMMIT", nullptr, nullptr, nullptr); }
  // Row `i`: actor a<i % actors>, its next version. False (see error()) when
  // the insert failed.
  bool insert(int i, int actors) {
    const std::string id = "a" + std::to_string(i % actors);
    sqlite3_bind_text(ins_, 1, id.c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(ins_, 2, i / actors + 1);
    sqlite3_bind_int64(ins_, 3, 1700000000000 + i);
    const bool ok = sqlite3_step(ins_) == SQLITE_DONE;
    sqlite3_reset(ins_);
    return ok;
  }
  const char* error() const { return sqlite3_errmsg(db_); }

 private:
  sqlite3* db_ = nullptr;
  sqlite3_stmt* ins_ = nullptr;
};

}  // namespace aether::bench
