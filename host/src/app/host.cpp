#include "app/host.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>
#include <vector>

#include "api/http_server.hpp"
#include "api/metrics.hpp"
#include "api/nats_ingress.hpp"
#include "app/options.hpp"
#include "bus/bus.hpp"
#include "bus/nats_bus.hpp"
#include "cluster/cluster.hpp"
#include "cluster/plugin_sync.hpp"
#include "core/dir_lock.hpp"
#include "core/log.hpp"
#include "core/subjects.hpp"
#include "nats/connection.hpp"
#include "plugin/plugin.hpp"
#include "runtime/plugin_manager.hpp"
#include "runtime/runtime.hpp"
#include "store/commit_codec.hpp"
#include "store/jetstream_store.hpp"
#include "store/store.hpp"

namespace aether {

namespace {

// Runs `attempt` again while it fails with kUnavailable, for up to `wait_ms`:
// at start, NATS may not be reachable yet or a NATS cluster may still be
// electing its JetStream leader. Every failed attempt is logged; `pause`
// returning true ends the wait.
template <class F>
auto retry_at_start(int64_t wait_ms, const StartPause& pause, const std::string& what, F attempt)
    -> decltype(attempt()) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(wait_ms);
  int64_t pause_ms = 200;
  for (int n = 1;; ++n) {
    auto r = attempt();
    if (r || r.status().code() != StatusCode::kUnavailable || std::chrono::steady_clock::now() >= deadline) return r;
    log::warn(what + " not ready (attempt " + std::to_string(n) + "): " + r.status().message() +
              "; retrying for up to " + std::to_string(wait_ms) + " ms in all (nats.startup_wait)");
    if (pause ? pause(pause_ms) : (std::this_thread::sleep_for(std::chrono::milliseconds(pause_ms)), false)) {
      return Status::unavailable(what + ": stopped while waiting for NATS (" + r.status().message() + ")");
    }
    pause_ms = std::min<int64_t>(pause_ms * 2, 2000);
  }
}

// The cluster's figures in /metrics, read at every scrape.
void add_cluster_metrics(Metrics& metrics, const ClusterNode& cluster) {
  const ClusterNode* cn = &cluster;
  metrics.add_gauge("aether_cluster_epoch", "Epoch of the shard map this node follows",
                    [cn] { return static_cast<double>(cn->figures().epoch); });
  metrics.add_gauge("aether_cluster_shards_owned", "Shards this node owns in that map",
                    [cn] { return static_cast<double>(cn->figures().shards_owned); });
  metrics.add_gauge("aether_cluster_migrations_in_flight", "Shard migrations in the map",
                    [cn] { return static_cast<double>(cn->figures().migrations_in_flight); });
  metrics.add_gauge("aether_cluster_leader", "1 while this node holds the leader lease",
                    [cn] { return cn->figures().leader ? 1.0 : 0.0; });
  metrics.add_counter("aether_cluster_forwarded_commands_total", "Commands this node forwarded to their owner",
                      [cn] { return static_cast<double>(cn->figures().forwarded); });
  metrics.add_counter("aether_cluster_retried_commands_total",
                      "Commands run again on this node after a store failure that stored nothing and passes",
                      [cn] { return static_cast<double>(cn->figures().retried); });
  metrics.add_counter("aether_cluster_migrations_total", "Migrations finished while this node led",
                      [cn] { return static_cast<double>(cn->figures().migrations_done); });
  metrics.add_counter("aether_cluster_migrations_failed_total", "Migrations re-planned while this node led",
                      [cn] { return static_cast<double>(cn->figures().migrations_failed); });
}

// What /readyz answers: 200 while NATS (when used) is connected and the host
// is not stopping; 503 from the first moment of a shutdown on, while the
// host still answers what it receives. Called from cnats' thread and main.
class Readiness {
 public:
  void attach(HttpServer* http) {
    std::lock_guard lock(mu_);
    http_ = http;
    publish();
  }
  void nats(bool connected) {
    std::lock_guard lock(mu_);
    if (!connected && nats_up_ && !stopping_) log::warn("/readyz answers 503 until NATS is connected again");
    nats_up_ = connected;
    publish();
  }
  void stopping() {
    std::lock_guard lock(mu_);
    stopping_ = true;
    publish();
  }

