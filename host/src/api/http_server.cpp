#include "api/http_server.hpp"

#include <httplib.h>

#include <nlohmann/json.hpp>
#include <thread>

#include "api/admin_api.hpp"
#include "api/command_api.hpp"
#include "api/metrics.hpp"
#include "core/log.hpp"
#include "plugin/plugin.hpp"
#include "cluster/cluster.hpp"
#include "runtime/plugin_manager.hpp"
#include "runtime/runtime.hpp"

namespace aether {
namespace {

using json = nlohmann::json;

void send_json(httplib::Response& res, int status, const json& body) {
  res.status = status;
  res.set_content(body.dump(), "application/json");
}

void send_error(httplib::Response& res, int status, const std::string& code, const std::string& message,
                json extra = json::object()) {
  json e = {{"code", code}, {"message", message}};
  e.update(extra);
  send_json(res, status, {{"error", e}});
}

void send_status(httplib::Response& res, const Status& s) {
  send_error(res, http_status(s.code()), status_code_name(s.code()), s.message());
}

json event_json(const std::string& ns, const std::string& type, const std::string& id,
                const StoredEvent& e, bool with_time) {
  json payload = json::parse(e.payload, nullptr, false);
  json j = {{"id", event_id({ns, type, id}, e.version)},
            {"version", e.version},
            {"type", e.type},
            {"payload", payload.is_discarded() ? json(e.payload) : payload}};
  if (with_time) j["timestamp"] = e.timestamp_ms;
  return j;
}

// Parses a non-negative integer query parameter.
std::optional<uint64_t> query_uint(const httplib::Request& req, const char* name, uint64_t dflt,
                                   httplib::Response& res) {
  if (!req.has_param(name)) return dflt;
  const std::string v = req.get_param_value(name);
  char* end = nullptr;
  errno = 0;
  const unsigned long long x = std::strtoull(v.c_str(), &end, 10);
  if (v.empty() || *end != '\0' || errno != 0 || v[0] == '-') {
    send_error(res, 400, "invalid_argument",
               std::string("query parameter '") + name + "' must be a non-negative integer, got '" +
                   v.substr(0, 40) + "'");
    return std::nullopt;
  }
  return x;
}

const char* reason_code(int status) {
  switch (status) {
    case 400: return "bad_request";
    case 401: return "unauthorized";
    case 404: return "not_found";
    case 405: return "method_not_allowed";
    case 413: return "payload_too_large";
    case 414: return "uri_too_long";
    case 431: return "headers_too_large";
    default: return "http_error";
  }
}

}  // namespace

struct HttpServer::Impl {
  HttpOptions opts;
  Runtime& runtime;
  PluginRegistry& registry;
  Metrics& metrics;
  PluginManager* manager;
  ClusterNode* cluster;
  httplib::Server server;
  std::thread thread;
  int port = 0;
  std::atomic<bool> ready{true};
  std::atomic<bool> stopped{false};

  Impl(HttpOptions o, Runtime& rt, PluginRegistry& reg, Metrics& m, PluginManager* pm, ClusterNode* cl)
      : opts(std::move(o)), runtime(rt), registry(reg), metrics(m), manager(pm), cluster(cl) {}

  bool authorized(const httplib::Request& req) const {
    if (opts.bearer_token.empty()) return true;
    const std::string want = "Bearer " + opts.bearer_token;
    const std::string got = req.get_header_value("Authorization");
    if (got.size() != want.size()) return false;
    unsigned char diff = 0;
    for (size_t i = 0; i < got.size(); ++i) diff |= static_cast<unsigned char>(got[i] ^ want[i]);
    return diff == 0;
  }

  void routes() {
    server.set_payload_max_length(opts.max_body_bytes);
    // Headers and body go out in separate writes: without this, Nagle and
    // delayed ACKs add ~40 ms to every keep-alive request.
    server.set_tcp_nodelay(true);
    const uint32_t threads = opts.threads;
    server.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };

