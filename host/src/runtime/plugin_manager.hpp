// Plugin files of a running host: loading through private copies, reloads
// (hot swap), rollback, and watching the plugin files for changes.
//
// Every image is loaded from a private copy in a directory of this process,
// so rebuilding a plugin in place never changes a loaded image, a reload
// never gets the old image back from the dynamic loader's cache, and a
// rollback can load the previous version after its file was overwritten.
#pragma once

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/status.hpp"
#include "runtime/runtime.hpp"

namespace aether {

class Plugin;
class PluginRegistry;

struct ReloadRequest {
  std::string plugin;          // the loaded plugin's name
  std::string file;            // new image; empty = the file it was loaded from
  bool to_previous = false;    // roll back to the version loaded before the current one
};

class PluginManager {
 public:
  // `copy_dir`: where private copies go; created, and removed with its
  // contents when the manager goes. Empty: a fresh directory under TMPDIR.
  PluginManager(PluginRegistry& registry, std::filesystem::path copy_dir = {});
  ~PluginManager();
  PluginManager(const PluginManager&) = delete;
  PluginManager& operator=(const PluginManager&) = delete;

  // Loads a plugin at start-up (through a private copy).
  Result<std::shared_ptr<const Plugin>> load(const std::string& file);

  // Hot swaps through `runtime` (REQUIRES: attached before any reload).
  void attach(Runtime* runtime, SwapOptions defaults);
  Result<SwapReport> reload(const ReloadRequest& request);

  // Polls the files plugins were loaded from every `interval`; a file whose
  // size and modification time changed and then stayed the same for one more
  // interval (the build finished writing it) is reloaded. Errors are logged
  // and the old version keeps serving.
  void start_watching(std::chrono::milliseconds interval);
  void stop_watching();

  const std::filesystem::path& copy_dir() const { return copy_dir_; }

 private:
  struct History {
    std::string source;                // the file it is loaded from
    std::vector<std::string> copies;   // private copies, oldest first; back() is current
    std::filesystem::file_time_type mtime{};
    uintmax_t size = 0;
    bool changed = false;              // seen changing at the last poll
    std::filesystem::file_time_type pending_mtime{};
    uintmax_t pending_size = 0;
  };

  Result<std::string> private_copy(const std::string& file, const std::string& stem);
  void note_file(History& h);
  void watch_loop(std::chrono::milliseconds interval);

  PluginRegistry& registry_;
  Runtime* runtime_ = nullptr;
  SwapOptions defaults_;
  std::filesystem::path copy_dir_;
  std::mutex mu_;
  std::vector<std::pair<std::string, History>> histories_;  // by plugin name
  uint64_t counter_ = 0;

  std::mutex watch_mu_;
  std::condition_variable watch_cv_;
  bool watching_ = false;
  std::thread watcher_;
};

}  // namespace aether
