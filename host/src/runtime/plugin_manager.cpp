#include "runtime/plugin_manager.hpp"

#include <unistd.h>

#include <condition_variable>

#include "core/log.hpp"
#include "plugin/plugin.hpp"

namespace aether {

namespace fs = std::filesystem;

PluginManager::PluginManager(PluginRegistry& registry, fs::path copy_dir)
    : registry_(registry), copy_dir_(std::move(copy_dir)) {
  if (copy_dir_.empty()) {
    std::string tmpl = (fs::temp_directory_path() / ("aether-plugins-" + std::to_string(getpid()) + "-XXXXXX")).string();
    if (mkdtemp(tmpl.data()) != nullptr) copy_dir_ = tmpl;
  } else {
    std::error_code ec;
    fs::create_directories(copy_dir_, ec);
  }
}

PluginManager::~PluginManager() {
  stop_watching();
  // Images may still be mapped (the registry outlives us in some hosts);
  // unlinking a mapped file is fine on Linux.
  std::error_code ec;
  if (!copy_dir_.empty()) fs::remove_all(copy_dir_, ec);
}

Result<std::string> PluginManager::private_copy(const std::string& file, const std::string& stem) {
  std::error_code ec;
  if (!fs::exists(file, ec)) return Status::not_found("plugin " + file + ": no such file");
  const fs::path dst = copy_dir_ / (stem + "." + std::to_string(++counter_) + ".so");
  fs::copy_file(file, dst, fs::copy_options::overwrite_existing, ec);
  if (ec) {
    return Status::unavailable("plugin " + file + ": cannot make a private copy in " +
                               copy_dir_.string() + ": " + ec.message());
  }
  return dst.string();
}

void PluginManager::note_file(History& h) {
  std::error_code ec;
  h.mtime = fs::last_write_time(h.source, ec);
  h.size = fs::file_size(h.source, ec);
  h.changed = false;
}

Result<std::shared_ptr<const Plugin>> PluginManager::load(const std::string& file) {
  std::lock_guard lock(mu_);
  auto copy = private_copy(file, fs::path(file).stem().string());
  if (!copy) return copy.status();
  auto opened = Plugin::open(*copy, file);
  if (!opened) {
    fs::remove(*copy);
    return opened.status();
  }
  std::shared_ptr<const Plugin> plugin = std::move(opened).value();
  if (Status s = registry_.add(plugin); !s) {
    plugin.reset();
    fs::remove(*copy);
    return s;
  }
  History h;
  h.source = file;
  h.copies.push_back(*copy);
  note_file(h);
  histories_.emplace_back(plugin->name(), std::move(h));
  return plugin;
}

void PluginManager::attach(Runtime* runtime, SwapOptions defaults) {
  std::lock_guard lock(mu_);
  runtime_ = runtime;
  defaults_ = defaults;
}

Result<SwapReport> PluginManager::reload(const ReloadRequest& req) {
  std::lock_guard lock(mu_);
  if (runtime_ == nullptr) return Status::unavailable("the host is not running yet");
  History* h = nullptr;
  for (auto& [name, hist] : histories_) {
    if (name == req.plugin) h = &hist;
  }
  if (h == nullptr) return Status::not_found("no plugin named " + req.plugin + " is loaded");

  std::string copy;
  std::string shown;
  bool fresh_copy = false;
  if (req.to_previous) {
    if (h->copies.size() < 2) {
      return Status::not_found("plugin " + req.plugin +
                               " has no previous version in this process to return to");
    }
    copy = h->copies[h->copies.size() - 2];
    shown = h->source + " (previous version)";
  } else {
    shown = req.file.empty() ? h->source : req.file;
    auto c = private_copy(shown, req.plugin);
    if (!c) return c.status();
    copy = *c;
    fresh_copy = true;
  }
  auto drop_copy = [&] {
    if (fresh_copy) {
      std::error_code ec;
      fs::remove(copy, ec);
    }
  };
  auto opened = Plugin::open(copy, shown);
  if (!opened) {
    drop_copy();
    return Status(opened.status().code(), "reload of plugin " + req.plugin +
                                              " refused, the loaded version keeps serving: " +
                                              opened.status().message());
  }
  std::shared_ptr<const Plugin> next = std::move(opened).value();
  if (next->name() != req.plugin) {
    const std::string other = next->name();
    next.reset();
    drop_copy();
    return Status::invalid("reload of plugin " + req.plugin + " refused: " + shown +
                           " is plugin " + other + ", not " + req.plugin);
  }
  auto report = runtime_->swap_plugin(next, defaults_);
  next.reset();
  if (!report) {
    drop_copy();
    return report.status();
  }
  if (req.to_previous) {
    std::error_code ec;
    fs::remove(h->copies.back(), ec);
    h->copies.pop_back();
  } else {
    h->copies.push_back(copy);
    if (!req.file.empty()) h->source = req.file;
  }
  note_file(*h);
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
        std::error_code ec;
        const auto mtime = fs::last_write_time(h.source, ec);
        if (ec) continue;  // being replaced right now
        const auto size = fs::file_size(h.source, ec);
        if (ec) continue;
        const bool differs = mtime != h.mtime || size != h.size;
        if (differs && h.changed && mtime == h.pending_mtime && size == h.pending_size) {
          due.push_back(name);  // changed, then stable for one interval
        } else if (differs) {
          h.changed = true;
          h.pending_mtime = mtime;
          h.pending_size = size;
        }
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
