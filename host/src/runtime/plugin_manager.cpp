#include "runtime/plugin_manager.hpp"

#include <algorithm>

#include "core/elf_image.hpp"
#include "core/log.hpp"
#include "plugin/plugin.hpp"
#include "plugin/plugin_files.hpp"
#include "runtime/plugin_versions.hpp"

namespace aether {

namespace fs = std::filesystem;

PluginManager::PluginManager(PluginRegistry& registry, PluginManagerOptions options)
    : registry_(registry), allowed_dirs_(std::move(options.allowed_dirs)) {
  auto c = PluginCopies::create(options.copy_dir);
  if (c) {
    copies_ = std::move(c).value();
  } else {
    copies_status_ = c.status();
  }
}

PluginManager::~PluginManager() { stop_watching(); }

fs::path PluginManager::copy_dir() const { return copies_ ? copies_->dir() : fs::path(); }

Result<fs::path> PluginManager::copy_of(const std::string& file, const std::string& stem) {
  if (!copies_) return copies_status_;
  PluginFilePolicy policy;
  policy.dirs.assign(allowed_dirs_.begin(), allowed_dirs_.end());
  policy.files.assign(configured_.begin(), configured_.end());
  return copies_->copy(file, policy, stem);
}

void PluginManager::note_file(History& h) {
  std::error_code ec;
  h.mtime = fs::last_write_time(h.current.source, ec);
  h.size = fs::file_size(h.current.source, ec);
  h.changed = false;
  h.waiting_for.clear();
}

Result<std::shared_ptr<const Plugin>> PluginManager::load(const std::string& file) {
  std::lock_guard lock(mu_);
  configured_.push_back(file);
  auto copy = copy_of(file, fs::path(file).stem().string());
  if (!copy) return copy.status();
  auto opened = Plugin::open(*copy, file, "start");
  if (!opened) {
    copies_->remove(*copy);
    return opened.status();
  }
  std::shared_ptr<const Plugin> plugin = std::move(opened).value();
  if (Status s = registry_.add(plugin); !s) {
    plugin.reset();
    copies_->remove(*copy);
    return s;
  }
  History h;
  h.current = Version{file, *copy};
  note_file(h);
  histories_.emplace_back(plugin->name(), std::move(h));
  return plugin;
}

Result<std::shared_ptr<const Plugin>> PluginManager::load_for_namespaces(
    const std::string& file, const std::vector<std::string>& namespaces) {
  std::lock_guard lock(mu_);
  configured_.push_back(file);
  auto copy = copy_of(file, fs::path(file).stem().string());
  if (!copy) return copy.status();
  auto opened = Plugin::open(*copy, file, "start");
  History* h = opened ? find_history((*opened)->name()) : nullptr;
  Status s = opened ? Status::ok() : opened.status();
  if (opened && h == nullptr) {
    s = Status::invalid("plugin " + file + " is plugin " + (*opened)->name() +
                        ", which no plugins entry loads as its main version");
  }
  std::shared_ptr<const Plugin> plugin = opened ? std::move(opened).value() : nullptr;
  for (size_t i = 0; s && i < namespaces.size(); ++i) s = registry_.set_namespace_version(namespaces[i], plugin);
  if (!s) {
    for (const auto& ns : namespaces) {  // those set already follow the main version again
      if (plugin && registry_.version_for(plugin->name(), ns) == plugin) {
        (void)registry_.set_namespace_version(ns, registry_.find_plugin(plugin->name()));
      }
    }
    copies_->remove(*copy);
    return s;
  }
  for (const auto& ns : namespaces) h->own[ns] = Version{file, *copy};
  return plugin;
}

void PluginManager::attach(Runtime* runtime, SwapOptions defaults, Journal* events,
                           ShadowOptions shadow) {
  std::lock_guard lock(mu_);
  runtime_ = runtime;
  defaults_ = defaults;
  events_ = events;
  shadow_ = shadow;
}

PluginManager::History* PluginManager::find_history(const std::string& name) {
  for (auto& [n, hist] : histories_) {
    if (n == name) return &hist;
  }
  return nullptr;
}

// The shadow check of `next` against the version the swapped namespaces
// run, on their actors, then the swap unless the check refuses it or only
// the check was asked for.
Result<SwapReport> PluginManager::checked_swap(const ReloadRequest& req,
                                               std::shared_ptr<const Plugin> next,
                                               const SwapOptions& options, ReloadCheck& check) {
  auto current = SwapScope(registry_, req.plugin, options).from();
  // The namespaces whose actors the swap moves.
  std::vector<std::string> scope = options.namespaces;
  if (scope.empty()) scope = main_namespaces(registry_, req.plugin, runtime_->namespaces());
  if (options.promote) scope = runtime_->namespaces();
  std::erase_if(scope, [&](const std::string& ns) { return registry_.version_for(req.plugin, ns) == next; });
  const bool wanted = req.dry_run || (shadow_.enabled && !req.to_previous && !scope.empty());
  if (current && events_ != nullptr && wanted) {
    check.ran = true;
    check.dry_run = req.dry_run;
    check.report = run_shadow_check(current, next, *runtime_, *events_, shadow_, scope);
    const ShadowReport& r = check.report;
    log::info("shadow check of plugin " + req.plugin + " " + r.to_version + ": " +
              std::to_string(r.actors_checked) + " actors, " + std::to_string(r.events_replayed) +
              " events, " + std::to_string(r.actors_differing) + " differing");
    if (req.dry_run) {
      SwapReport dry;
      dry.plugin = req.plugin;
      dry.from_version = current->version();
      dry.to_version = next->version();
      return dry;
    }
    if (!r.passed() && !req.accept_differences) {
      check.refused = true;
      return Status(StatusCode::kRejected,
                    "reload of plugin " + req.plugin + " refused, the loaded version keeps serving: the "
                    "shadow check found " + std::to_string(r.actors_differing) + " of " +
                    std::to_string(r.actors_checked) + " actors whose state differs under " +
                    r.to_version + " (accept them with \"accept\": \"differences\")");
    }
    check.accepted_differences = !r.passed();
  } else if (req.dry_run) {
    return Status::unavailable("the shadow check needs the host's event store, which this host did not give");
  }
  return runtime_->swap_plugin(std::move(next), options);
}

// A version already loaded: the one a promote moves to, or the main one a
// namespace rollback returns to.
Result<std::shared_ptr<const Plugin>> PluginManager::open_loaded(const ReloadRequest& req,
                                                                 const History& h, Version& next) {
  if (!req.promote_from.empty()) {
    auto own = h.own.find(req.promote_from);
    if (own == h.own.end()) {
      return Status::invalid("namespace " + req.promote_from + " runs the main version of plugin " +
                             req.plugin + "; there is nothing to promote");
    }
    next = own->second;
    return registry_.version_for(req.plugin, req.promote_from);
  }
  next = h.current;
  return registry_.find_plugin(req.plugin);
}

// Opens the version `req` asks for: one already loaded, the previous
// version's copy, or a fresh copy (new_copy) of the requested (or current)
// file. `next` says which.
Result<std::shared_ptr<const Plugin>> PluginManager::open_next(const ReloadRequest& req,
                                                               const History& h, Version& next,
                                                               bool& new_copy) {
  const bool own_back = req.to_previous && !req.namespaces.empty() && h.own.count(req.namespaces.front()) != 0;
  if (!req.promote_from.empty() || own_back) return open_loaded(req, h, next);
  if (req.to_previous) {
    if (!h.previous) {
      return Status::not_found("plugin " + req.plugin +
                               " has no previous version in this process to return to");
    }
    next = *h.previous;
  } else {
    next.source = req.file.empty() ? h.current.source : req.file;
    auto c = copy_of(next.source, req.plugin);
    if (!c) {
      return Status(c.status().code(), "reload of plugin " + req.plugin +
                                           " refused, the loaded version keeps serving: " +
                                           c.status().message());
    }
    next.copy = *c;
    new_copy = true;
  }
  auto opened = Plugin::open(next.copy, next.source, req.to_previous ? "rollback" : "reload");
  if (!opened) {
    return Status(opened.status().code(), "reload of plugin " + req.plugin +
                                              " refused, the loaded version keeps serving: " +
                                              opened.status().message());
  }
  if ((*opened)->name() != req.plugin) {
    return Status::invalid("reload of plugin " + req.plugin + " refused: " + next.source +
                           " is plugin " + (*opened)->name() + ", not " + req.plugin);
  }
  return std::shared_ptr<const Plugin>(std::move(opened).value());
}

// Deletes those of `copies` that no version of `h` uses any more.
void PluginManager::remove_unused(const History& h, const std::vector<fs::path>& copies) {
  for (const auto& c : copies) {
    bool used = c == h.current.copy || (h.previous && c == h.previous->copy);
    for (const auto& [_, v] : h.own) used = used || c == v.copy;
    if (!used && !c.empty()) copies_->remove(c);
  }
}

// After a successful swap: the main version swapped out becomes the
// rollback target (a rollback forgets the version it left), namespaces
// record their own versions, and a copy that no version uses or can return
// to any more is deleted.
void PluginManager::commit_swap(History& h, const ReloadRequest& req, Version next) {
  std::vector<fs::path> dropped;
  if (!req.promote_from.empty()) {
    if (h.previous) dropped.push_back(h.previous->copy);
    for (const auto& [_, v] : h.own) dropped.push_back(v.copy);
    h.own.clear();
    h.previous = std::move(h.current);
    h.current = std::move(next);
  } else if (!req.namespaces.empty()) {
    const bool back_to_main = next.copy == h.current.copy;
    for (const auto& ns : req.namespaces) {
      if (auto it = h.own.find(ns); it != h.own.end()) dropped.push_back(it->second.copy);
      if (back_to_main) {
        h.own.erase(ns);
      } else {
        h.own[ns] = next;
      }
    }
  } else if (req.to_previous) {
    dropped.push_back(h.current.copy);
    h.previous.reset();
    h.current = std::move(next);
  } else {
    if (h.previous) dropped.push_back(h.previous->copy);
    h.previous = std::move(h.current);
    h.current = std::move(next);
  }
  note_file(h);
  remove_unused(h, dropped);
}

// The namespaces a request names must be served here, and a rollback's of
// one kind.
Status PluginManager::check_scope(const ReloadRequest& req) const {
  const auto served = runtime_->namespaces();
  std::vector<std::string> named = req.namespaces;
  if (!req.promote_from.empty()) named.push_back(req.promote_from);
  for (const auto& ns : named) {
    if (std::find(served.begin(), served.end(), ns) == served.end()) {
      return Status::invalid("plugin " + req.plugin + ": namespace " + ns + " is not served by this host");
    }
  }
  if (req.to_previous && !req.namespaces.empty()) {
    const auto own = registry_.namespace_versions(req.plugin);
    for (const auto& ns : req.namespaces) {
      if ((own.count(ns) != 0) != (own.count(req.namespaces.front()) != 0)) {
        return Status::invalid("rollback of plugin " + req.plugin + ": namespace " + ns + " and " +
                               req.namespaces.front() + " run different versions; roll them back one at a time");
      }
    }
  }
  return Status::ok();
}

Result<SwapReport> PluginManager::reload(const ReloadRequest& req, ReloadCheck* check) {
  ReloadCheck own;
  ReloadCheck& ch = check != nullptr ? *check : own;
  std::lock_guard lock(mu_);
  if (runtime_ == nullptr) return Status::unavailable("the host is not running yet");
  History* h = find_history(req.plugin);
  if (h == nullptr) return Status::not_found("no plugin named " + req.plugin + " is loaded");
  if (Status s = check_scope(req); !s) return s;
  SwapOptions options = defaults_;
  options.namespaces = req.namespaces;
  options.promote = !req.promote_from.empty();

  Version next;
  bool new_copy = false;
  auto report = [&]() -> Result<SwapReport> {
    auto opened = open_next(req, *h, next, new_copy);
    if (!opened) return opened.status();
    return checked_swap(req, std::move(opened).value(), options, ch);
  }();  // our reference to the new image is gone: the registry holds it, or nothing does
  if (!report || req.dry_run) {
    if (new_copy) copies_->remove(next.copy);
    if (!report) return report.status();
    return report;
  }
  commit_swap(*h, req, std::move(next));
  if (listener_) listener_(req);
  return report;
}

void PluginManager::set_swap_listener(std::function<void(const ReloadRequest&)> listener) {
  std::lock_guard lock(mu_);
  listener_ = std::move(listener);
}

void PluginManager::start_watching(std::chrono::milliseconds interval) {
  std::lock_guard lock(watch_mu_);
  if (watching_) return;
  watching_ = true;
  watcher_ = std::thread([this, interval] { watch_loop(interval); });
}

void PluginManager::stop_watching() {
  {
    std::lock_guard lock(watch_mu_);
    if (!watching_) return;
    watching_ = false;
  }
  watch_cv_.notify_all();
  watcher_.join();
}

// One poll of one plugin's file (REQUIRES: mu_ held). True when the file
// changed, then kept its size and time across two polls, and is a complete
// ELF image.
bool PluginManager::due_for_reload(const std::string& name, History& h) {
  std::error_code ec;
  const auto mtime = fs::last_write_time(h.current.source, ec);
  if (ec) return false;  // being replaced right now
  const auto size = fs::file_size(h.current.source, ec);
  if (ec) return false;
  if (mtime == h.mtime && size == h.size) {
    h.changed = false;
    return false;
  }
  if (!h.changed || mtime != h.pending_mtime || size != h.pending_size) {
    h.changed = true;  // first seen changing, or still changing
    h.pending_mtime = mtime;
    h.pending_size = size;
    return false;
  }
  // A build may pause between writes: only a complete image is due.
  const std::string why = check_elf_file(h.current.source);
  if (why.empty()) return true;
  if (why != h.waiting_for) {
    log::warn("plugin " + name + ": " + h.current.source + " changed but is not loadable yet (" +
              why + "); the loaded version keeps serving until the file is complete");
    h.waiting_for = why;
  }
  return false;
}

void PluginManager::watch_loop(std::chrono::milliseconds interval) {
  std::unique_lock wl(watch_mu_);
  while (watching_) {
    watch_cv_.wait_for(wl, interval, [&] { return !watching_; });
    if (!watching_) return;
    wl.unlock();
    std::vector<std::string> due;
    {
      std::lock_guard lock(mu_);
      for (auto& [name, h] : histories_) {
        if (due_for_reload(name, h)) due.push_back(name);
      }
    }
    for (const auto& name : due) {
      ReloadRequest req;
      req.plugin = name;
      auto r = reload(req);
      if (r) {
        log::info("plugin " + name + " reloaded after its file changed");
      } else {
        log::error(r.status().message());
        std::lock_guard lock(mu_);
        for (auto& [n, h] : histories_) {
          if (n == name) note_file(h);  // do not retry the same broken file
        }
      }
    }
    wl.lock();
  }
}

}  // namespace aether
