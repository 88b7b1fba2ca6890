// aether: the command-line client of an aether host's HTTP API.
//
//   aether send TYPE ID COMMAND [JSON] [--expected-version N] [--idempotency-key K]
//   aether state TYPE ID
//   aether events TYPE ID [--from N] [--limit N]
//   aether plugins
//   aether reload NAME [--to previous] [--file PATH] [--dry-run] [--accept-differences]
//   aether cluster
//   aether repair TYPE ID --truncate-after VERSION [--yes]
//   aether bench [--type T] [--command C] [--payload JSON] [--actors N] [--clients N]
//                [--duration 10s] [--nats URL] [--json]   (load generator, bench.hpp)
//
// Options: --url (or AETHER_URL; default http://127.0.0.1:8080), --namespace
// (default "default"), --token (or AETHER_TOKEN), --json (print the server's
// JSON as is).
//
// Exit codes (for scripts):
//   0 success            3 rejected by the domain (422)   6 bad request (400, 401, 403, 413, 414, 415, 431)
//   2 cannot reach host  4 version conflict (409)         7 server error (5xx) or other
//   64 usage error       5 not found (404)
#include <httplib.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "bench.hpp"
#include "path_segment.hpp"

namespace {

using json = nlohmann::json;
using aether::cli::path_segment;

struct Options {
  std::string url = "http://127.0.0.1:8080";
  std::string ns = "default";
  std::string token;
  bool raw_json = false;
};

int exit_code_for(int status) {
  if (status >= 200 && status < 300) return 0;
  switch (status) {
    case 422: return 3;
    case 409: return 4;
    case 404: return 5;
    case 400: case 401: case 403: case 413: case 414: case 415: case 431: return 6;
    default: return 7;
  }
}


// The shadow check report of a reload (docs/hot-swap.md), readably.
void print_shadow_report(FILE* out, const json& r) {
  std::fprintf(out,
               "shadow check of %s %s -> %s: %llu actors checked (%llu active, %llu passive of %llu "
               "stored), %llu events replayed, %.1f ms (%.1f ms of CPU, at most %u%% of a core), peak memory %llu "
               "of %llu bytes\n",
               r.value("plugin", "").c_str(), r.value("from_version", "").c_str(),
               r.value("to_version", "").c_str(), r.value("actors_checked", 0ull),
               r.value("active_checked", 0ull), r.value("passive_checked", 0ull),
               r.value("stored_actors", 0ull), r.value("events_replayed", 0ull),
               r.value("elapsed_ms", 0.0), r.value("cpu_ms", 0.0), r.value("cpu_percent", 0u),
               r.value("peak_memory_bytes", 0ull),
               r.value("memory_limit_bytes", 0ull));
  for (const auto& n : r.value("notes", json::array())) std::fprintf(out, "  note: %s\n", n.get<std::string>().c_str());
  if (!r.value("complete", true)) {
    std::fprintf(out, "  incomplete: stopped by its %s limit\n", r.value("stopped_by", "").c_str());
  }
  const uint64_t differing = r.value("actors_differing", 0ull);
  if (differing == 0) {
    std::fprintf(out, "  no differences\n");
    return;
  }
  const json diffs = r.value("differences", json::array());
  std::fprintf(out, "  %llu actors differ (%zu shown):\n", static_cast<unsigned long long>(differing), diffs.size());
  for (const auto& d : diffs) {
    std::fprintf(out, "    %s v%llu, %s path vs %s:\n", d.value("actor", "").c_str(), d.value("version", 0ull),
                 d.value("path", "").c_str(), d.value("compared_with", "").c_str());
    if (d.contains("error")) std::fprintf(out, "      error: %s\n", d.value("error", "").c_str());
    for (const auto& f : d.value("diff", json::array())) {
      std::fprintf(out, "      %s: expected %s, got %s\n", f.value("field", "").c_str(),
                   f.contains("expected") ? f["expected"].dump().c_str() : "(absent)",
                   f.contains("got") ? f["got"].dump().c_str() : "(absent)");
    }
  }
}

// The answer of a reload, promote or rollback.
void print_swap(const json& j) {
  if (j.contains("shadow")) print_shadow_report(stdout, j["shadow"]);
  if (j.value("dry_run", false)) {
    std::printf("dry run: %s %s was not swapped in\n", j.value("plugin", "").c_str(),
                j.value("to_version", "").c_str());
    return;
  }
  if (j.value("accepted_differences", false)) std::printf("differences accepted\n");
  std::string scope;
  if (j.contains("namespaces")) {
    for (const auto& ns : j["namespaces"]) scope += (scope.empty() ? " (namespaces " : ", ") + ns.get<std::string>();
    scope += ")";
  }
  if (j.contains("promoted_from")) scope = " (promoted from " + j.value("promoted_from", "") + ")";
  std::printf("reloaded %s%s: %s -> %s, %llu active actors moved (%llu by snapshot, %llu by "
              "upgrade_state, %llu by replay), paused %.1f ms\n",
              j.value("plugin", "").c_str(), scope.c_str(), j.value("from_version", "").c_str(),
              j.value("to_version", "").c_str(), j.value("actors_migrated", 0ull),
              j.value("via_snapshot", 0ull), j.value("via_upgrade", 0ull),
              j.value("via_replay", 0ull), j.value("pause_ms", 0.0));
}

// Which version serves which namespace.
void print_versions(const json& p) {
  if (!p.contains("versions")) return;
  for (const auto& v : p["versions"]) {
    std::string names;
    for (const auto& ns : v["namespaces"]) names += (names.empty() ? "" : ", ") + ns.get<std::string>();
    std::printf("  %s %s %s sha256 %.12s  namespaces: %s\n", v.value("main", false) ? "main   " : "version",
                v.value("version", "").c_str(), v.value("path", "").c_str(), v.value("sha256", "").c_str(),
                names.empty() ? "(none)" : names.c_str());
  }
}

class Api {
 public:
  explicit Api(const Options& o) : o_(o), client_(o.url) {
    client_.set_connection_timeout(5);
    client_.set_read_timeout(60);
    client_.set_tcp_nodelay(true);
    if (!o.token.empty()) client_.set_bearer_token_auth(o.token);
  }

