// The plugin routes: GET /v1/plugins, POST /v1/plugins/{name}/reload and
// POST /v1/plugins/{name}/promote (docs/api.md).
#include <algorithm>
#include <nlohmann/json.hpp>
#include <optional>

#include "api/http_routes.hpp"
#include "api/reply_json.hpp"
#include "core/names.hpp"
#include "plugin/plugin.hpp"
#include "runtime/plugin_manager.hpp"

namespace aether {
namespace {

using json = nlohmann::json;

constexpr size_t kMaxNamespacesPerRequest = 256;

ApiReply json_reply(int status, const json& body) { return {status, body.dump()}; }

ApiReply bad_request(const std::string& message) { return http_error_reply(400, "invalid_argument", message); }

json version_json(const Plugin& p, bool main, const std::vector<std::string>& namespaces) {
  return {{"version", p.version()}, {"path", p.source().string()}, {"sha256", p.sha256()},
          {"loaded_by", p.loaded_by()}, {"main", main}, {"namespaces", namespaces}};
}

// Which version serves which namespace: the main version first, then one
// entry per version of its own, with the namespaces each serves.
json versions_json(PluginRegistry& registry, const Plugin& main, const std::vector<std::string>& served) {
  const auto own = registry.namespace_versions(main.name());
  std::vector<std::string> on_main;
  for (const auto& ns : served) {
    if (own.count(ns) == 0) on_main.push_back(ns);
  }
  json out = json::array({version_json(main, true, on_main)});
  std::vector<const Plugin*> seen;
  for (const auto& [ns, p] : own) {
    if (std::find(seen.begin(), seen.end(), p.get()) != seen.end()) continue;
    seen.push_back(p.get());
    std::vector<std::string> names;
    for (const auto& [n, q] : own) {
      if (q == p) names.push_back(n);
    }
    out.push_back(version_json(*p, false, names));
  }
  return out;
}

// Reads "namespaces": a non-empty array of namespace names.
std::optional<ApiReply> parse_namespaces(const json& j, std::vector<std::string>& out) {
  auto n = j.find("namespaces");
  if (n == j.end() || n->is_null()) return std::nullopt;
  if (!n->is_array() || n->empty() || n->size() > kMaxNamespacesPerRequest) {
    return bad_request("field 'namespaces' must be an array of 1.." + std::to_string(kMaxNamespacesPerRequest) +
                       " namespace names");
  }
  for (const auto& e : *n) {
    if (!e.is_string()) return bad_request("field 'namespaces' must hold strings only");
    const std::string ns = e.get<std::string>();
    if (std::string why = check_name(ns); !why.empty()) {
      return bad_request("field 'namespaces': invalid namespace " + quote_for_message(ns) + ": " + why);
    }
    out.push_back(ns);
  }
  return std::nullopt;
}

// Reads the fields a reload and a promote share into `r`.
std::optional<ApiReply> parse_check_fields(const json& j, ReloadRequest& r) {
  if (auto d = j.find("dry_run"); d != j.end() && !d->is_null()) {
    if (!d->is_boolean()) return bad_request("field 'dry_run' must be true or false");
    r.dry_run = d->get<bool>();
  }
  if (auto a = j.find("accept"); a != j.end() && !a->is_null()) {
    if (*a != "differences") return bad_request("field 'accept' only takes \"differences\"");
    r.accept_differences = true;
  }
  return std::nullopt;
}

// Reads the reload body's fields into `r`; an error reply when one is wrong.
std::optional<ApiReply> parse_reload_body(const std::string& body, ReloadRequest& r) {
  json j = json::parse(body, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    return bad_request("request body must be a JSON object like {\"file\":\"path.so\"} or {\"to\":\"previous\"}");
  }
  if (auto f = j.find("file"); f != j.end() && !f->is_null()) {
    if (!f->is_string()) return bad_request("field 'file' must be a string");
    r.file = f->get<std::string>();
  }
  if (auto t = j.find("to"); t != j.end() && !t->is_null()) {
    if (*t != "previous") return bad_request("field 'to' only takes \"previous\"");
    r.to_previous = true;
  }
  if (auto bad = parse_namespaces(j, r.namespaces)) return bad;
  return parse_check_fields(j, r);
}

std::optional<ApiReply> parse_promote_body(const std::string& body, ReloadRequest& r) {
  json j = json::parse(body, nullptr, false);
  auto from = j.is_object() ? j.find("from") : j.end();
  if (j.is_discarded() || !j.is_object() || from == j.end() || !from->is_string()) {
    return bad_request("request body must be a JSON object like {\"from\":\"staging\"}: the namespace "
                       "whose version every namespace moves to");
  }
  r.promote_from = from->get<std::string>();
  if (std::string why = check_name(r.promote_from); !why.empty()) {
    return bad_request("field 'from': invalid namespace " + quote_for_message(r.promote_from) + ": " + why);
  }
  return parse_check_fields(j, r);
}

// Runs `r` and answers with the swap's figures and the shadow check's report.
ApiReply run_reload(PluginManager& manager, const ReloadRequest& r) {
  ReloadCheck check;
  auto rep = manager.reload(r, &check);
  if (!rep) {
    const Status& s = rep.status();
    if (check.refused) {
      return error_reply(422, "shadow_mismatch", s.message(), {{"report", json::parse(check.report.to_json())}});
    }
    if (s.code() == StatusCode::kPluginError) return http_error_reply(422, "plugin_refused", s.message());
    return error_reply(s);
  }
  json out = {{"plugin", rep->plugin}, {"from_version", rep->from_version}, {"to_version", rep->to_version}};
  if (!r.namespaces.empty()) out["namespaces"] = r.namespaces;
  if (!r.promote_from.empty()) out["promoted_from"] = r.promote_from;
  if (!check.dry_run) {
    out.update({{"actors_migrated", rep->actors_migrated},
                {"via_snapshot", rep->via_snapshot},
                {"via_upgrade", rep->via_upgrade},
                {"via_replay", rep->via_replay},
                {"actors_dropped", rep->actors_dropped},
                {"pause_ms", rep->pause_ms}});
  }
  out["dry_run"] = check.dry_run;
  if (check.ran) {
    out["shadow"] = json::parse(check.report.to_json());
    out["accepted_differences"] = check.accepted_differences;
  }
  return json_reply(200, out);
}

}  // namespace

ApiReply plugins_reply(PluginRegistry& registry, const std::vector<std::string>& namespaces) {
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
                    {"sha256", p->sha256()},
                    {"loaded_by", p->loaded_by()},
                    {"abi", std::to_string(p->abi_major()) + "." + std::to_string(p->abi_minor())},
                    {"actor_types", types},
                    {"versions", versions_json(registry, *p, namespaces)},
                    {"refused_namespaces", registry.refusals(p->name())}});
  }
  return json_reply(200, {{"plugins", list}});
}

namespace {

// A swap request's reply: the body checked and parsed by `parse`, then run.
template <class Parse>
ApiReply swap_reply(PluginManager* manager, const std::string& plugin, const std::string& body,
                    size_t max_json_depth, Parse parse) {
  if (manager == nullptr) return http_error_reply(501, "not_implemented", "this host does not reload plugins");
  if (auto bad = json_input_error(body, max_json_depth, "request body")) return std::move(*bad);
  ReloadRequest r;
  r.plugin = plugin;
  if (auto bad = parse(body, r)) return std::move(*bad);
  return run_reload(*manager, r);
}

}  // namespace

ApiReply reload_reply(PluginManager* manager, const std::string& plugin, const std::string& body,
                      size_t max_json_depth) {
  auto parse = [](const std::string& b, ReloadRequest& r) -> std::optional<ApiReply> {
    return b.empty() ? std::nullopt : parse_reload_body(b, r);
  };
  return swap_reply(manager, plugin, body, max_json_depth, parse);
}

ApiReply promote_reply(PluginManager* manager, const std::string& plugin, const std::string& body,
                       size_t max_json_depth) {
  return swap_reply(manager, plugin, body, max_json_depth, parse_promote_body);
}

}  // namespace aether
