// aether-host: loads the configuration, the store, the plugins and the
// runtime, serves the HTTP API, and shuts down cleanly on SIGINT/SIGTERM
// (stops accepting, finishes queued commands, flushes the store).
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <mutex>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <iostream>

#include "api/http_server.hpp"
#include "api/nats_ingress.hpp"
#include "bus/nats_bus.hpp"
#include "cluster/cluster.hpp"
#include "nats/connection.hpp"
#include "store/jetstream_store.hpp"
#include "api/metrics.hpp"
#include "config/config.hpp"
#include "core/dir_lock.hpp"
#include "core/log.hpp"
#include "plugin/plugin.hpp"
#include "runtime/plugin_manager.hpp"
#include "runtime/runtime.hpp"
#include "store/store.hpp"

namespace {

using namespace aether;

constexpr const char* kVersion = "0.1.0";

RuntimeOptions runtime_options(const HostConfig& c) {
  RuntimeOptions o;
  o.namespaces = c.node.namespaces;
  o.node_id = c.node.id;
  o.workers = c.actors.workers;
  o.io_threads = c.actors.io_threads;
  o.max_active_actors = c.actors.max_active;
  o.idle_timeout_ms = c.actors.idle_timeout_ms;
  o.mailbox_capacity = c.actors.mailbox_size;
  o.conflict_retries = c.actors.conflict_retries;
  o.call_timeout_ms = c.actors.call_timeout_ms;
  o.max_stuck_calls = c.actors.max_stuck_calls;
  o.snapshot = {c.actors.snapshot.every, c.actors.snapshot.keep};
  o.idempotency = {c.actors.idempotency.retention_keys, c.actors.idempotency.retention_age_ms};
  for (const auto& [name, t] : c.actors.types) {
    ActorTypeOptions to;
    if (t.snapshot) to.snapshot = SnapshotPolicy{t.snapshot->every, t.snapshot->keep};
    to.idle_timeout_ms = t.idle_timeout_ms;
    to.mailbox_capacity = t.mailbox_size;
    to.call_timeout_ms = t.call_timeout_ms;
    o.types[name] = to;
  }
  return o;
}

ClusterOptions cluster_options(const HostConfig& c, const PluginRegistry& registry) {
  ClusterOptions o;
  o.node_id = c.node.id;
  o.bucket_prefix = c.cluster.bucket_prefix;
  o.shards = c.cluster.shards;
  o.vnodes = c.cluster.vnodes;
  o.node_ttl_ms = c.cluster.node_ttl_ms;
  o.heartbeat_ms = c.cluster.heartbeat_ms;
  o.max_moves = c.cluster.max_moves;
  o.handoff_timeout_ms = c.cluster.handoff_timeout_ms;
  o.route_wait_ms = c.cluster.route_wait_ms;
  o.forward_timeout_ms = c.cluster.forward_timeout_ms;
  o.replicas = static_cast<int>(c.cluster.replicas);
  for (const auto& p : registry.plugins()) o.plugins.push_back(p->name() + "@" + p->version());
  return o;
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
  metrics.add_counter("aether_cluster_migrations_total", "Migrations finished while this node led",
                      [cn] { return static_cast<double>(cn->figures().migrations_done); });
  metrics.add_counter("aether_cluster_migrations_failed_total", "Migrations re-planned while this node led",
                      [cn] { return static_cast<double>(cn->figures().migrations_failed); });
}

// Runs `attempt` again while it fails with kUnavailable, for up to `wait_ms`:
// at start, NATS may not be reachable yet or a NATS cluster may still be
// electing its JetStream leader. Every failed attempt is logged. A SIGINT or
// SIGTERM (blocked in this thread, see serve) ends the wait.
template <class F>
auto retry_at_start(int64_t wait_ms, const sigset_t& signals, const std::string& what, F attempt) -> decltype(attempt()) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(wait_ms);
  int64_t pause_ms = 200;
  for (int n = 1;; ++n) {
    auto r = attempt();
    if (r || r.status().code() != StatusCode::kUnavailable || std::chrono::steady_clock::now() >= deadline) return r;
    log::warn(what + " not ready (attempt " + std::to_string(n) + "): " + r.status().message() + "; retrying for up to " +
              std::to_string(wait_ms) + " ms in all (nats.startup_wait)");
    timespec ts{pause_ms / 1000, (pause_ms % 1000) * 1000000};
    const int sig = sigtimedwait(&signals, nullptr, &ts);
    if (sig > 0) {
      return Status::unavailable(what + ": stopped by signal " + std::to_string(sig) + " while waiting for NATS (" +
                                 r.status().message() + ")");
    }
    pause_ms = std::min<int64_t>(pause_ms * 2, 2000);
  }
}

