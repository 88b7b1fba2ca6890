// The data directory lock: one host per data directory.
//
// A host takes an exclusive flock on <dir>/aether.lock at start and holds it
// for its whole life; the file holds the holder's pid, for the error a second
// host gets. flock locks belong to the open file: the kernel releases them
// when the holder exits in any way (kill -9 included), so a lock is never
// stale. The file itself stays; it is not the lock.
#pragma once

#include <memory>
#include <string>

#include "core/status.hpp"

namespace aether {

class DirLock {
 public:
  // Creates `dir` if missing and locks <dir>/aether.lock. Fails (kUnavailable)
  // naming the directory and the holder's pid when another process holds it,
  // or naming the file and the reason when it cannot be created or locked.
  static Result<std::unique_ptr<DirLock>> acquire(const std::string& dir);
  ~DirLock();  // releases the lock

  DirLock(const DirLock&) = delete;
  DirLock& operator=(const DirLock&) = delete;

  const std::string& path() const { return path_; }

  static constexpr const char* kFileName = "aether.lock";

 private:
  DirLock(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}
  std::string path_;
  int fd_;
};

}  // namespace aether