  // Returns the exit code; prints the body (JSON or readable) or the error.
  template <class Print>
  int call(const char* method, const std::string& path, const std::string& body, Print&& print) {
    httplib::Result r = std::string(method) == "GET"
                            ? client_.Get(path)
                            : client_.Post(path, body, "application/json");
    if (!r) {
      std::fprintf(stderr, "aether: cannot reach %s: %s\n", o_.url.c_str(),
                   httplib::to_string(r.error()).c_str());
      return 2;
    }
    const int code = exit_code_for(r->status);
    json j = json::parse(r->body, nullptr, false);
    if (o_.raw_json) {
      std::printf("%s\n", r->body.c_str());
      return code;
    }
    if (code != 0) {
      if (!j.is_discarded() && j.contains("error")) {
        const auto& e = j["error"];
        std::fprintf(stderr, "error %d %s: %s\n", r->status, e.value("code", "").c_str(),
                     e.value("message", "").c_str());
        if (e.contains("report") && e["report"].is_object()) print_shadow_report(stderr, e["report"]);
      } else {
        std::fprintf(stderr, "error %d: %s\n", r->status, r->body.c_str());
      }
      return code;
    }
    if (j.is_discarded()) {
      std::printf("%s\n", r->body.c_str());
      return 0;
    }
    print(j);
    return 0;
  }

  std::string actor_path(const std::string& type, const std::string& id) const {
    return "/v1/" + path_segment(o_.ns) + "/actors/" + path_segment(type) + "/" + path_segment(id);
  }