// Holds the data directory for the process's life, so that a second host
// on the same data fails at start; null when the host keeps no local data.
Result<std::unique_ptr<DirLock>> lock_data_directory(const HostConfig& cfg) {
  const std::string dir = cfg.data_directory();
  if (dir.empty()) return std::unique_ptr<DirLock>();
  auto lock = DirLock::acquire(dir);
  if (lock) log::info("data directory " + dir + " locked (" + (*lock)->path() + ")");
  return lock;
}

// What /readyz answers: 200 while NATS (when used) is connected and the host
// is not stopping; 503 from the first moment of a shutdown on, while the
// host still answers what it receives. Called from cnats' thread and main.
class Readiness {
 public:
  explicit Readiness(HttpServer* http) : http_(http) {}
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
  HttpServer* http_;
  bool nats_up_ = true;
  bool stopping_ = false;
};

int fail(const std::string& message) {
  log::error(message);
  return 1;
}

int serve(const HostConfig& cfg) {
  if (!log::configure(cfg.log.level, cfg.log.format)) return fail("bad log settings");
  auto data_lock = lock_data_directory(cfg);  // first: nothing may touch the data of another host
  if (!data_lock) return fail(data_lock.status().message());

  // Signals are taken by sigwait below; block them before any thread starts.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  Metrics metrics;
  std::unique_ptr<NatsConnection> nats;
  if (cfg.nats.enabled) {
    NatsOptions no;
    no.servers = cfg.nats.servers;
    no.name = cfg.nats.name + " " + cfg.node.id;
    no.user = cfg.nats.user;
    no.password = cfg.nats.password;
    no.token = cfg.nats.token;
    no.credentials_file = cfg.nats.credentials;
    no.tls_ca = cfg.nats.tls_ca;
    no.tls_cert = cfg.nats.tls_cert;
    no.tls_key = cfg.nats.tls_key;
    no.max_reconnect = static_cast<int>(cfg.nats.max_reconnect);
    no.reconnect_wait_ms = cfg.nats.reconnect_wait_ms;
    no.connect_timeout_ms = cfg.nats.connect_timeout_ms;
    no.request_timeout_ms = cfg.nats.request_timeout_ms;
    auto c = retry_at_start(cfg.nats.startup_wait_ms, signals, "nats", [&] { return NatsConnection::connect(no); });
    if (!c) return fail(c.status().message());
    nats = std::move(c).value();
    std::string servers;
    for (const auto& s : cfg.nats.servers) servers += (servers.empty() ? "" : ", ") + s;
    log::info("connected to NATS at " + servers);
  }
  // The store's commit callback wakes the relay, which lives shorter than the
  // store (declared after it) and so is reached through this pointer.
  std::atomic<OutboxRelay*> relay_ptr{nullptr};
  std::unique_ptr<Store> store;
  if (cfg.store.backend == "jetstream") {
    JetStreamOptions jo;
    jo.namespaces = cfg.node.namespaces;
    jo.stream_prefix = cfg.store.js_stream_prefix;
    jo.replicas = static_cast<int>(cfg.store.js_replicas);
    jo.storage = cfg.store.js_storage;
    jo.max_age_ms = cfg.store.js_max_age_ms;
    jo.max_bytes = cfg.store.js_max_bytes;
    jo.duplicate_window_ms = cfg.store.js_duplicate_window_ms;
    jo.node_id = cfg.node.id;
    jo.publishers = cfg.store.js_publishers;
    auto s = retry_at_start(cfg.nats.startup_wait_ms, signals, "jetstream store",
                            [&] { return open_jetstream_store(*nats, jo); });
    if (!s) return fail("store: " + s.status().message());
    store = std::move(s).value();
  } else if (cfg.store.backend == "memory") {
    store = make_memory_store();
  } else {
    SqliteOptions so;
    so.path = cfg.store.sqlite_path;
    so.synchronous = cfg.store.sqlite_synchronous;
    so.max_batch = cfg.store.sqlite_max_batch;
    // With NATS, commits also go to an outbox that a relay broadcasts.
    so.outbox = nats != nullptr;
    so.node_id = cfg.node.id;
    so.on_commit_batch = [&metrics, &relay_ptr](size_t n) {
      metrics.on_commit_batch(n);
      if (OutboxRelay* r = relay_ptr.load()) r->notify();
    };
    auto s = open_sqlite_store(so);
    if (!s) return fail("store: " + s.status().message());
    store = std::move(s).value();
  }

  std::unique_ptr<OutboxRelay> relay;
  struct ClearRelay {
    std::atomic<OutboxRelay*>& p;
    ~ClearRelay() { p.store(nullptr); }
  } clear_relay{relay_ptr};  // runs before `relay` is destroyed
  std::unique_ptr<Bus> bus;
  if (nats) {
    bus = std::make_unique<NatsBus>(*nats, cfg.node.id);
    if (auto* outbox = dynamic_cast<Outbox*>(store.get()); outbox != nullptr && cfg.store.backend == "sqlite") {
      relay = std::make_unique<OutboxRelay>(*nats, *outbox);
      relay_ptr.store(relay.get());
      log::info("broadcasting committed events to NATS from the sqlite outbox");
    }
  }

  PluginRegistry registry;
  PluginManager plugins(registry, {cfg.plugin_copy_dir(), cfg.plugin_load_dirs()});
  for (const auto& file : cfg.plugin_files()) {
    auto p = plugins.load(file);
    if (!p) return fail(p.status().message());
    std::string types;
    for (const auto& t : (*p)->types()) types += (types.empty() ? "" : ", ") + t->name();
    log::info("loaded plugin " + (*p)->name() + " " + (*p)->version() + " (" + types + ") from " +
              file);
  }
  if (registry.plugins().empty()) log::warn("no plugin loaded: every command will be refused");
  metrics.set_known_types([&registry](std::string_view t) { return registry.plugin_for_type(t) != nullptr; });

  auto rt = Runtime::create(runtime_options(cfg), registry, *store, *store, bus.get(), &metrics);
  if (!rt) return fail("runtime: " + rt.status().message());
  Runtime& runtime = **rt;
  SwapOptions swap;
  swap.allow_breaking = cfg.plugins.allow_breaking_reload;
  swap.pause_timeout_ms = cfg.plugins.swap_pause_timeout_ms;
  plugins.attach(&runtime, swap, store.get(), cfg.plugins.shadow_check);
  if (cfg.plugins.watch) {
    plugins.start_watching(std::chrono::milliseconds(std::max<int64_t>(50, cfg.plugins.watch_interval_ms)));
    log::info("watching plugin files for changes every " + std::to_string(cfg.plugins.watch_interval_ms) + " ms");
  }
  metrics.set_active_actors_source([&runtime] { return static_cast<double>(runtime.stats().active_actors); });

  std::unique_ptr<ClusterNode> cluster;
  if (cfg.cluster.enabled) {
    auto c = retry_at_start(cfg.nats.startup_wait_ms, signals, "cluster",
                            [&] { return ClusterNode::start(cluster_options(cfg, registry), *nats, runtime); });
    if (!c) return fail(c.status().message());
    cluster = std::move(c).value();
    add_cluster_metrics(metrics, *cluster);
  }

  std::unique_ptr<HttpServer> http;
  if (cfg.api.http_enabled) {
    auto addr = parse_listen_address(cfg.api.http_listen);
    HttpOptions ho;
    ho.host = addr->first;
    ho.port = addr->second;
    ho.max_body_bytes = cfg.api.max_body_bytes;
    ho.bearer_token = cfg.api.bearer_token;
    ho.threads = cfg.api.http_threads;
    ho.node_id = cfg.node.id;
    ho.header_timeout_ms = cfg.api.header_timeout_ms;
    ho.idle_timeout_ms = cfg.api.idle_timeout_ms;
    ho.request_timeout_ms = cfg.api.request_timeout_ms;
    ho.max_connections = cfg.api.max_connections;
    ho.max_header_bytes = cfg.api.max_header_bytes;
    ho.max_header_count = cfg.api.max_header_count;
    ho.allowed_origins = cfg.api.allowed_origins;
    ho.max_json_depth = cfg.api.max_json_depth;
    auto h = HttpServer::start(ho, runtime, registry, metrics, &plugins, cluster.get());
    if (!h) return fail(h.status().message());
    http = std::move(h).value();
  }
  Readiness readiness(http.get());
  std::unique_ptr<NatsConnection::StatusWatch> nats_watch;
  if (nats) nats_watch = nats->watch_status([&readiness](bool connected) { readiness.nats(connected); });

  // Other nodes' EventStored notifications keep this node's caches current.
  std::vector<std::unique_ptr<Subscription>> stored_subs;
  if (bus) {
    auto* cache = dynamic_cast<VersionCache*>(store.get());
    for (const auto& ns : cfg.node.namespaces) {
      stored_subs.push_back(bus->subscribe("aether." + ns + ".stored.>", [&runtime, cache](const Message& m) {
        const auto n = parse_stored_notification(m.data);
        if (!n) return;
        if (cache != nullptr) cache->note_version(n->first, n->second);
        runtime.note_remote_commit(n->first, n->second);
      }));
    }
  }

  std::unique_ptr<NatsIngress> ingress;
  if (nats && (cfg.nats.ingress || cluster)) {
    auto in = NatsIngress::start(*nats, runtime, cfg.node.namespaces, cluster.get(), cfg.node.id,
                                 cfg.api.max_json_depth);
    if (!in) return fail(in.status().message());
    ingress = std::move(in).value();
  }

  std::string nss;
  for (const auto& ns : cfg.node.namespaces) nss += (nss.empty() ? "" : ", ") + ns;
  log::info("aether-host " + std::string(kVersion) + " node " + cfg.node.id + " (namespaces: " +
            nss + ", store: " + cfg.store.backend +
            (cfg.store.backend == "sqlite" ? " " + cfg.store.sqlite_path : "") + ", config: " +
            cfg.source + ")");
  if (http) {
    const auto addr = parse_listen_address(cfg.api.http_listen);
    log::info("listening on http://" + addr->first + ":" + std::to_string(http->port()));
  }

  int sig = 0;
  sigwait(&signals, &sig);
  log::info(std::string("received ") + (sig == SIGINT ? "SIGINT" : "SIGTERM") +
            ": stopping (finishing queued commands, flushing the store)");
  // /readyz says 503 first; the host keeps answering (a cluster node runs or
  // forwards every command) until its shards are handed off.
  readiness.stopping();
  if (cluster) {
    log::info("cluster: handing this node's shards off before leaving");
    if (Status s = cluster->leave(cfg.cluster.leave_timeout_ms); !s) log::warn(s.message());
  }
  if (http) http->stop();
  nats_watch.reset();
  if (ingress) ingress->stop();
  if (cluster) cluster->stop();
  stored_subs.clear();
  plugins.stop_watching();
  runtime.shutdown();
  if (Status s = store->flush(); !s) return fail("store flush: " + s.message());
  if (relay && !relay->drain(2000)) {
    log::warn("the outbox still holds commits NATS has not taken; they are broadcast at the next start");
  }
  const auto st = runtime.stats();
  log::info("stopped cleanly after " + std::to_string(st.commands_ok) + " accepted commands");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"aether-host: a runtime for event-sourced actors"};
  std::string config_file;
  std::string check_file;
  bool show_version = false;
  app.add_option("--config", config_file,
                 "YAML configuration file (default: the embedded config/aether.yaml)");
  app.add_option("--check-config", check_file, "validate FILE, print what is wrong, and exit");
  app.add_flag("--version", show_version, "print the version and exit");
  CLI11_PARSE(app, argc, argv);

  if (show_version) {
    std::printf("aether-host %s (plugin ABI %d.%d)\n", kVersion, AETHER_ABI_MAJOR, AETHER_ABI_MINOR);
    return 0;
  }
  if (!check_file.empty()) {
    auto c = load_config_file(check_file);
    if (!c) {
      std::fprintf(stderr, "%s\n", c.status().message().c_str());
      return 1;
    }
    std::printf("%s: ok\n", check_file.c_str());
    return 0;
  }
  auto cfg = config_file.empty() ? parse_config(embedded_default_config(), "<embedded config/aether.yaml>")
                                 : load_config_file(config_file);
  if (!cfg) {
    std::fprintf(stderr, "aether-host: %s\n", cfg.status().message().c_str());
    return 1;
  }
  return serve(*cfg);
}