    server.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
      if (req.path == "/healthz" || req.path == "/readyz") return httplib::Server::HandlerResponse::Unhandled;
      if (!authorized(req)) {
        res.set_header("WWW-Authenticate", "Bearer");
        send_error(res, 401, "unauthorized",
                   req.has_header("Authorization") ? "the bearer token is not valid"
                                                   : "this host requires 'Authorization: Bearer <token>'");
        return httplib::Server::HandlerResponse::Handled;
      }
      return httplib::Server::HandlerResponse::Unhandled;
    });

    // Errors httplib produces itself (no route, body too large, URI too long)
    // get the same JSON shape as ours.
    server.set_error_handler([this](const httplib::Request& req, httplib::Response& res) {
      if (!res.body.empty()) return;
      std::string message;
      if (res.status == 404) {
        message = "no route for " + req.method + " " + req.path;
      } else if (res.status == 413) {
        message = "request body is larger than " + std::to_string(opts.max_body_bytes) + " bytes";
      } else if (res.status == 414) {
        message = "request URI is too long";
      } else {
        message = "HTTP error " + std::to_string(res.status);
      }
      send_error(res, res.status, reason_code(res.status), message);
    });

    server.set_exception_handler([](const httplib::Request&, httplib::Response& res,
                                    std::exception_ptr ep) {
      std::string what = "unknown error";
      try {
        std::rethrow_exception(ep);
      } catch (const std::exception& e) {
        what = e.what();
      } catch (...) {
      }
      log::error("http: handler failed: " + what);
      send_error(res, 500, "internal", what);
    });

    server.Post(R"(/v1/([^/]+)/actors/([^/]+)/(.*)/commands)",
                [this](const httplib::Request& req, httplib::Response& res) { command(req, res); });
    server.Post(R"(/v1/([^/]+)/actors/([^/]+)/(.*)/repair)", [this](const httplib::Request& req, httplib::Response& res) {
      const ApiReply r = repair_actor(runtime, req.matches[1], req.matches[2], req.matches[3], req.body);
      res.status = r.status;
      res.set_content(r.body, "application/json");
    });
    server.Get(R"(/v1/([^/]+)/actors/([^/]+)/(.*)/events)",
               [this](const httplib::Request& req, httplib::Response& res) { events(req, res); });
    server.Get(R"(/v1/([^/]+)/actors/([^/]+)/(.*))",
               [this](const httplib::Request& req, httplib::Response& res) { state(req, res); });
    server.Get("/v1/plugins", [this](const httplib::Request&, httplib::Response& res) { plugins(res); });
    server.Post(R"(/v1/plugins/([^/]+)/reload)",
                [this](const httplib::Request& req, httplib::Response& res) { reload(req, res); });
    server.Get("/v1/cluster", [this](const httplib::Request&, httplib::Response& res) {
      if (cluster != nullptr) {
        res.status = 200;
        return res.set_content(cluster->status_json(), "application/json");
      }
      send_json(res, 200,
                {{"mode", "single-node"},
                 {"epoch", 0},
                 {"leader", opts.node_id},
                 {"nodes", json::array({{{"id", opts.node_id}, {"self", true}}})},
                 {"migrations", json::array()}});
    });
    server.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
      res.set_content(metrics.render(), "text/plain; version=0.0.4");
    });
    server.Get("/healthz", [](const httplib::Request&, httplib::Response& res) {
      send_json(res, 200, {{"status", "ok"}});
    });
    server.Get("/readyz", [this](const httplib::Request&, httplib::Response& res) {
      if (ready.load()) {
        send_json(res, 200, {{"status", "ready"}});
      } else {
        send_error(res, 503, "unavailable", "the host is not ready (starting or shutting down)");
      }
    });
  }

  void command(const httplib::Request& req, httplib::Response& res) {
    const std::string ns = req.matches[1], type = req.matches[2], id = req.matches[3];
    Command c;
    ApiReply reply;
    if (parse_command_request(ns, type, id, req.body, req.get_header_value("Idempotency-Key"), c,
                              reply)) {
      reply = dispatch_command_sync(runtime, cluster, std::move(c));
    }
    res.status = reply.status;
    res.set_content(reply.body, "application/json");
  }

  void state(const httplib::Request& req, httplib::Response& res) {
    const std::string ns = req.matches[1], type = req.matches[2], id = req.matches[3];
    // A cluster node that does not own the actor reads it from the store:
    // its cached copy may be behind the owner's latest commit.
    const bool reload = cluster != nullptr && !cluster->serves(type, id);
    auto v = runtime.query_state(ns, type, id, reload);
    if (!v) return send_status(res, v.status());
    send_json(res, 200,
              {{"ns", ns}, {"type", type}, {"id", id}, {"version", v->version},
               {"state", json::parse(v->view)}});
  }

  void events(const httplib::Request& req, httplib::Response& res) {
    const std::string ns = req.matches[1], type = req.matches[2], id = req.matches[3];
    auto from = query_uint(req, "from", 1, res);
    if (!from) return;
    auto limit = query_uint(req, "limit", 1000, res);
    if (!limit) return;
    if (*limit == 0 || *limit > 10000) {
      return send_error(res, 400, "invalid_argument", "query parameter 'limit' must be 1..10000");
    }
    auto ev = runtime.events(ns, type, id, *from, *limit);
    if (!ev) return send_status(res, ev.status());
    json list = json::array();
    for (const auto& e : *ev) list.push_back(event_json(ns, type, id, e, true));
    send_json(res, 200, {{"ns", ns}, {"type", type}, {"id", id}, {"from", *from}, {"events", list}});
  }

  void reload(const httplib::Request& req, httplib::Response& res) {
    if (manager == nullptr) {
      return send_error(res, 501, "not_implemented", "this host does not reload plugins");
    }
    ReloadRequest r;
    r.plugin = req.matches[1];
    if (!req.body.empty()) {
      json body = json::parse(req.body, nullptr, false);
      if (body.is_discarded() || !body.is_object()) {
        return send_error(res, 400, "invalid_argument",
                          "request body must be a JSON object like {\"file\":\"path.so\"} or "
                          "{\"to\":\"previous\"}");
      }
      if (auto f = body.find("file"); f != body.end() && !f->is_null()) {
        if (!f->is_string()) return send_error(res, 400, "invalid_argument", "field 'file' must be a string");
        r.file = f->get<std::string>();
      }
      if (auto t = body.find("to"); t != body.end() && !t->is_null()) {
        if (*t != "previous") {
          return send_error(res, 400, "invalid_argument", "field 'to' only takes \"previous\"");
        }
        r.to_previous = true;
      }
    }
    auto rep = manager->reload(r);
    if (!rep) {
      const Status& s = rep.status();
      if (s.code() == StatusCode::kPluginError) {
        return send_error(res, 422, "plugin_refused", s.message());
      }
      return send_status(res, s);
    }
    send_json(res, 200,
              {{"plugin", rep->plugin},
               {"from_version", rep->from_version},
               {"to_version", rep->to_version},
               {"actors_migrated", rep->actors_migrated},
               {"via_snapshot", rep->via_snapshot},
               {"via_upgrade", rep->via_upgrade},
               {"via_replay", rep->via_replay},
               {"actors_dropped", rep->actors_dropped},
               {"pause_ms", rep->pause_ms}});
  }

  void plugins(httplib::Response& res) {
    json list = json::array();
    for (const auto& p : registry.plugins()) {
      json types = json::array();
      for (const auto& t : p->types()) {
        types.push_back({{"name", t->name()},
                         {"schema_version", t->schema_version()},
                         {"commands", t->commands()},
                         {"events", t->events()}});
      }
      list.push_back({{"name", p->name()},
                      {"version", p->version()},
                      {"path", p->source().string()},
                      {"abi", std::to_string(p->abi_major()) + "." + std::to_string(p->abi_minor())},
                      {"actor_types", types}});
    }
    send_json(res, 200, {{"plugins", list}});
  }
};

