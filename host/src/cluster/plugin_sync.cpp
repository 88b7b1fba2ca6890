#include "cluster/plugin_sync.hpp"

#include <nats/nats.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "cluster/kv_bucket.hpp"
#include "core/guarded.hpp"
#include "core/log.hpp"
#include "core/names.hpp"
#include "nats/connection.hpp"
#include "plugin/plugin.hpp"
#include "runtime/plugin_manager.hpp"
#include "runtime/runtime.hpp"

namespace aether {
namespace {

using json = nlohmann::json;

json version_json(const Plugin& p) {
  return {{"file", p.source().string()}, {"sha256", p.sha256()}, {"version", p.version()}};
}

// The record of this node's versions of `plugin` (null when not loaded).
json local_record(const PluginRegistry& registry, const std::string& plugin) {
  auto main = registry.find_plugin(plugin);
  if (!main) return nullptr;
  json own = json::object();
  for (const auto& [ns, p] : registry.namespace_versions(plugin)) own[ns] = version_json(*p);
  return {{"plugin", plugin}, {"main", version_json(*main)}, {"namespaces", own}};
}

bool version_ok(const json& v) {
  return v.is_object() && v.contains("file") && v["file"].is_string() && v.contains("sha256") &&
         v["sha256"].is_string();
}

// True iff `r` (written by anyone who may write the bucket) has the shape
// local_record() writes, so that reading it never throws.
bool record_ok(const json& r) {
  if (!r.is_object() || !r.contains("plugin") || !r["plugin"].is_string()) return false;
  if (!r.contains("main") || !version_ok(r["main"])) return false;
  if (!r.contains("namespaces") || !r["namespaces"].is_object()) return false;
  for (const auto& [ns, v] : r["namespaces"].items()) {
    if (!check_name(ns).empty() || !version_ok(v)) return false;
  }
  return true;
}

}  // namespace

struct PluginVersionSync::Impl {
  PluginSyncOptions opts;
  NatsConnection& conn;
  PluginManager& manager;
  PluginRegistry& registry;
  Runtime& runtime;
  kvStore* kv = nullptr;
  std::unique_ptr<cluster::KvWatch> watch;
  std::thread watcher;
  std::atomic<bool> stopping{false};
  std::atomic<std::thread::id> applying{};  // the watcher's thread: its swaps are not recorded again

  Impl(const PluginSyncOptions& o, NatsConnection& c, PluginManager& m, PluginRegistry& r, Runtime& rt)
      : opts(o), conn(c), manager(m), registry(r), runtime(rt) {}

  ~Impl() {
    stop();
    watch.reset();
    if (kv) kvStore_Destroy(kv);
  }

  void stop() {
    if (stopping.exchange(true)) return;
    if (watcher.joinable()) watcher.join();
  }

  // Records this node's versions of `plugin` after a swap made here.
  void publish(const std::string& plugin) {
    if (std::this_thread::get_id() == applying.load()) return;
    json rec = local_record(registry, plugin);
    if (rec.is_null()) return;
    rec["by"] = opts.node_id;
    const std::string text = rec.dump();
    if (natsStatus s = kvStore_PutString(nullptr, kv, plugin.c_str(), text.c_str()); s != NATS_OK) {
      log::error(nats_error(s, "plugin versions: recording " + plugin + " for the cluster"));
    }
  }

  Status swap(ReloadRequest r) {
    r.accept_differences = true;  // decided by the node that swapped first
    auto rep = manager.reload(r);
    return rep ? Status::ok() : rep.status();
  }

  // Brings namespace `ns` to `want` (the record's version for it).
  Status step_namespace(const std::string& plugin, const std::string& ns, const json& want, bool is_main) {
    auto have = registry.version_for(plugin, ns);
    if (!have) return Status::not_found("plugin " + plugin + " is not loaded here");
    const std::string sha = want["sha256"].get<std::string>();
    if (have->sha256() == sha) return Status::ok();
    ReloadRequest r;
    r.plugin = plugin;
    r.namespaces = {ns};
    auto main = registry.find_plugin(plugin);
    if (is_main && main && main->sha256() == sha) {
      r.to_previous = true;  // a version of its own returns to the main one
      return swap(r);
    }
    r.file = want["file"].get<std::string>();
    if (std::string here = plugin_file_sha256(r.file); here != sha) {
      return Status::unavailable("the cluster runs " + r.file + " with sha256 " + sha.substr(0, 12) + "…, but " +
                                 (here.empty() ? "this node cannot read it" : "here it has sha256 " + here.substr(0, 12) + "…"));
    }
    return swap(r);
  }