 private:
  // REQUIRES: mu_ held.
  void publish() {
    if (http_ != nullptr) http_->set_ready(nats_up_ && !stopping_);
  }
  std::mutex mu_;
  HttpServer* http_ = nullptr;
  bool nats_up_ = true;
  bool stopping_ = false;
};

}  // namespace

// Declared in the order of the start; destroyed in reverse, as the parts
// depend on each other.
struct Host::Parts {
  HostConfig config;
  HostSeams seams;
  std::unique_ptr<DirLock> data_lock;
  Metrics metrics;
  std::unique_ptr<NatsConnection> nats;
  // Readers of commits subscribe to `bus` (NATS) or, without NATS, to the
  // host's own bus, on which the store publishes its commits.
  std::unique_ptr<Bus> bus;
  std::unique_ptr<Bus> local_bus;
  std::unique_ptr<Journal> own_store;
  Journal* store = nullptr;  // own_store, or HostSeams::store
  PluginRegistry registry;
  std::unique_ptr<PluginManager> plugins;
  std::unique_ptr<Runtime> runtime;
  std::unique_ptr<ClusterNode> cluster;
  std::unique_ptr<PluginVersionSync> plugin_sync;
  std::unique_ptr<HttpServer> http;
  Readiness readiness;
  std::unique_ptr<NatsConnection::StatusWatch> nats_watch;
  std::vector<std::unique_ptr<Subscription>> commit_subs;
  std::unique_ptr<NatsIngress> ingress;
  bool stopped = false;

  template <class F>
  auto with_retry(const std::string& what, F attempt) {
    return retry_at_start(config.nats.startup_wait_ms, seams.pause, what, attempt);
  }

  Status lock_data() {
    const std::string dir = config.data_directory();
    if (dir.empty()) return Status::ok();
    auto lock = DirLock::acquire(dir);
    if (!lock) return lock.status();
    log::info("data directory " + dir + " locked (" + (*lock)->path() + ")");
    data_lock = std::move(lock).value();
    return Status::ok();
  }

  Status connect_nats() {
    if (!config.nats.enabled) return Status::ok();
    NatsOptions no = nats_options(config);
    // The host's commits are not sent back to it: it hands them to its own
    // readers (event streams, the commit follower) itself, without a round
    // through the server and the wake-ups of delivering them.
    no.no_echo = true;
    auto c = with_retry("nats", [&] { return NatsConnection::connect(no); });
    if (!c) return c.status();
    nats = std::move(c).value();
    std::string servers;
    for (const auto& s : config.nats.servers) servers += (servers.empty() ? "" : ", ") + s;
    log::info("connected to NATS at " + servers);
    return Status::ok();
  }

  // Readers of committed events (event streams, other nodes' commits) read
  // NATS when there is NATS, else the host's own bus, on which the memory and
  // sqlite backends publish their commits. Opened once, before the store.
  void open_buses() {
    if (nats) {
      bus = std::make_unique<NatsBus>(*nats, bus_options(config));
    } else {
      local_bus = make_local_bus(bus_options(config));
    }
  }

  Status open_store() {
    if (!bus && !local_bus) open_buses();
    Result<std::unique_ptr<Journal>> s = Status::invalid("store.backend " + config.store.backend);
    if (seams.store != nullptr) {
      store = seams.store;
      return Status::ok();
    }
    if (seams.open_store) {
      s = seams.open_store();
    } else if (config.store.backend == "jetstream") {
      JetStreamOptions jo = jetstream_options(config);
      jo.echo = bus.get();
      s = with_retry("jetstream store", [&] { return open_jetstream_store(*nats, jo); });
    } else if (config.store.backend == "memory") {
      s = make_memory_store(events_bus(), config.node.id);
    } else {
      SqliteOptions so = sqlite_options(config);
      // Without NATS on the local bus; with it, the store's outbox relay.
      so.broadcast = local_bus.get();
      so.relay = nats.get();
      so.relay_echo = bus.get();
      so.on_commit_batch = [this](size_t n) { metrics.on_commit_batch(n); };
      s = open_sqlite_store(so);
      if (s && so.outbox && nats) log::info("broadcasting committed events to NATS from the sqlite outbox");
    }
    if (!s) return Status(s.status().code(), "store: " + s.status().message());
    own_store = std::move(s).value();
    store = own_store.get();
    return Status::ok();
  }

