// Plugin files on disk: which files a host may load, and the private copies
// it loads them from.
//
// A plugin is never mapped from the file a build or an operator writes:
// its bytes are read (read(2), never mmap(2)) into a new file in a directory
// only this process uses, that copy must be a complete ELF image, and only
// then is it handed to the dynamic loader. Rewriting or truncating the
// source, even while it is being copied, can then never touch mapped pages.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "core/status.hpp"

namespace aether {

// The largest plugin file a host copies (1 GiB).
inline constexpr uint64_t kMaxPluginFileBytes = uint64_t{1} << 30;

// Which plugin files may be loaded: a file inside one of `dirs`, after
// symlinks and ".." are resolved (no link or ".." leads out of them), or one
// of the exact paths in `files` (those the configuration names). "/" in
// `dirs` allows every file. Nothing else is ever opened.
struct PluginFilePolicy {
  std::vector<std::filesystem::path> dirs;
  std::vector<std::filesystem::path> files;
};

// OK iff `policy` allows `file`; else kInvalidArgument naming the file, where
// it leads and the allowed directories. Opens nothing.
Status check_plugin_path(const std::string& file, const PluginFilePolicy& policy);

// A directory of private copies of plugin images, used by this process only.
// Not thread-safe: one owner (the PluginManager) serialises calls.
class PluginCopies {
 public:
  // `dir` given: a directory that belongs to this host alone (in its locked
  // data directory); created, and emptied of what a previous run left.
  // `dir` empty: a new directory TMPDIR/aether-plugins-<pid>-XXXXXX, made
  // after removing those of processes that are gone.
  static Result<std::unique_ptr<PluginCopies>> create(const std::filesystem::path& dir);

  ~PluginCopies();  // removes the directory and every copy in it
  PluginCopies(const PluginCopies&) = delete;
  PluginCopies& operator=(const PluginCopies&) = delete;

  // Copies `source` (when `policy` allows it) to a new file of the directory
  // named after `stem`, and checks that the copy is a complete ELF image.
  // Errors name `source`: kInvalidArgument (refused path, not a regular
  // file, incomplete or foreign ELF image, too large), kNotFound, or
  // kUnavailable (the copy could not be written).
  Result<std::filesystem::path> copy(const std::string& source, const PluginFilePolicy& policy,
                                     const std::string& stem);

  // Deletes a copy (a mapping of it stays valid until it is unmapped).
  void remove(const std::filesystem::path& copy);

  const std::filesystem::path& dir() const { return dir_; }

 private:
  explicit PluginCopies(std::filesystem::path dir) : dir_(std::move(dir)) {}

  std::filesystem::path dir_;
  uint64_t counter_ = 0;
};

// Removes the per-process copy directories ("aether-plugins-<pid>" and
// "aether-plugins-<pid>-*") directly in `root` whose process is gone and that
// belong to this user; symlinks and other users' directories are left alone.
// Returns how many were removed.
size_t remove_stale_copy_dirs(const std::filesystem::path& root);

}  // namespace aether