  // Brings the main version to the record's: a promote when a namespace
  // runs it already, else a reload of the record's file.
  Status step_main(const std::string& plugin, const json& want) {
    auto main = registry.find_plugin(plugin);
    if (!main) return Status::not_found("plugin " + plugin + " is not loaded here");
    const std::string sha = want["sha256"].get<std::string>();
    if (main->sha256() == sha) return Status::ok();
    ReloadRequest r;
    r.plugin = plugin;
    for (const auto& [ns, p] : registry.namespace_versions(plugin)) {
      if (p->sha256() == sha) {
        r.promote_from = ns;
        return swap(r);
      }
    }
    r.file = want["file"].get<std::string>();
    if (plugin_file_sha256(r.file) != sha) {
      return Status::unavailable("the cluster's main version " + r.file + " (sha256 " + sha.substr(0, 12) +
                                 "…) is not that file on this node");
    }
    return swap(r);
  }

  void apply(const json& rec) {
    const std::string plugin = rec["plugin"].get<std::string>();
    const Status main = step_main(plugin, rec["main"]);
    if (!main) log::error("plugin versions: " + plugin + ": main version: " + main.message());
    bool in_step = main.is_ok();
    for (const auto& ns : runtime.namespaces()) {
      const bool own = rec["namespaces"].contains(ns);
      const json& want = own ? rec["namespaces"][ns] : rec["main"];
      Status s = main;
      if (s) s = step_namespace(plugin, ns, want, !own);
      const std::string why = s ? "" : "this node cannot run version " + want.value("version", "?") + " of plugin " +
                                           plugin + " that the cluster runs in namespace " + ns + ": " + s.message();
      if (!why.empty() && registry.refusals(plugin).count(ns) == 0) log::error("plugin versions: " + why);
      registry.set_refusal(plugin, ns, why);
      in_step = in_step && why.empty();
    }
    if (in_step) log::info("plugin versions: " + plugin + " in step with the record of " + rec.value("by", std::string("?")));
  }

  void on_entry(const cluster::KvEntry& e) {
    if (e.deleted) return;
    const std::string& key = e.key;
    const json rec = json::parse(e.value, nullptr, false);
    if (!record_ok(rec) || rec["plugin"] != key) {
      log::warn("plugin versions: ignoring a malformed record under key " + quote_for_message(key));
      return;
    }
    apply(rec);
  }

  void watch_loop() {
    applying.store(std::this_thread::get_id());
    while (!stopping.load()) {
      auto e = watch->next(200);  // pauses by itself after an error
      if (e && e->has_value()) {
        if (!run_guarded("plugin versions: applying a record", [&] { on_entry(**e); })) {
          log::error("plugin versions: a record could not be applied");
        }
      }
    }
  }
};

PluginVersionSync::PluginVersionSync(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
PluginVersionSync::~PluginVersionSync() { stop(); }

void PluginVersionSync::stop() {
  impl_->manager.set_swap_listener(nullptr);
  impl_->stop();
}

Result<std::unique_ptr<PluginVersionSync>> PluginVersionSync::start(const PluginSyncOptions& options,
                                                                    NatsConnection& connection, PluginManager& manager,
                                                                    PluginRegistry& registry, Runtime& runtime) {
  auto impl = std::make_unique<Impl>(options, connection, manager, registry, runtime);
  KvBucketOptions b;
  b.name = options.bucket_prefix + "_PLUGINS";
  b.replicas = options.replicas;
  auto kv = open_kv_bucket(connection, b, "plugin versions");
  if (!kv) return kv.status();
  impl->kv = *kv;
  auto watch = cluster::watch_nats_bucket(connection, b.name);
  if (!watch) return Status::unavailable("plugin versions: " + watch.status().message());
  impl->watch = std::move(watch).value();
  Impl* raw = impl.get();
  manager.set_swap_listener([raw](const ReloadRequest& r) { raw->publish(r.plugin); });
  raw->watcher = std::thread([raw] { raw->watch_loop(); });
  return std::unique_ptr<PluginVersionSync>(new PluginVersionSync(std::move(impl)));
}

}  // namespace aether