 private:
  const Options& o_;
  httplib::Client client_;
};

std::string compact(const json& j) { return j.dump(); }

void print_removed(const json& j, const char* verb) {
  const json& r = j["removed"];
  std::printf("%s %llu stored records of %s/%s after version %llu", verb, r.value("records", 0ull),
              j.value("type", "").c_str(), j.value("id", "").c_str(), j.value("truncate_after", 0ull));
  if (r.value("last_version", 0ull) != 0) std::printf(" (up to version %llu)", r.value("last_version", 0ull));
  std::printf(" and %llu snapshots above it\n", r.value("snapshots", 0ull));
}

// Without --yes: a dry run that says what would go, and a refusal (64).
int run_repair(Api& api, const std::string& type, const std::string& id, uint64_t after, bool yes) {
  const std::string path = api.actor_path(type, id) + "/repair";
  const json body = {{"truncate_after", after}, {"dry_run", !yes}};
  if (!yes) {
    const int rc = api.call("POST", path, body.dump(), [](const json& j) { print_removed(j, "would remove"); });
    if (rc != 0) return rc;
    std::fprintf(stderr, "aether: nothing removed; run again with --yes to remove them\n");
    return 64;
  }
  return api.call("POST", path, body.dump(), [](const json& j) {
    print_removed(j, "removed");
    if (j.contains("version")) {
      std::printf("%s/%s now loads at version %llu\n", j.value("type", "").c_str(), j.value("id", "").c_str(),
                  j.value("version", 0ull));
    } else if (j.contains("load_error")) {
      std::printf("%s/%s still does not load: %s\n", j.value("type", "").c_str(), j.value("id", "").c_str(),
                  j["load_error"].value("message", "").c_str());
    }
  });
}

CLI::App* add_bench_command(CLI::App& app, aether::cli::BenchOptions& b) {
  auto* bench = app.add_subcommand(
      "bench", "load generator: send commands from closed-loop clients, print throughput and latency");
  bench->add_option("--type", b.type, "actor type")->capture_default_str();
  bench->add_option("--command", b.command, "command name")->capture_default_str();
  bench->add_option("--payload", b.payload, "command payload, a JSON object")->capture_default_str();
  bench->add_option("--actors", b.actors, "number of actors (ids PREFIX0 .. PREFIX<N-1>)")->capture_default_str();
  bench->add_option("--id-prefix", b.id_prefix, "actor id prefix")->capture_default_str();
  bench->add_option("--clients", b.clients, "concurrent clients (connections), one command in flight each")
      ->capture_default_str();
  bench->add_option("--duration", b.duration, "how long to send (500ms, 10s, 2m)")->capture_default_str();
  bench->add_option("--timeout", b.timeout, "per-command timeout")->capture_default_str();
  bench->add_option("--nats", b.nats_url, "send over NATS request/reply to this server instead of HTTP");
  bench->add_flag("--json", b.json, "print the report as one JSON object");
  bench->add_flag("!--no-progress", b.progress, "no progress line on stderr");
  return bench;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  if (const char* u = std::getenv("AETHER_URL")) o.url = u;
  if (const char* t = std::getenv("AETHER_TOKEN")) o.token = t;

  CLI::App app{"aether: command-line client of an aether host"};
  app.require_subcommand(1);
  app.add_option("--url", o.url, "host URL (env AETHER_URL)")->capture_default_str();
  app.add_option("-n,--namespace", o.ns, "namespace")->capture_default_str();
  app.add_option("--token", o.token, "bearer token (env AETHER_TOKEN)");
  app.add_flag("--json", o.raw_json, "print the server's JSON response as is");

  std::string type, id, command, payload = "{}", plugin;
  int64_t expected_version = -1;
  std::string idem;
  uint64_t from = 1, limit = 1000;

  auto* send = app.add_subcommand("send", "send a command to an actor");
  send->add_option("TYPE", type, "actor type")->required();
  send->add_option("ID", id, "actor id")->required();
  send->add_option("COMMAND", command, "command name")->required();
  send->add_option("JSON", payload, "command payload, a JSON object")->capture_default_str();
  send->add_option("--expected-version", expected_version, "fail unless the actor is at this version");
  send->add_option("--idempotency-key", idem, "a retried command with this key writes nothing");

  auto* state = app.add_subcommand("state", "show an actor's state and version");
  state->add_option("TYPE", type)->required();
  state->add_option("ID", id)->required();

  auto* events = app.add_subcommand("events", "list an actor's events");
  events->add_option("TYPE", type)->required();
  events->add_option("ID", id)->required();
  events->add_option("--from", from, "first version")->capture_default_str();
  events->add_option("--limit", limit, "most events")->capture_default_str();

  auto* plugins = app.add_subcommand("plugins", "list loaded plugins and their actor types");
  std::string reload_to, reload_file;
  auto* reload = app.add_subcommand("reload", "reload (hot-swap) a plugin while the host runs");
  reload->add_option("NAME", plugin)->required();
  reload->add_option("--to", reload_to, "'previous': return to the version loaded before")
      ->check(CLI::IsMember({"previous"}));
  reload->add_option("--file", reload_file, "the new image (default: the file it was loaded from)");
  bool dry_run = false, accept_differences = false;
  std::vector<std::string> swap_namespaces;
  std::string promote_from;
  reload->add_option("--namespace", swap_namespaces, "swap only this namespace (repeatable): a canary");
  auto* promote = app.add_subcommand("promote", "move every namespace to the version one namespace runs");
  promote->add_option("NAME", plugin)->required();
  promote->add_option("--from", promote_from, "the namespace whose version is promoted")->required();
  auto* rollback = app.add_subcommand("rollback", "return a plugin (or some namespaces) to the version before");
  rollback->add_option("NAME", plugin)->required();
  rollback->add_option("--namespace", swap_namespaces, "roll back only this namespace (repeatable)");
  for (auto* c : {reload, promote}) {
    c->add_flag("--dry-run", dry_run, "run the shadow check only; swap nothing");
    c->add_flag("--accept-differences", accept_differences,
                "swap even if the shadow check finds states that differ");
  }
  auto* cluster = app.add_subcommand("cluster", "show cluster membership and shards");
  uint64_t truncate_after = 0;
  bool yes = false;
  auto* repair = app.add_subcommand(
      "repair", "remove an actor's commits after a version (a record that does not decode, a forged commit)");
  repair->add_option("TYPE", type)->required();
  repair->add_option("ID", id)->required();
  repair->add_option("--truncate-after", truncate_after, "the last version to keep")->required();
  repair->add_flag("--yes", yes, "remove them (without it: only show what would be removed)");

  aether::cli::BenchOptions bench_options;
  auto* bench = add_bench_command(app, bench_options);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? 0 : 64;
  }

