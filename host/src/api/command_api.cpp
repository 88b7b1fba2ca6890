#include "api/command_api.hpp"

#include <future>

#include "api/reply_json.hpp"
#include "cluster/cluster.hpp"
#include "core/guarded.hpp"
#include "core/names.hpp"

#include <nlohmann/json.hpp>

namespace aether {

using json = nlohmann::json;

int http_status(StatusCode code) {
  switch (code) {
    case StatusCode::kOk: return 200;
    case StatusCode::kInvalidArgument: return 400;
    case StatusCode::kUnauthorized: return 401;
    case StatusCode::kNotFound: return 404;
    case StatusCode::kConflict: return 409;
    case StatusCode::kPayloadTooLarge: return 413;
    case StatusCode::kRejected: return 422;
    case StatusCode::kUnavailable:
    case StatusCode::kPluginTimeout: return 503;
    case StatusCode::kCorruption:
    case StatusCode::kPluginError:
    case StatusCode::kInternal: return 500;
  }
  return 500;
}

namespace {

// Never throws on strings that are not valid UTF-8 (messages may quote what
// a client sent): such bytes become U+FFFD.
std::string dump_safe(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

}  // namespace

ApiReply error_reply(int status, const std::string& code, const std::string& message, const json& extra) {
  json e = {{"code", code}, {"message", message}};
  e.update(extra);
  return {status, dump_safe(json{{"error", e}})};
}

json event_json(const ActorKey& key, const StoredEvent& e) {
  // Stored or emitted payloads were checked when written; a payload that
  // is not JSON (or too deep to walk) is shown as a string.
  json payload = check_json_text(e.payload, kMaxStoredJsonDepth, "event payload")
                     ? json::parse(e.payload, nullptr, false)
                     : json(json::value_t::discarded);
  return {{"id", event_id(key, e.version)},
          {"version", e.version},
          {"type", e.type},
          {"payload", payload.is_discarded() ? json(e.payload) : payload}};
}

namespace {

ApiReply internal_error(std::string_view what) {
  return error_reply(500, "internal", "internal error while " + std::string(what) + "; see the host's log");
}

// Appends `s` as a JSON string. Plain printable ASCII (ids, names) is copied
// as it is; anything else goes through the JSON library (invalid UTF-8
// becomes U+FFFD, as in dump_safe).
void append_json_string(std::string& out, std::string_view s) {
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c < 0x20 || c >= 0x80 || c == '"' || c == '\\') {
      out += dump_safe(json(std::string(s)));
      return;
    }
  }
  out += '"';
  out += s;
  out += '"';
}

// An event's payload as it goes into a reply: its own JSON text when it is a
// JSON value (it was checked when written), else the text as a JSON string.
void append_payload(std::string& out, const std::string& payload) {
  if (check_json_text(payload, kMaxStoredJsonDepth, "event payload") && json::accept(payload)) {
    out += payload;
  } else {
    append_json_string(out, payload);
  }
}

// The reply of a successful command, written straight into one string (no
// JSON tree): the keys in the order a JSON object dump gives them.
ApiReply success_reply(const std::string& ns, const std::string& type, const std::string& id,
                       const CommandResult& r) {
  std::string out;
  out.reserve(128 + r.events.size() * (64 + ns.size() + type.size() + id.size()));
  out += "{\"duplicate\":";
  out += r.duplicate ? "true" : "false";
  out += ",\"events\":[";
  for (size_t i = 0; i < r.events.size(); ++i) {
    const auto& e = r.events[i];
    if (i > 0) out += ',';
    out += "{\"id\":";
    append_json_string(out, event_id({ns, type, id}, e.version));
    out += ",\"payload\":";
    append_payload(out, e.payload);
    out += ",\"type\":";
    append_json_string(out, e.type);
    out += ",\"version\":";
    out += std::to_string(e.version);
    out += '}';
  }
  out += "],\"id\":";
  append_json_string(out, id);
  out += ",\"ns\":";
  append_json_string(out, ns);
  out += ",\"type\":";
  append_json_string(out, type);
  out += ",\"version\":";
  out += std::to_string(r.version);
  out += '}';
  return {200, std::move(out)};
}

}  // namespace

std::optional<ApiReply> json_input_error(std::string_view text, size_t max_depth, std::string_view what) {
  Status s = check_json_text(text, max_depth, what, "api.max_json_depth");
  if (s) return std::nullopt;
  return error_reply(s);
}

