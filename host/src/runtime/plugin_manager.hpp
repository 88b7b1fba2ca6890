// Plugin files of a running host: loading through private copies, reloads
// (hot swap), rollback, and watching the plugin files for changes.
//
// Every image is loaded from a private copy (plugin/plugin_files.hpp), so
// rebuilding a plugin in place never changes a loaded image, a reload never
// gets the old image back from the dynamic loader's cache, and a rollback can
// load the previous version after its file was overwritten. Per plugin at
// most two copies exist: the current version's (mapped) and the previous
// one's (kept for a rollback); older ones are deleted at each swap.
//
// Only allowed files are ever opened: those the configuration names (load())
// and files inside the allowed directories (symlinks and ".." resolved).
// Every reload, from the API or the watcher, goes through that check before
// the file is read, so a refused file's code never runs.
#pragma once

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "core/status.hpp"
#include "runtime/runtime.hpp"
#include "runtime/shadow_check.hpp"

namespace aether {

class Journal;
class Plugin;
class PluginRegistry;
class PluginCopies;

struct ReloadRequest {
  std::string plugin;          // the loaded plugin's name
  std::string file;            // new image; empty = the current version's own file
  bool to_previous = false;    // roll back to the version loaded before the current one
  bool dry_run = false;        // run the shadow check only; swap nothing
  bool accept_differences = false;  // swap even if the shadow check finds differences
  // Only these namespaces move (runtime/plugin_versions.hpp): to `file` as
  // a version of their own (a canary), or with to_previous back to the
  // version they ran before (see PluginManager::reload). Empty: the
  // namespaces that follow the main version.
  std::vector<std::string> namespaces;
  // Promote: every namespace moves to the version this namespace runs,
  // which becomes the main version (file, to_previous and namespaces unset).
  std::string promote_from;
};

// What a reload did besides the swap: its shadow check.
struct ReloadCheck {
  bool ran = false;            // a shadow check ran (not for a rollback or when disabled)
  bool refused = false;        // the swap was refused for the differences it found
  bool accepted_differences = false;  // they were accepted (accept_differences)
  bool dry_run = false;        // only the check ran
  ShadowReport report;
};

struct PluginManagerOptions {
  // Where the private copies go: a directory of this host alone (its data
  // directory's plugins.loaded/), emptied at start and removed at the end.
  // Empty: a per-process directory TMPDIR/aether-plugins-<pid>-XXXXXX
  // (those of processes that are gone are removed at start).
  std::filesystem::path copy_dir;
  // Directories reloads may load files from (plugins.dir and
  // plugins.allowed_dirs). "/" allows any file (in-process test hosts).
  std::vector<std::string> allowed_dirs;
};

class PluginManager {
 public:
  PluginManager(PluginRegistry& registry, PluginManagerOptions options);
  ~PluginManager();
  PluginManager(const PluginManager&) = delete;
  PluginManager& operator=(const PluginManager&) = delete;

  // Loads a plugin the configuration names, at start-up (through a private
  // copy). The file is allowed wherever it is, and stays allowed for later
  // reloads.
  Result<std::shared_ptr<const Plugin>> load(const std::string& file);
  // Loads, at start-up, a version of an already loaded plugin that serves
  // `namespaces` instead of its main version (plugins.<entry>.namespaces).
  Result<std::shared_ptr<const Plugin>> load_for_namespaces(const std::string& file,
                                                            const std::vector<std::string>& namespaces);

  // Hot swaps through `runtime` (REQUIRES: attached before any reload).
  // With `events`, every reload (not a rollback) first runs the shadow check
  // (runtime/shadow_check.hpp) with `shadow` unless that is disabled.
  void attach(Runtime* runtime, SwapOptions defaults, Journal* events = nullptr,
              ShadowOptions shadow = {});
  // A file that is not allowed is refused (kInvalidArgument) before it is
  // opened; an incomplete or foreign image is refused before dlopen. Either
  // way the loaded version keeps serving.
  // A shadow check that finds differences refuses the swap (kRejected,
  // check->refused) unless request.accept_differences; with
  // request.dry_run the check runs (even when disabled) and nothing is
  // swapped (the SwapReport then names the versions only). `check`, when
  // given, receives what the check found.
  // Rollback of namespaces (to_previous with namespaces): a namespace that
  // runs a version of its own returns to the main version; one that follows
  // the main version gets the main version's previous one as its own. The
  // listed namespaces must all be of one kind.
  Result<SwapReport> reload(const ReloadRequest& request, ReloadCheck* check = nullptr);

  // Polls the files of the current versions every `interval`; a file whose
  // size or modification time changed, then stayed the same across two polls
  // and is a complete ELF image (a build finished writing it) is reloaded.
  // Errors are logged and the old version keeps serving.
  void start_watching(std::chrono::milliseconds interval);

  // Called after each swap this manager made (not a dry run) with its
  // request, on the thread that asked, while the manager is locked: it must
  // not call the manager (a cluster records the versions; cluster/plugin_sync.hpp).
  void set_swap_listener(std::function<void(const ReloadRequest&)> listener);
  void stop_watching();

  // The directory of the private copies (empty if it could not be made).
  std::filesystem::path copy_dir() const;

 private:
  struct Version {
    std::string source;               // the file this version was read from
    std::filesystem::path copy;       // its private copy
  };
  struct History {
    Version current;                  // the main version
    std::optional<Version> previous;  // the rollback target
    std::map<std::string, Version> own;  // namespace -> its own version
    // Watch state of current.source.
    std::filesystem::file_time_type mtime{};
    uintmax_t size = 0;
    bool changed = false;              // seen changing at the last poll
    std::filesystem::file_time_type pending_mtime{};
    uintmax_t pending_size = 0;
    std::string waiting_for;           // why a stable file is not loadable yet (logged once)
  };

  Result<std::filesystem::path> copy_of(const std::string& file, const std::string& stem);
  Result<std::shared_ptr<const Plugin>> open_next(const ReloadRequest& req, const History& h,
                                                  Version& next, bool& new_copy);
  Result<std::shared_ptr<const Plugin>> open_loaded(const ReloadRequest& req, const History& h,
                                                    Version& next);
  Status check_scope(const ReloadRequest& req) const;
  void commit_swap(History& h, const ReloadRequest& req, Version next);
  void remove_unused(const History& h, const std::vector<std::filesystem::path>& copies);
  Result<SwapReport> checked_swap(const ReloadRequest& req, std::shared_ptr<const Plugin> next,
                                  const SwapOptions& options, ReloadCheck& check);
  History* find_history(const std::string& name);
  void note_file(History& h);
  bool due_for_reload(const std::string& name, History& h);
  void watch_loop(std::chrono::milliseconds interval);

  PluginRegistry& registry_;
  Runtime* runtime_ = nullptr;
  SwapOptions defaults_;
  Journal* events_ = nullptr;
  ShadowOptions shadow_;
  std::vector<std::string> allowed_dirs_;
  std::vector<std::string> configured_;  // files load() was given
  std::unique_ptr<PluginCopies> copies_;
  Status copies_status_;                 // why there is no copy directory
  std::mutex mu_;
  std::vector<std::pair<std::string, History>> histories_;  // by plugin name
  std::function<void(const ReloadRequest&)> listener_;

  std::mutex watch_mu_;
  std::condition_variable watch_cv_;
  bool watching_ = false;
  std::thread watcher_;
};

}  // namespace aether