  if (bench->parsed()) {
    bench_options.url = o.url;
    bench_options.ns = o.ns;
    bench_options.token = o.token;
    bench_options.json = bench_options.json || o.raw_json;
    return aether::cli::run_bench(bench_options);
  }
  Api api(o);
  if (send->parsed()) {
    json p = json::parse(payload, nullptr, false);
    if (p.is_discarded() || !p.is_object()) {
      std::fprintf(stderr, "aether: the payload must be a JSON object, got: %s\n", payload.c_str());
      return 64;
    }
    json body = {{"command", command}, {"payload", p}};
    if (expected_version >= 0) body["expected_version"] = expected_version;
    if (!idem.empty()) body["idempotency_key"] = idem;
    return api.call("POST", api.actor_path(type, id) + "/commands", body.dump(), [](const json& j) {
      std::printf("ok: %s/%s now at version %llu%s\n", j.value("type", "").c_str(),
                  j.value("id", "").c_str(), j.value("version", 0ull),
                  j.value("duplicate", false) ? " (duplicate: nothing written)" : "");
      for (const auto& e : j["events"]) {
        std::printf("  v%llu %s %s\n", e.value("version", 0ull), e.value("type", "").c_str(),
                    compact(e["payload"]).c_str());
      }
    });
  }
  if (state->parsed()) {
    return api.call("GET", api.actor_path(type, id), "", [](const json& j) {
      std::printf("%s/%s at version %llu\n%s\n", j.value("type", "").c_str(), j.value("id", "").c_str(),
                  j.value("version", 0ull), j["state"].dump(2).c_str());
    });
  }
  if (events->parsed()) {
    const std::string path = api.actor_path(type, id) + "/events?from=" + std::to_string(from) +
                             "&limit=" + std::to_string(limit);
    return api.call("GET", path, "", [](const json& j) {
      for (const auto& e : j["events"]) {
        std::printf("v%llu %s %s\n", e.value("version", 0ull), e.value("type", "").c_str(),
                    compact(e["payload"]).c_str());
      }
    });
  }
  if (plugins->parsed()) {
    return api.call("GET", "/v1/plugins", "", [](const json& j) {
      for (const auto& p : j["plugins"]) {
        std::printf("%s %s (ABI %s) %s\n", p.value("name", "").c_str(), p.value("version", "").c_str(),
                    p.value("abi", "").c_str(), p.value("path", "").c_str());
        print_versions(p);
        for (const auto& t : p["actor_types"]) {
          std::string cmds, evs;
          for (const auto& c : t["commands"]) cmds += (cmds.empty() ? "" : ", ") + c.get<std::string>();
          for (const auto& e : t["events"]) evs += (evs.empty() ? "" : ", ") + e.get<std::string>();
          std::printf("  %s (schema %llu)\n    commands: %s\n    events:   %s\n",
                      t.value("name", "").c_str(), t.value("schema_version", 0ull), cmds.c_str(),
                      evs.c_str());
        }
      }
    });
  }
  if (reload->parsed() || promote->parsed() || rollback->parsed()) {
    json body = json::object();
    if (!reload_to.empty() || rollback->parsed()) body["to"] = "previous";
    if (!reload_file.empty()) body["file"] = reload_file;
    if (!swap_namespaces.empty()) body["namespaces"] = swap_namespaces;
    if (promote->parsed()) body["from"] = promote_from;
    if (dry_run) body["dry_run"] = true;
    if (accept_differences) body["accept"] = "differences";
    const char* route = promote->parsed() ? "/promote" : "/reload";
    return api.call("POST", "/v1/plugins/" + path_segment(plugin) + route, body.dump(), print_swap);
  }
  if (repair->parsed()) return run_repair(api, type, id, truncate_after, yes);
  if (cluster->parsed()) {
    return api.call("GET", "/v1/cluster", "", [](const json& j) {
      if (j.value("mode", "") != "cluster") {
        std::printf("mode: %s (clustering is off), node %s\n", j.value("mode", "").c_str(),
                    j.value("leader", "").c_str());
        return;
      }
      std::printf("cluster: leader %s, epoch %llu, %u shards (%u unowned), answered by %s\n",
                  j.value("leader", "").c_str(), j.value("epoch", 0ull), j.value("shards", 0u),
                  j.value("unowned_shards", 0u), j.value("node", "").c_str());
      for (const auto& n : j["nodes"]) {
        std::printf("  %-20s %6u shards %8llu active actors%s%s\n", n.value("id", "").c_str(), n.value("shards", 0u),
                    n.value("active_actors", 0ull), n.value("leader", false) ? "  (leader)" : "",
                    n.value("leaving", false) ? "  (leaving)" : "");
      }
      const auto& m = j["migrations"];
      std::printf("migrations in flight: %zu (done %llu, re-planned %llu)\n", m.size(),
                  j.value("migrations_done", 0ull), j.value("migrations_failed", 0ull));
      for (size_t i = 0; i < m.size() && i < 20; ++i) {
        std::printf("  shard %u: %s -> %s (%s)\n", m[i].value("shard", 0u), m[i].value("from", "").c_str(),
                    m[i].value("to", "").c_str(), m[i].value("state", "").c_str());
      }
      if (m.size() > 20) std::printf("  ... and %zu more\n", m.size() - 20);
    });
  }
  return 64;
}
