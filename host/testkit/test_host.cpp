#include "testkit/test_host.hpp"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>

#include "app/host.hpp"
#include "plugin/plugin.hpp"
#include "runtime/plugin_manager.hpp"
#include "store/store.hpp"

namespace aether::testkit {

namespace fs = std::filesystem;

namespace {

// A HostConfig for the test host: no NATS, no HTTP server, the store and the
// private plugin copies in the host's directory, plugins loaded by the test.
HostConfig host_config(const TestHostOptions& o, const fs::path& dir) {
  HostConfig c;
  c.source = "<testkit>";
  c.node.data_dir = dir.string();
  c.store.backend = o.store == "sqlite" ? "sqlite" : "memory";
  c.store.sqlite_path = (dir / "aether.db").string();
  c.api.http_enabled = false;
  c.plugins.dir = (dir / "plugins").string();  // none at start: the test loads them
  c.plugins.allowed_dirs = {"/"};              // whatever file its test names
  c.plugins.allow_breaking_reload = o.swap.allow_breaking;
  c.plugins.swap_pause_timeout_ms = o.swap.pause_timeout_ms;
  c.plugins.shadow_check = o.shadow.value_or(ShadowOptions{.enabled = false});
  return c;
}

}  // namespace

struct TestHost::Impl {
  TestHostOptions opts;
  fs::path dir;
  std::unique_ptr<Host> host;

  void start() {
    HostSeams seams;
    seams.tune_runtime = [this](RuntimeOptions& o) { o = opts.runtime; };
    auto h = Host::start(host_config(opts, dir), std::move(seams));
    if (!h) throw std::runtime_error(h.status().to_string());
    host = std::move(h).value();
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
  impl_->start();
}

TestHost::~TestHost() {
  impl_->host.reset();
  std::error_code ec;
  if (impl_->opts.dir.empty()) {
    fs::remove_all(impl_->dir, ec);
  } else {
    fs::remove_all(impl_->dir / "plugins.loaded", ec);  // private copies only; the data stays
  }
}

Status TestHost::load(const std::string& file) {
  auto r = impl_->host->plugins().load(file);
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
  return impl_->host->runtime().send_sync(std::move(c));
}

Result<ActorView> TestHost::state(const std::string& type, const std::string& id,
                                  const std::string& ns) {
  return impl_->host->runtime().state(ns, type, id);
}

std::string TestHost::view(const std::string& type, const std::string& id, const std::string& ns) {
  auto s = state(type, id, ns);
  return s ? s->view : "error: " + s.status().message();
}

Result<SwapReport> TestHost::swap(const std::string& plugin, const std::string& file) {
  ReloadRequest r;
  r.plugin = plugin;
  r.file = file;
  return impl_->host->plugins().reload(r);
}

Result<SwapReport> TestHost::rollback(const std::string& plugin) {
  ReloadRequest r;
  r.plugin = plugin;
  r.to_previous = true;
  return impl_->host->plugins().reload(r);
}

std::string TestHost::version(const std::string& plugin) const {
  auto p = impl_->host->registry().find_plugin(plugin);
  return p ? p->version() : "";
}

std::string TestHost::loaded_file(const std::string& plugin) const {
  auto p = impl_->host->registry().find_plugin(plugin);
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
  const std::string dir = impl_->host->plugins().copy_dir().string();
  std::set<std::string> files;
  for (std::string line; std::getline(maps, line);) {
    const size_t at = line.find(dir);
    if (at != std::string::npos) files.insert(line.substr(at));
  }
  return static_cast<int>(files.size());
}

void TestHost::restart() {
  if (Status s = impl_->host->restart_runtime(); !s) throw std::runtime_error(s.to_string());
}

std::string TestHost::dir() const { return impl_->dir.string(); }

Runtime& TestHost::runtime() { return impl_->host->runtime(); }
Journal& TestHost::store() { return impl_->host->store(); }
PluginRegistry& TestHost::registry() { return impl_->host->registry(); }
PluginManager& TestHost::plugins() { return impl_->host->plugins(); }

}  // namespace aether::testkit
