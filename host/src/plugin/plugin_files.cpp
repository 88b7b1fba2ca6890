#include "plugin/plugin_files.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "core/elf_image.hpp"
#include "core/log.hpp"

namespace aether {

namespace fs = std::filesystem;

namespace {

constexpr std::string_view kTempPrefix = "aether-plugins-";

fs::path absolute_normal(const fs::path& p) {
  std::error_code ec;
  const fs::path a = fs::absolute(p, ec);
  return (ec ? p : a).lexically_normal();
}

bool is_within(const fs::path& file, const fs::path& dir) {
  auto [d, f] = std::mismatch(dir.begin(), dir.end(), file.begin(), file.end());
  return d == dir.end() && f != file.end();
}

bool named_in_config(const std::string& file, const PluginFilePolicy& policy) {
  const fs::path given = absolute_normal(file);
  return std::any_of(policy.files.begin(), policy.files.end(),
                     [&](const fs::path& f) { return absolute_normal(f) == given; });
}

// `real`: a path with every symlink and ".." resolved.
bool inside_allowed_dir(const fs::path& real, const PluginFilePolicy& policy) {
  return std::any_of(policy.dirs.begin(), policy.dirs.end(), [&](const fs::path& d) {
    std::error_code ec;
    const fs::path dir = fs::canonical(d, ec);
    return !ec && is_within(real, dir);
  });
}

Status refusal(const std::string& file, const fs::path& real, const PluginFilePolicy& policy) {
  std::string dirs;
  for (const auto& d : policy.dirs) dirs += (dirs.empty() ? "" : ", ") + d.string();
  std::string m = "plugin file " + file;
  if (!real.empty() && real != absolute_normal(file)) m += " (which leads to " + real.string() + ")";
  return Status::invalid(m + " is outside the directories plugins may be loaded from (" +
                         (dirs.empty() ? "none" : dirs) +
                         "); the host does not open it. List its directory in "
                         "plugins.allowed_dirs to allow it");
}

// The path an open descriptor refers to, as the kernel resolved it.
fs::path path_of(int fd) {
  std::error_code ec;
  fs::path p = fs::read_symlink("/proc/self/fd/" + std::to_string(fd), ec);
  return ec ? fs::path() : p;
}

// Opens `source` for reading after the policy and file-type checks; the
// opened file's own path is checked again (a directory swapped for a symlink
// in between does not get through).
Result<int> open_source(const std::string& source, const PluginFilePolicy& policy) {
  if (Status s = check_plugin_path(source, policy); !s) return s;
  if (std::string why = check_regular_file(source); !why.empty()) {
    if (why == "no such file") return Status::not_found("plugin " + source + ": no such file");
    return Status::invalid("plugin " + source + ": " + why);
  }
  const int fd = open(source.c_str(), O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
  if (fd < 0) return Status::invalid("plugin " + source + ": cannot open: " + std::strerror(errno));
  if (!named_in_config(source, policy)) {
    const fs::path real = path_of(fd);
    if (!inside_allowed_dir(real, policy)) {
      close(fd);
      return refusal(source, real, policy);
    }
  }
  struct stat st {};
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    return Status::invalid("plugin " + source + ": not a regular file");
  }
  return fd;
}

bool write_all(int fd, const char* p, size_t n) {
  while (n > 0) {
    const ssize_t w = write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    p += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

// Copies every byte of `in` to `out`, at most kMaxPluginFileBytes.
Status copy_bytes(int in, int out, const std::string& source, const fs::path& dst) {
  std::vector<char> buf(1 << 16);
  uint64_t total = 0;
  for (;;) {
    const ssize_t n = read(in, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Status::invalid("plugin " + source + ": cannot read: " + std::strerror(errno));
    if (n == 0) return Status::ok();
    total += static_cast<uint64_t>(n);
    if (total > kMaxPluginFileBytes) {
      return Status::invalid("plugin " + source + ": larger than " +
                             std::to_string(kMaxPluginFileBytes >> 20) + " MiB");
    }
    if (!write_all(out, buf.data(), static_cast<size_t>(n))) {
      return Status::unavailable("plugin " + source + ": cannot write its private copy " +
                                 dst.string() + ": " + std::strerror(errno));
    }
  }
}

// The pid in "aether-plugins-<pid>" or "aether-plugins-<pid>-...", or 0.
pid_t pid_in_name(const std::string& name) {
  if (name.compare(0, kTempPrefix.size(), kTempPrefix) != 0) return 0;
  const std::string rest = name.substr(kTempPrefix.size());
  const size_t digits = std::min(rest.find('-'), rest.size());
  if (digits == 0 || digits > 9) return 0;
  if (!std::all_of(rest.begin(), rest.begin() + static_cast<ptrdiff_t>(digits),
                   [](char c) { return c >= '0' && c <= '9'; })) {
    return 0;
  }
  return static_cast<pid_t>(std::stol(rest.substr(0, digits)));
}

}  // namespace

Status check_plugin_path(const std::string& file, const PluginFilePolicy& policy) {
  if (named_in_config(file, policy)) return Status::ok();
  std::error_code ec;
  const fs::path real = fs::weakly_canonical(absolute_normal(file), ec);
  if (!ec && inside_allowed_dir(real, policy)) return Status::ok();
  return refusal(file, ec ? fs::path() : real, policy);
}

Result<std::unique_ptr<PluginCopies>> PluginCopies::create(const fs::path& dir) {
  std::error_code ec;
  if (dir.empty()) {
    fs::path root = fs::temp_directory_path(ec);
    if (ec) root = "/tmp";
    if (const size_t n = remove_stale_copy_dirs(root); n > 0) {
      log::info("removed " + std::to_string(n) + " plugin copy directories of stopped hosts from " +
                root.string());
    }
    std::string tmpl =
        (root / (std::string(kTempPrefix) + std::to_string(getpid()) + "-XXXXXX")).string();
    if (mkdtemp(tmpl.data()) == nullptr) {
      return Status::unavailable("cannot create a directory for plugin copies in " +
                                 root.string() + ": " + std::strerror(errno));
    }
    return std::unique_ptr<PluginCopies>(new PluginCopies(tmpl));
  }
  fs::create_directories(dir, ec);
  if (ec || !fs::is_directory(dir, ec)) {
    return Status::unavailable("cannot create the plugin copy directory " + dir.string() + ": " +
                               (ec ? ec.message() : "not a directory"));
  }
  fs::permissions(dir, fs::perms::owner_all, ec);
  size_t stale = 0;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    std::error_code rm;
    stale += fs::remove_all(e.path(), rm) > 0 ? 1 : 0;
  }
  if (stale > 0) log::info("removed " + std::to_string(stale) + " stale plugin copies from " + dir.string());
  return std::unique_ptr<PluginCopies>(new PluginCopies(dir));
}

PluginCopies::~PluginCopies() {
  // Images may still be mapped (the registry can outlive the copies);
  // unlinking a mapped file is fine on Linux.
  std::error_code ec;
  fs::remove_all(dir_, ec);
}

Result<fs::path> PluginCopies::copy(const std::string& source, const PluginFilePolicy& policy,
                                    const std::string& stem) {
  auto in = open_source(source, policy);
  if (!in) return in.status();
  const fs::path dst = dir_ / (stem + "." + std::to_string(++counter_) + ".so");
  const int out = open(dst.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0700);
  if (out < 0) {
    close(*in);
    return Status::unavailable("plugin " + source + ": cannot create its private copy " +
                               dst.string() + ": " + std::strerror(errno));
  }
  Status s = copy_bytes(*in, out, source, dst);
  close(*in);
  if (s) {
    // The copy is what the loader maps: it must be complete, whatever the
    // source did while it was read.
    if (std::string why = check_elf_fd(out); !why.empty()) s = Status::invalid("plugin " + source + ": " + why);
  }
  close(out);
  if (!s) {
    remove(dst);
    return s;
  }
  return dst;
}

void PluginCopies::remove(const fs::path& copy) {
  std::error_code ec;
  fs::remove(copy, ec);
}

size_t remove_stale_copy_dirs(const fs::path& root) {
  std::vector<fs::path> stale;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(root, ec)) {
    const pid_t pid = pid_in_name(e.path().filename().string());
    if (pid <= 0 || pid == getpid()) continue;
    struct stat st {};
    if (lstat(e.path().c_str(), &st) != 0 || !S_ISDIR(st.st_mode) || st.st_uid != geteuid()) continue;
    if (kill(pid, 0) == 0 || errno != ESRCH) continue;  // alive (or not ours to judge)
    stale.push_back(e.path());
  }
  size_t removed = 0;
  for (const auto& p : stale) {
    std::error_code rm;
    if (fs::remove_all(p, rm) > 0 && !rm) ++removed;
  }
  return removed;
}

}  // namespace aether
