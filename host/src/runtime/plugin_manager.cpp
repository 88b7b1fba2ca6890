#include "runtime/plugin_manager.hpp"

#include "core/elf_image.hpp"
#include "core/log.hpp"
#include "plugin/plugin.hpp"
#include "plugin/plugin_files.hpp"

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

void PluginManager::attach(Runtime* runtime, SwapOptions defaults, EventStore* events,
                           ShadowOptions shadow) {
  std::lock_guard lock(mu_);
  runtime_ = runtime;
  defaults_ = defaults;
  events_ = events;
  shadow_ = shadow;
}

// The shadow check of `next` against the loaded version, then the swap
// unless the check refuses it or only the check was asked for.
Result<SwapReport> PluginManager::checked_swap(const ReloadRequest& req,
                                               std::shared_ptr<const Plugin> next,
                                               ReloadCheck& check) {
  auto current = registry_.find_plugin(req.plugin);
  const bool wanted = req.dry_run || (shadow_.enabled && !req.to_previous);
  if (current && events_ != nullptr && wanted) {
    check.ran = true;
    check.dry_run = req.dry_run;
    check.report = run_shadow_check(*current, *next, *runtime_, *events_, shadow_);
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
  return runtime_->swap_plugin(std::move(next), defaults_);
}

// Opens the version `req` asks for: the previous version's copy, or a fresh
// copy of the requested (or current) file. `next` says which.
Result<std::shared_ptr<const Plugin>> PluginManager::open_next(const ReloadRequest& req,
                                                               const History& h, Version& next) {
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

// After a successful swap: the version swapped out becomes the rollback
// target (a rollback forgets the version it left), and a copy that no
// version can return to any more is deleted.
void PluginManager::commit_swap(History& h, const ReloadRequest& req, Version next) {
  if (req.to_previous) {
    copies_->remove(h.current.copy);
    h.previous.reset();
  } else {
    if (h.previous) copies_->remove(h.previous->copy);
    h.previous = std::move(h.current);
  }
  h.current = std::move(next);
  note_file(h);
}

Result<SwapReport> PluginManager::reload(const ReloadRequest& req, ReloadCheck* check) {
  ReloadCheck own;
  ReloadCheck& ch = check != nullptr ? *check : own;
  std::lock_guard lock(mu_);
  if (runtime_ == nullptr) return Status::unavailable("the host is not running yet");
  History* h = nullptr;
  for (auto& [name, hist] : histories_) {
    if (name == req.plugin) h = &hist;
  }
  if (h == nullptr) return Status::not_found("no plugin named " + req.plugin + " is loaded");

  Version next;
  auto report = [&]() -> Result<SwapReport> {
    auto opened = open_next(req, *h, next);
    if (!opened) return opened.status();
    return checked_swap(req, std::move(opened).value(), ch);
  }();  // our reference to the new image is gone: the registry holds it, or nothing does
  if (!report || req.dry_run) {
    if (!req.to_previous && !next.copy.empty()) copies_->remove(next.copy);
    if (!report) return report.status();
    return report;
  }
  commit_swap(*h, req, std::move(next));
  return report;
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
      auto r = reload(ReloadRequest{name, "", false});
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
