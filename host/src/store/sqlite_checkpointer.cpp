#include "store/sqlite_checkpointer.hpp"

#include <sqlite3.h>

#include "core/log.hpp"

namespace aether {

WalCheckpointer::WalCheckpointer(std::string path, int start_pages, int max_pages,
                                 std::function<void(const CheckpointInfo&)> observer)
    : path_(std::move(path)),
      start_pages_(start_pages < 1 ? 1 : start_pages),
      max_pages_(max_pages < start_pages_ ? start_pages_ : max_pages),
      observer_(std::move(observer)) {}

WalCheckpointer::~WalCheckpointer() {
  stop();
  sqlite3_close_v2(db_);
}

Status WalCheckpointer::start(sqlite3* writer) {
  if (sqlite3_open_v2(path_.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, nullptr) != SQLITE_OK) {
    return Status::unavailable("sqlite: cannot open " + path_ + " for checkpoints: " + sqlite3_errmsg(db_));
  }
  // The hook replaces the automatic checkpoint on the write connection.
  sqlite3_wal_hook(writer, &WalCheckpointer::wal_hook, this);
  // After a restart the WAL file is truncated to (about) its bound.
  const std::string limit = "PRAGMA journal_size_limit=" + std::to_string(int64_t{max_pages_} * 4096);
  sqlite3_exec(writer, limit.c_str(), nullptr, nullptr, nullptr);
  thread_ = std::thread([this] { loop(); });
  return Status::ok();
}

int WalCheckpointer::wal_hook(void* self, sqlite3*, const char*, int frames) {
  auto* c = static_cast<WalCheckpointer*>(self);
  c->last_frames_ = frames;
  if (frames >= c->start_pages_) {
    {
      std::lock_guard lock(c->mu_);
      c->wanted_ = true;
    }
    c->cv_.notify_one();
  }
  return SQLITE_OK;
}

void WalCheckpointer::bound_wal(sqlite3* writer) {
  if (last_frames_ < max_pages_) return;
  int frames = 0, done = 0;
  sqlite3_wal_checkpoint_v2(writer, nullptr, SQLITE_CHECKPOINT_PASSIVE, &frames, &done);
  last_frames_ = 0;
  report(false, frames, done);
}

void WalCheckpointer::loop() {
  for (;;) {
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return wanted_ || stopping_; });
      if (stopping_) return;
      wanted_ = false;
    }
    int frames = 0, done = 0;
    const int rc = sqlite3_wal_checkpoint_v2(db_, nullptr, SQLITE_CHECKPOINT_PASSIVE, &frames, &done);
    if (rc != SQLITE_OK && rc != SQLITE_BUSY) {
      log::warn(std::string("sqlite store: background checkpoint failed: ") + sqlite3_errmsg(db_));
      continue;
    }
    report(true, frames, done);
  }
}

void WalCheckpointer::report(bool background, int frames, int checkpointed) {
  if (observer_) observer_(CheckpointInfo{background, frames, checkpointed});
}

void WalCheckpointer::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_one();
  if (thread_.joinable()) thread_.join();
}

}  // namespace aether
