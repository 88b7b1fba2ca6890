#include "core/dir_lock.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

namespace aether {

namespace {

// The pid written by the holder, or "" if the file holds none.
std::string read_holder(int fd) {
  char buf[32] = {};
  const ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
  if (n <= 0) return {};
  std::string pid(buf, static_cast<size_t>(n));
  while (!pid.empty() && (pid.back() == '\n' || pid.back() == ' ')) pid.pop_back();
  return pid.find_first_not_of("0123456789") == std::string::npos ? pid : std::string();
}

Status write_pid(int fd) {
  const std::string pid = std::to_string(getpid()) + "\n";
  if (ftruncate(fd, 0) != 0 || pwrite(fd, pid.data(), pid.size(), 0) != static_cast<ssize_t>(pid.size())) {
    return Status::internal(std::strerror(errno));
  }
  return Status::ok();
}

}  // namespace

Result<std::unique_ptr<DirLock>> DirLock::acquire(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return Status::unavailable("data directory " + dir + ": cannot create it (" + ec.message() + ")");
  const std::string path = (std::filesystem::path(dir) / kFileName).string();
  const int fd = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
  if (fd < 0) return Status::unavailable("data directory " + dir + ": cannot open " + path + " (" + std::strerror(errno) + ")");
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    const std::string holder = read_holder(fd);
    close(fd);
    if (err != EWOULDBLOCK) {
      return Status::unavailable("data directory " + dir + ": cannot lock " + path + " (" + std::strerror(err) + ")");
    }
    return Status::unavailable("data directory " + dir + " is in use by another aether-host (pid " +
                               (holder.empty() ? std::string("unknown") : holder) + ", lock file " + path +
                               "); one host per data directory");
  }
  if (Status s = write_pid(fd); !s) {
    close(fd);
    return Status::unavailable("data directory " + dir + ": cannot write " + path + " (" + s.message() + ")");
  }
  return std::unique_ptr<DirLock>(new DirLock(path, fd));
}

DirLock::~DirLock() {
  // Empty the file first: the next reader of a stale pid would be misled.
  if (ftruncate(fd_, 0) != 0) {
    // Nothing to do: closing releases the lock all the same.
  }
  close(fd_);
}

}  // namespace aether
