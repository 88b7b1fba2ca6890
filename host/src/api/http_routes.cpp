#include "api/http_routes.hpp"

#include <cerrno>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <optional>
#include <regex>
#include <string_view>

#include "api/admin_api.hpp"
#include "api/metrics.hpp"
#include "api/reply_json.hpp"
#include "cluster/cluster.hpp"
#include "core/log.hpp"
#include "plugin/plugin.hpp"
#include "runtime/plugin_manager.hpp"
#include "runtime/runtime.hpp"

namespace aether {
namespace {

using json = nlohmann::json;

ApiReply json_reply(int status, const json& body) { return {status, body.dump()}; }

ApiResponse internal_error(const std::string& what) {
  log::error("http: handler failed: " + what);
  return {http_error_reply(500, "internal", what)};
}

json event_with_time(const std::string& ns, const std::string& type, const std::string& id,
                     const StoredEvent& e) {
  json j = event_json({ns, type, id}, e);
  j["timestamp"] = e.timestamp_ms;
  return j;
}

// A non-negative integer query parameter, or an error reply.
std::optional<uint64_t> query_uint(const ApiRequest& req, const char* name, uint64_t dflt,
                                   ApiReply& error) {
  const std::string* v = nullptr;
  for (const auto& [k, value] : req.query) {
    if (k == name) {
      v = &value;
      break;
    }
  }
  if (v == nullptr) return dflt;
  char* end = nullptr;
  errno = 0;
  const unsigned long long x = std::strtoull(v->c_str(), &end, 10);
  if (v->empty() || *end != '\0' || errno != 0 || (*v)[0] == '-') {
    error = http_error_reply(400, "invalid_argument",
                             std::string("query parameter '") + name +
                                 "' must be a non-negative integer, got '" + v->substr(0, 40) + "'");
    return std::nullopt;
  }
  return x;
}

enum class Kind { kCommand, kBlocking, kQuick };

struct Route {
  const char* method;
  std::regex pattern;
  Kind kind;
  const char* name;
};

const std::vector<Route>& route_table() {
  static const std::vector<Route> table = {
      {"POST", std::regex(R"(/v1/([^/]+)/actors/([^/]+)/(.*)/commands)"), Kind::kCommand, "command"},
      {"POST", std::regex(R"(/v1/([^/]+)/actors/([^/]+)/(.*)/repair)"), Kind::kBlocking, "repair"},
      {"GET", std::regex(R"(/v1/([^/]+)/actors/([^/]+)/(.*)/events)"), Kind::kBlocking, "events"},
      {"GET", std::regex(R"(/v1/([^/]+)/actors/([^/]+)/(.*))"), Kind::kBlocking, "state"},
      {"GET", std::regex("/v1/plugins"), Kind::kQuick, "plugins"},
      {"POST", std::regex(R"(/v1/plugins/([^/]+)/reload)"), Kind::kBlocking, "reload"},
      {"POST", std::regex(R"(/v1/plugins/([^/]+)/promote)"), Kind::kBlocking, "promote"},
      {"GET", std::regex("/v1/cluster"), Kind::kQuick, "cluster"},
      {"GET", std::regex("/metrics"), Kind::kQuick, "metrics"},
      {"GET", std::regex("/healthz"), Kind::kQuick, "healthz"},
      {"GET", std::regex("/readyz"), Kind::kQuick, "readyz"},
  };
  return table;
}

}  // namespace

bool match_command_path(const std::string& path, std::vector<std::string>& m) {
  constexpr std::string_view kPrefix = "/v1/", kActors = "/actors/", kSuffix = "/commands";
  std::string_view s(path);
  if (!s.starts_with(kPrefix)) return false;
  s.remove_prefix(kPrefix.size());
  const size_t ns_end = s.find('/');
  if (ns_end == 0 || ns_end == std::string_view::npos) return false;
  const std::string_view ns = s.substr(0, ns_end);
  s.remove_prefix(ns_end);
  if (!s.starts_with(kActors)) return false;
  s.remove_prefix(kActors.size());
  const size_t type_end = s.find('/');
  if (type_end == 0 || type_end == std::string_view::npos) return false;
  const std::string_view type = s.substr(0, type_end);
  s.remove_prefix(type_end + 1);
  if (!s.ends_with(kSuffix)) return false;
  const std::string_view id = s.substr(0, s.size() - kSuffix.size());
  if (id.find_first_of("\r\n") != std::string_view::npos) return false;
  m = {path, std::string(ns), std::string(type), std::string(id)};
  return true;
}

namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

ApiReply http_error_reply(int status, const std::string& code, const std::string& message) {
  return error_reply(status, code, message);
}

std::string url_decode(const std::string& s, bool plus_is_space) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && hex_value(s[i + 1]) >= 0 && hex_value(s[i + 2]) >= 0) {
      out.push_back(static_cast<char>(hex_value(s[i + 1]) * 16 + hex_value(s[i + 2])));
      i += 2;
    } else if (s[i] == '+' && plus_is_space) {
      out.push_back(' ');
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

void split_target(const std::string& target, std::string& path,
                  std::vector<std::pair<std::string, std::string>>& query) {
  const size_t q = target.find('?');
  path = url_decode(target.substr(0, q), false);
  if (q == std::string::npos) return;
  const std::string qs = target.substr(q + 1);
  size_t start = 0;
  while (start <= qs.size()) {
    size_t amp = qs.find('&', start);
    if (amp == std::string::npos) amp = qs.size();
    const std::string part = qs.substr(start, amp - start);
    if (!part.empty()) {
      const size_t eq = part.find('=');
      query.emplace_back(url_decode(part.substr(0, eq), true),
                         eq == std::string::npos ? "" : url_decode(part.substr(eq + 1), true));
    }
    start = amp + 1;
  }
}

ApiReply state_reply(Runtime& runtime, ClusterNode* cluster, const std::string& ns,
                     const std::string& type, const std::string& id) {
  // A cluster node that does not own the actor reads it from the store:
  // its cached copy may be behind the owner's latest commit.
  const bool reload = cluster != nullptr && !cluster->serves(type, id);
  auto v = runtime.query_state(ns, type, id, reload);
  if (!v) return error_reply(v.status());
  return json_reply(200, {{"ns", ns}, {"type", type}, {"id", id}, {"version", v->version},
                          {"state", json::parse(v->view)}});
}

ApiReply events_reply(Runtime& runtime, const std::string& ns, const std::string& type,
                      const std::string& id, const ApiRequest& request) {
  ApiReply error;
  auto from = query_uint(request, "from", 1, error);
  if (!from) return error;
  auto limit = query_uint(request, "limit", 1000, error);
  if (!limit) return error;
  if (*limit == 0 || *limit > 10000) {
    return http_error_reply(400, "invalid_argument", "query parameter 'limit' must be 1..10000");
  }
  auto ev = runtime.events(ns, type, id, *from, *limit);
  if (!ev) return error_reply(ev.status());
  json list = json::array();
  for (const auto& e : *ev) list.push_back(event_with_time(ns, type, id, e));
  return json_reply(200, {{"ns", ns}, {"type", type}, {"id", id}, {"from", *from}, {"events", list}});
}

ApiReply cluster_reply(ClusterNode* cluster, const std::string& node_id) {
  if (cluster != nullptr) return {200, cluster->status_json()};
  return json_reply(200, {{"mode", "single-node"},
                          {"epoch", 0},
                          {"leader", node_id},
                          {"nodes", json::array({{{"id", node_id}, {"self", true}}})},
                          {"migrations", json::array()}});
}

std::string ApiRoutes::methods_for(const std::string& path) const {
  // The console's files and the event stream (served by the connection).
  if (is_console_path(path)) return "GET, HEAD";
  if (event_stream_namespace(path)) return "GET";
  std::string get, post;
  for (const auto& r : route_table()) {
    if (!std::regex_match(path, r.pattern)) continue;
    if (std::string(r.method) == "GET") get = "GET, HEAD";
    if (std::string(r.method) == "POST") post = "POST";
  }
  if (!get.empty() && !post.empty()) return get + ", " + post;
  return get + post;
}

ApiResponse ApiRoutes::quick(const std::string& route, const ApiRequest& req,
                             const std::vector<std::string>& m) {
  if (route == "state") return {state_reply(d_.runtime, d_.cluster, m[1], m[2], m[3])};
  if (route == "events") return {events_reply(d_.runtime, m[1], m[2], m[3], req)};
  if (route == "repair") return {repair_actor(d_.runtime, m[1], m[2], m[3], req.body)};
  if (route == "reload") return {reload_reply(d_.manager, m[1], req.body, d_.max_json_depth)};
  if (route == "promote") return {promote_reply(d_.manager, m[1], req.body, d_.max_json_depth)};
  if (route == "plugins") return {plugins_reply(d_.registry, d_.runtime.namespaces())};
  if (route == "cluster") return {cluster_reply(d_.cluster, d_.node_id)};
  if (route == "metrics") return {{200, d_.metrics.render()}, "text/plain; version=0.0.4"};
  if (route == "healthz") return {json_reply(200, {{"status", "ok"}})};
  if (d_.ready == nullptr || d_.ready->load()) return {json_reply(200, {{"status", "ready"}})};
  return {http_error_reply(503, "unavailable", "the host is not ready (starting or shutting down)")};
}

void ApiRoutes::command(ApiRequest& req, const std::vector<std::string>& m, Done& done) {
  Command c;
  ApiReply reply;
  if (!parse_command_request(m[1], m[2], m[3], req.body, req.idempotency_key, c, reply, d_.max_json_depth)) {
    return done({std::move(reply)});
  }
  dispatch_command(d_.runtime, d_.cluster, std::move(c), RouteTrail{},
                   [done](ApiReply r) { done({std::move(r)}); });
}

void ApiRoutes::handle(ApiRequest req, Done done) {
  std::optional<ApiResponse> now;
  try {
    const std::string method = req.method == "HEAD" ? "GET" : req.method;
    if (method == "GET" && is_console_path(req.path)) return done(console_reply(req.path));
    if (std::vector<std::string> m; method == "POST" && match_command_path(req.path, m)) {
      return command(req, m, done);
    }
    for (const auto& r : route_table()) {
      std::smatch sm;
      if (method != r.method || !std::regex_match(req.path, sm, r.pattern)) continue;
      std::vector<std::string> m(sm.begin(), sm.end());
      if (r.kind == Kind::kQuick) {
        now = quick(r.name, req, m);
      } else if (r.kind == Kind::kCommand) {
        return command(req, m, done);
      } else {
        auto shared = std::make_shared<ApiRequest>(std::move(req));
        return d_.run_blocking([this, name = std::string(r.name), shared, m, done] {
          ApiResponse res;
          try {
            res = quick(name, *shared, m);
          } catch (const std::exception& e) {
            res = internal_error(e.what());
          } catch (...) {
            res = internal_error("unknown error");
          }
          done(std::move(res));
        });
      }
      break;
    }
    if (!now) {
      if (std::string allow = methods_for(req.path); !allow.empty()) {
        now = ApiResponse{http_error_reply(405, "method_not_allowed",
                                           req.method + " is not allowed on " + req.path +
                                               " (allowed: " + allow + ")"),
                          "application/json", allow};
      } else {
        now = ApiResponse{http_error_reply(404, "not_found", "no route for " + req.method + " " + req.path)};
      }
    }
  } catch (const std::exception& e) {
    now = internal_error(e.what());
  } catch (...) {
    now = internal_error("unknown error");
  }
  if (now) done(std::move(*now));
}

}  // namespace aether
