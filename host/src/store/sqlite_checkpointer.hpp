// WAL checkpoints of the sqlite store, off the commit path.
//
// SQLite's automatic checkpoint runs inside the COMMIT that crosses
// wal_autocheckpoint pages: the writer copies the WAL into the database and,
// with synchronous=full, fsyncs the database file before it can acknowledge
// the commands of that batch. The store turns it off on its write connection
// and uses this instead: the writer reports the WAL's size after each commit
// (a WAL hook, no I/O), and a thread with its own connection runs
// wal_checkpoint(PASSIVE), which never blocks the writer. The WAL is bounded:
// a PASSIVE checkpoint cannot always reach frames the writer appends while
// it runs, so when the WAL grows past `max_pages` the writer checkpoints the
// rest itself, between two batches (little is left by then), and the next
// transaction restarts the WAL; journal_size_limit then truncates the file.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include "core/status.hpp"

struct sqlite3;

namespace aether {

// What a checkpoint did (SqliteOptions::on_checkpoint).
struct CheckpointInfo {
  bool background = true;  // false: run by the writer (the WAL was over its bound)
  int wal_frames = 0;      // frames in the WAL when it ran
  int checkpointed = 0;    // of which copied into the database
};

class WalCheckpointer {
 public:
  // `start_pages`: WAL size (pages) from which the background checkpoint
  // runs; `max_pages`: past it the writer checkpoints between batches.
  WalCheckpointer(std::string path, int start_pages, int max_pages,
                  std::function<void(const CheckpointInfo&)> observer);
  ~WalCheckpointer();

  // Opens the checkpoint connection, configures the write connection
  // `writer` (no automatic checkpoint, the WAL hook, journal_size_limit) and
  // starts the thread.
  Status start(sqlite3* writer);
  // Writer thread, between batches: checkpoints on `writer` when the WAL is
  // over its bound.
  void bound_wal(sqlite3* writer);
  // Stops the thread (idempotent).
  void stop();

 private:
  static int wal_hook(void* self, sqlite3* db, const char* name, int frames);
  void loop();
  void report(bool background, int frames, int checkpointed);

  const std::string path_;
  const int start_pages_;
  const int max_pages_;
  std::function<void(const CheckpointInfo&)> observer_;
  sqlite3* db_ = nullptr;  // the checkpoint thread's connection
  int last_frames_ = 0;    // writer thread only
  std::mutex mu_;
  std::condition_variable cv_;
  bool wanted_ = false;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace aether
