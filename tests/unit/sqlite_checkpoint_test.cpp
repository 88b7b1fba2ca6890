// The sqlite store's WAL checkpoints: they run on the checkpoint thread, not
// inside the writer's commits, and the WAL stays within its bound under
// sustained writes (the writer checkpoints between batches only past it).
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <mutex>
#include <thread>
#include <vector>

#include "store/sqlite_checkpointer.hpp"
#include "store/store.hpp"
#include "support/temp_dir.hpp"
#include "support/wait.hpp"

namespace aether {
namespace {

constexpr int kStartPages = 16;
constexpr int kMaxPages = 128;

struct Seen {
  std::mutex mu;
  std::vector<CheckpointInfo> all;
  size_t count(bool background) {
    std::lock_guard lock(mu);
    size_t n = 0;
    for (const auto& c : all) n += c.background == background ? 1 : 0;
    return n;
  }
};

// `rounds` rounds of one append of a 1 KiB event to each of `actors` actors,
// queued together (one group commit or a few) and flushed.
void write_rounds(Journal& store, int rounds, int actors) {
  const std::string payload = "{\"pad\":\"" + std::string(1024, 'x') + "\"}";
  std::vector<AppendRequest> reqs(actors);
  for (int round = 0; round < rounds; ++round) {
    std::atomic<int> failed{0};
    for (int i = 0; i < actors; ++i) {
      reqs[i].key = {"default", "Counter", "c" + std::to_string(i)};
      reqs[i].expected_version = static_cast<uint64_t>(round);
      reqs[i].events = {{"E", payload}};
      store.append(reqs[i], [&](AppendResult r) { failed += r.status.is_ok() ? 0 : 1; });
    }
    ASSERT_TRUE(store.flush().is_ok());
    ASSERT_EQ(failed.load(), 0);
  }
}

TEST(SqliteCheckpoints, RunOffTheCommitPathAndBoundTheWal) {
  test::TempDir dir;
  Seen seen;
  SqliteOptions o;
  o.path = dir.file("aether.db");
  o.wal_checkpoint_pages = kStartPages;
  o.wal_max_pages = kMaxPages;
  o.on_checkpoint = [&](const CheckpointInfo& c) {
    std::lock_guard lock(seen.mu);
    seen.all.push_back(c);
  };
  auto store = std::move(open_sqlite_store(o)).value();
  write_rounds(*store, 60, 64);  // ~4 MB of events: about 1,000 WAL pages
  // The checkpoint thread has run (bounded wait: it runs on its own).
  test::eventually([&] { return seen.count(true) > 0; });
  EXPECT_GT(seen.count(true), 0u) << "no background checkpoint";
  {
    std::lock_guard lock(seen.mu);
    for (const auto& c : seen.all) {
      if (!c.background) {
        EXPECT_GE(c.wal_frames, kMaxPages) << "the writer checkpointed a WAL within its bound";
      }
    }
  }
  // The WAL file never grows much past its bound: the bound plus what one
  // round (64 events of 1 KiB and their index pages) appends.
  const auto wal_bytes = std::filesystem::file_size(o.path + "-wal");
  EXPECT_LE(wal_bytes, static_cast<uintmax_t>(kMaxPages + 256) * (4096 + 24) + 32) << wal_bytes;
  // Everything written is there.
  auto v = store->latest_version({"default", "Counter", "c63"});
  ASSERT_TRUE(v.is_ok());
  EXPECT_EQ(*v, 60u);
}

// The same store with the default bounds: the automatic checkpoint of
// SQLite is off on the write connection (the WAL hook replaced it), so a
// WAL below the start bound is never checkpointed by anyone.
TEST(SqliteCheckpoints, NoCheckpointBelowTheStartBound) {
  test::TempDir dir;
  Seen seen;
  SqliteOptions o;
  o.path = dir.file("aether.db");
  o.on_checkpoint = [&](const CheckpointInfo& c) {
    std::lock_guard lock(seen.mu);
    seen.all.push_back(c);
  };
  auto store = std::move(open_sqlite_store(o)).value();
  write_rounds(*store, 2, 16);
  store.reset();  // joins the writer and the checkpoint thread
  EXPECT_TRUE(seen.all.empty());
}

}  // namespace
}  // namespace aether