  Status load_plugins() {
    plugins = std::make_unique<PluginManager>(
        registry, PluginManagerOptions{config.plugin_copy_dir(), config.plugin_load_dirs()});
    for (const auto& file : config.plugin_files()) {
      auto p = plugins->load(file);
      if (!p) return p.status();
      std::string types;
      for (const auto& t : (*p)->types()) types += (types.empty() ? "" : ", ") + t->name();
      log::info("loaded plugin " + (*p)->name() + " " + (*p)->version() + " (" + types + ") from " + file);
    }
    for (const auto& [ns, _] : config.plugins.namespaces) {
      for (const auto& file : config.namespace_plugin_files(ns)) {
        auto p = plugins->load_for_namespaces(file, {ns});
        if (!p) return Status(p.status().code(), "plugins.namespaces." + ns + ": " + p.status().message());
        log::info("namespace " + ns + " runs plugin " + (*p)->name() + " " + (*p)->version() + " from " + file);
      }
    }
    if (registry.plugins().empty()) log::warn("no plugin loaded: every command will be refused");
    metrics.set_known_types([this](std::string_view t) { return registry.plugin_for_type(t) != nullptr; });
    return Status::ok();
  }

  Bus* events_bus() const { return bus ? bus.get() : local_bus.get(); }

  Status start_runtime() {
    RuntimeOptions options = runtime_options(config);
    if (seams.tune_runtime) seams.tune_runtime(options);
    auto rt = Runtime::create(std::move(options), registry, *store, &metrics);
    if (!rt) return Status(rt.status().code(), "runtime: " + rt.status().message());
    runtime = std::move(rt).value();
    ShadowOptions shadow = config.plugins.shadow_check;
    // Its hooks have the same limit as commands unless the options set one.
    if (shadow.call_timeout_ms == 0) shadow.call_timeout_ms = config.actors.call_timeout_ms;
    plugins->attach(runtime.get(), swap_options(config), store, shadow);
    Runtime* r = runtime.get();
    metrics.set_active_actors_source([r] { return static_cast<double>(r->stats().active_actors); });
    return Status::ok();
  }

  Status watch_plugins() {
    if (!config.plugins.watch) return Status::ok();
    plugins->start_watching(std::chrono::milliseconds(std::max<int64_t>(50, config.plugins.watch_interval_ms)));
    log::info("watching plugin files for changes every " + std::to_string(config.plugins.watch_interval_ms) + " ms");
    return Status::ok();
  }

  Status start_cluster() {
    if (!config.cluster.enabled) return Status::ok();
    // Every node runs the cluster's version per namespace (cluster/plugin_sync.hpp).
    const PluginSyncOptions so{config.node.id, config.cluster.bucket_prefix, static_cast<int>(config.cluster.replicas)};
    auto ps = with_retry("plugin versions", [&] { return PluginVersionSync::start(so, *nats, *plugins, registry, *runtime); });
    if (!ps) return ps.status();
    plugin_sync = std::move(ps).value();
    auto c = with_retry("cluster", [&] { return ClusterNode::start(cluster_options(config, registry), *nats, *runtime); });
    if (!c) return c.status();
    cluster = std::move(c).value();
    add_cluster_metrics(metrics, *cluster);
    return Status::ok();
  }

  Status start_servers() {
    if (config.api.http_enabled) {
      auto h = HttpServer::start(http_options(config), *runtime, registry, metrics, plugins.get(), cluster.get(),
                                 events_bus());
      if (!h) return h.status();
      http = std::move(h).value();
    }
    readiness.attach(http.get());
    if (nats) nats_watch = nats->watch_status([this](bool connected) { readiness.nats(connected); });
    follow_remote_commits();
    if (nats && (config.nats.ingress || cluster)) {
      auto in = NatsIngress::start(*nats, *runtime, config.node.namespaces, cluster.get(), config.node.id,
                                   config.api.max_json_depth);
      if (!in) return in.status();
      ingress = std::move(in).value();
    }
    return Status::ok();
  }