ApiReply error_reply(const Status& s) {
  // A precise cause replaces the generic code; whether the command may have
  // been applied tells a client if a retry without an idempotency key is safe.
  const std::string code = s.cause().empty() ? status_code_name(s.code()) : s.cause();
  json extra = json::object();
  if (s.applied() != Applied::kUnknown) extra["may_have_been_applied"] = s.applied() == Applied::kMaybe;
  return error_reply(http_status(s.code()), code, s.message(), extra);
}

bool parse_command_request(const std::string& ns, const std::string& type, const std::string& id,
                           const std::string& text, const std::string& idempotency_header,
                           Command& c, ApiReply& error, size_t max_depth) {
  auto bad = [&](const std::string& m) {
    error = error_reply(400, "invalid_argument", m);
    return false;
  };
  c.ns = ns;
  c.type = type;
  c.id = id;
  if (auto e = json_input_error(text, max_depth, "request body")) {
    error = std::move(*e);
    return false;
  }
  if (!is_valid_utf8(idempotency_header)) return bad("header Idempotency-Key is not valid UTF-8");
  json body = json::parse(text, nullptr, false);
  if (body.is_discarded()) {
    try {
      auto parsed = json::parse(text);
      (void)parsed;
    } catch (const json::exception& e) {
      return bad(std::string("malformed JSON in request body: ") + e.what());
    }
  }
  if (!body.is_object()) {
    return bad("request body must be a JSON object like {\"command\":\"Name\",\"payload\":{...}}");
  }
  auto cmd = body.find("command");
  if (cmd == body.end() || !cmd->is_string()) return bad("field 'command' (a string) is required");
  c.name = cmd->get<std::string>();
  if (auto p = body.find("payload"); p != body.end() && !p->is_null()) {
    if (!p->is_object()) return bad("field 'payload' must be a JSON object");
    c.payload = p->dump();
  } else {
    c.payload = "{}";
  }
  if (auto v = body.find("expected_version"); v != body.end() && !v->is_null()) {
    if (!v->is_number_unsigned()) return bad("field 'expected_version' must be a non-negative integer");
    c.expected_version = v->get<uint64_t>();
  }
  if (auto k = body.find("idempotency_key"); k != body.end() && !k->is_null()) {
    if (!k->is_string()) return bad("field 'idempotency_key' must be a string");
    c.idempotency_key = k->get<std::string>();
  } else {
    c.idempotency_key = idempotency_header;
  }
  return true;
}

ApiReply command_reply(const std::string& ns, const std::string& type, const std::string& id,
                       const CommandResult& r) {
  if (r.status.code() == StatusCode::kRejected) {
    // A reused idempotency key is the caller's mistake, not the domain's refusal.
    return error_reply(422, r.reject_code.empty() ? "rejected" : r.reject_code, r.status.message(),
                      {{"rejected", r.reject_code != "idempotency_key_reused"}});
  }
  if (r.status.code() == StatusCode::kConflict) {
    return error_reply(409, "conflict", r.status.message(),
                      {{"actor", ns + "/" + type + "/" + id},
                       {"attempted_version", r.attempted_version},
                       {"current_version", r.current_version}});
  }
  if (!r.status) return error_reply(r.status);
  std::optional<ApiReply> reply;
  run_guarded("command reply", [&] { reply = success_reply(ns, type, id, r); });
  if (!reply) return internal_error("writing the reply of " + ns + "/" + type + "/" + id);
  return std::move(*reply);
}

void dispatch_command(Runtime& runtime, ClusterNode* cluster, Command command, RouteTrail trail,
                      std::function<void(ApiReply)> done) {
  const std::string ns = command.ns, type = command.type, id = command.id;
  if (cluster == nullptr) {
    runtime.send(std::move(command), [ns, type, id, done = std::move(done)](CommandResult r) {
      done(command_reply(ns, type, id, r));
    });
    return;
  }
  cluster->route(std::move(command), std::move(trail), [ns, type, id, done = std::move(done)](RoutedResult r) {
    if (r.remote) return done(ApiReply{r.http_status, std::move(r.body)});
    ApiReply reply = command_reply(ns, type, id, r.local);
    reply.redirect_epoch = r.redirect_epoch;
    done(std::move(reply));
  });
}

ApiReply dispatch_command_sync(Runtime& runtime, ClusterNode* cluster, Command command) {
  std::promise<ApiReply> p;
  auto f = p.get_future();
  dispatch_command(runtime, cluster, std::move(command), RouteTrail{},
                   [&p](ApiReply r) { p.set_value(std::move(r)); });
  return f.get();
}

}  // namespace aether