HttpServer::HttpServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

HttpServer::~HttpServer() { stop(); }

Result<std::unique_ptr<HttpServer>> HttpServer::start(const HttpOptions& options, Runtime& runtime,
                                                      PluginRegistry& registry, Metrics& metrics,
                                                      PluginManager* plugins, ClusterNode* cluster) {
  auto impl = std::make_unique<Impl>(options, runtime, registry, metrics, plugins, cluster);
  impl->routes();
  const std::string addr = options.host + ":" + std::to_string(options.port);
  if (options.port == 0) {
    impl->port = impl->server.bind_to_any_port(options.host);
    if (impl->port <= 0) return Status::unavailable("http: cannot listen on " + addr);
  } else {
    if (!impl->server.bind_to_port(options.host, options.port)) {
      return Status::unavailable("http: cannot listen on " + addr +
                                 " (address in use, or not an address of this machine)");
    }
    impl->port = options.port;
  }
  Impl* raw = impl.get();
  impl->thread = std::thread([raw] { raw->server.listen_after_bind(); });
  // httplib's stop() is a no-op until the listen loop runs: wait for it, or
  // a stop() right after start() would leave the server running.
  for (int i = 0; i < 5000 && !impl->server.is_running(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return std::unique_ptr<HttpServer>(new HttpServer(std::move(impl)));
}

int HttpServer::port() const { return impl_->port; }

void HttpServer::set_ready(bool ready) { impl_->ready.store(ready); }

void HttpServer::stop() {
  if (impl_->stopped.exchange(true)) return;
  impl_->ready.store(false);
  impl_->server.stop();
  if (impl_->thread.joinable()) impl_->thread.join();
}

}  // namespace aether