  // Other nodes' commits keep this node's caches current (its own do not
  // reach it: remote_only, and its connection does not echo).
  void follow_remote_commits() {
    if (!bus) return;
    Journal* s = store;
    Runtime* r = runtime.get();
    const std::string self = config.node.id;
    for (const auto& ns : config.node.namespaces) {
      commit_subs.push_back(bus->subscribe(subjects::all_events(ns), [r, s, self](const Message& m) {
        const auto c = decode_commit_summary(m.data);
        if (!c || c->node == self) return;
        s->note_remote_commit(c->key, c->version);
        r->note_remote_commit(c->key, c->version);
      }, SubscribeOptions{.remote_only = true}));
    }
  }

  Status restart_runtime() {
    if (cluster || http || ingress) return Status::invalid("restart_runtime: the host serves others");
    if (stopped) return Status::invalid("restart_runtime: the host is stopped");
    runtime->shutdown();
    runtime.reset();
    if (own_store && config.store.backend != "memory") {
      if (Status s = store->flush(); !s) return Status(s.code(), "store flush: " + s.message());
      own_store.reset();
      store = nullptr;
      if (Status s = open_store(); !s) return s;
    }
    return start_runtime();
  }

  Status stop() {
    if (stopped) return Status::ok();
    stopped = true;
    readiness.stopping();
    if (cluster) {
      log::info("cluster: handing this node's shards off before leaving");
      if (Status s = cluster->leave(config.cluster.leave_timeout_ms); !s) log::warn(s.message());
    }
    if (http) http->stop();
    nats_watch.reset();
    if (ingress) ingress->stop();
    if (cluster) cluster->stop();
    if (plugin_sync) plugin_sync->stop();
    commit_subs.clear();
    if (plugins) plugins->stop_watching();
    if (runtime) runtime->shutdown();
    if (store) {
      // With the sqlite outbox, also publishes what it holds (store.hpp).
      if (Status s = store->flush(); !s) return Status(s.code(), "store flush: " + s.message());
    }
    return Status::ok();
  }
};

Host::Host(std::unique_ptr<Parts> parts) : p_(std::move(parts)) {}

Host::~Host() {
  if (p_ && p_->runtime) {
    if (Status s = p_->stop(); !s) log::error(s.message());
  }
}

Result<std::unique_ptr<Host>> Host::start(const HostConfig& config, StartPause pause) {
  HostSeams seams;
  seams.pause = std::move(pause);
  return start(config, std::move(seams));
}

Result<std::unique_ptr<Host>> Host::start(const HostConfig& config, HostSeams seams) {
  auto parts = std::make_unique<Parts>();
  parts->config = config;
  parts->seams = std::move(seams);
  for (Status (Parts::*step)() : {&Parts::lock_data, &Parts::connect_nats, &Parts::open_store, &Parts::load_plugins,
                                  &Parts::start_runtime, &Parts::watch_plugins, &Parts::start_cluster,
                                  &Parts::start_servers}) {
    if (Status s = (parts.get()->*step)(); !s) return s;
  }
  return std::unique_ptr<Host>(new Host(std::move(parts)));
}

Status Host::stop() { return p_->stop(); }
const HostConfig& Host::config() const { return p_->config; }
Runtime& Host::runtime() { return *p_->runtime; }
PluginRegistry& Host::registry() { return p_->registry; }
PluginManager& Host::plugins() { return *p_->plugins; }
Metrics& Host::metrics() { return p_->metrics; }
Journal& Host::store() { return *p_->store; }
Bus* Host::events_bus() { return p_->events_bus(); }
Status Host::restart_runtime() { return p_->restart_runtime(); }
ClusterNode* Host::cluster() { return p_->cluster.get(); }
HttpServer* Host::http() { return p_->http.get(); }

}  // namespace aether
