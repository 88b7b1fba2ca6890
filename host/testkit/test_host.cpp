#include "testkit/test_host.hpp"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>

#include "plugin/plugin.hpp"
#include "runtime/plugin_manager.hpp"
#include "store/store.hpp"

namespace aether::testkit {

namespace fs = std::filesystem;

struct TestHost::Impl {
  TestHostOptions opts;
  fs::path dir;
  PluginRegistry registry;
  std::unique_ptr<PluginManager> plugins;
  std::unique_ptr<Store> store;
  std::unique_ptr<Runtime> runtime;

  void open_store() {
    if (opts.store == "sqlite") {
      SqliteOptions so;
      so.path = (dir / "aether.db").string();
      auto s = open_sqlite_store(so);
      if (!s) throw std::runtime_error(s.status().to_string());
      store = std::move(s).value();
    } else {
      store = make_memory_store();
    }
  }

  void start() {
    auto r = Runtime::create(opts.runtime, registry, *store, *store);
    if (!r) throw std::runtime_error(r.status().to_string());
    runtime = std::move(r).value();
    if (opts.shadow) {
      plugins->attach(runtime.get(), opts.swap, store.get(), *opts.shadow);
    } else {
      plugins->attach(runtime.get(), opts.swap);
    }
  }
};

TestHost::TestHost(TestHostOptions options) : impl_(std::make_unique<Impl>()) {
  impl_->opts = std::move(options);
  if (impl_->opts.dir.empty()) {
    std::string tmpl = (fs::temp_directory_path() / "aether-testhost-XXXXXX").string();
    if (mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    impl_->dir = tmpl;
  } else {
    impl_->dir = impl_->opts.dir;
    fs::create_directories(impl_->dir);
  }
  // A test host loads whatever file its test names (allowed dir "/").
  impl_->plugins = std::make_unique<PluginManager>(
      impl_->registry, PluginManagerOptions{impl_->dir / "plugins", {"/"}});
  impl_->open_store();
  impl_->start();
}

TestHost::~TestHost() {
  impl_->plugins->stop_watching();
  if (impl_->runtime) impl_->runtime->shutdown();
  impl_->runtime.reset();
  impl_->store.reset();
  impl_->plugins.reset();
  std::error_code ec;
  if (impl_->opts.dir.empty()) {
    fs::remove_all(impl_->dir, ec);
  } else {
    fs::remove_all(impl_->dir / "plugins", ec);  // private copies only; the data stays
  }
}

Status TestHost::load(const std::string& file) {
  auto r = impl_->plugins->load(file);
  return r ? Status::ok() : r.status();
}

CommandResult TestHost::send(const std::string& type, const std::string& id,
                             const std::string& command, const std::string& payload,
                             const std::string& ns) {
  Command c;
  c.ns = ns;
  c.type = type;
  c.id = id;
  c.name = command;
  c.payload = payload;
  return impl_->runtime->send_sync(std::move(c));
}

Result<ActorView> TestHost::state(const std::string& type, const std::string& id,
                                  const std::string& ns) {
  return impl_->runtime->state(ns, type, id);
}

std::string TestHost::view(const std::string& type, const std::string& id, const std::string& ns) {
  auto s = state(type, id, ns);
  return s ? s->view : "error: " + s.status().message();
}

Result<SwapReport> TestHost::swap(const std::string& plugin, const std::string& file) {
  ReloadRequest r;
  r.plugin = plugin;
  r.file = file;
  return impl_->plugins->reload(r);
}

Result<SwapReport> TestHost::rollback(const std::string& plugin) {
  ReloadRequest r;
  r.plugin = plugin;
  r.to_previous = true;
  return impl_->plugins->reload(r);
}

std::string TestHost::version(const std::string& plugin) const {
  auto p = impl_->registry.find_plugin(plugin);
  return p ? p->version() : "";
}

std::string TestHost::loaded_file(const std::string& plugin) const {
  auto p = impl_->registry.find_plugin(plugin);
  return p ? p->path().string() : "";
}

bool TestHost::is_mapped(const std::string& file) {
  std::ifstream maps("/proc/self/maps");
  for (std::string line; std::getline(maps, line);) {
    if (line.size() >= file.size() && line.compare(line.size() - file.size(), file.size(), file) == 0) {
      return true;
    }
  }
  return false;
}

int TestHost::plugin_mappings() const {
  std::ifstream maps("/proc/self/maps");
  const std::string dir = impl_->plugins->copy_dir().string();
  std::set<std::string> files;
  for (std::string line; std::getline(maps, line);) {
    const size_t at = line.find(dir);
    if (at != std::string::npos) files.insert(line.substr(at));
  }
  return static_cast<int>(files.size());
}

void TestHost::restart() {
  impl_->runtime->shutdown();
  impl_->runtime.reset();
  if (impl_->opts.store == "sqlite") {
    impl_->store.reset();
    impl_->open_store();
  }
  impl_->start();
}

std::string TestHost::dir() const { return impl_->dir.string(); }

Runtime& TestHost::runtime() { return *impl_->runtime; }
Store& TestHost::store() { return *impl_->store; }
PluginRegistry& TestHost::registry() { return impl_->registry; }
PluginManager& TestHost::plugins() { return *impl_->plugins; }

}  // namespace aether::testkit
