#include "api/admin_api.hpp"

#include "api/reply_json.hpp"

#include <nlohmann/json.hpp>
#include <optional>

namespace aether {
namespace {

using json = nlohmann::json;

// A repair request is a few dozen bytes; anything larger is refused before
// it is parsed.
constexpr size_t kMaxRepairBody = 4096;

ApiReply bad_request(const std::string& message) {
  return error_reply(400, "invalid_argument", message);
}

struct RepairRequest {
  uint64_t truncate_after = 0;
  bool dry_run = false;
};

// Parses {"truncate_after": N, "dry_run": bool}; an error reply otherwise.
std::optional<RepairRequest> parse_repair(const std::string& body, ApiReply& error) {
  if (body.size() > kMaxRepairBody) {
    error = bad_request("a repair request body must be at most " + std::to_string(kMaxRepairBody) + " bytes");
    return std::nullopt;
  }
  json j = json::parse(body, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    error = bad_request("request body must be a JSON object like {\"truncate_after\": 3}");
    return std::nullopt;
  }
  RepairRequest r;
  auto v = j.find("truncate_after");
  if (v == j.end() || !v->is_number_unsigned() || v->get<uint64_t>() > uint64_t{INT64_MAX}) {
    error = bad_request("field 'truncate_after' (the last version to keep, an integer 0..2^63-1) is required");
    return std::nullopt;
  }
  r.truncate_after = v->get<uint64_t>();
  if (auto d = j.find("dry_run"); d != j.end() && !d->is_null()) {
    if (!d->is_boolean()) {
      error = bad_request("field 'dry_run' must be true or false");
      return std::nullopt;
    }
    r.dry_run = d->get<bool>();
  }
  for (const auto& [key, _] : j.items()) {
    if (key != "truncate_after" && key != "dry_run") {
      error = bad_request("unknown field '" + key.substr(0, 64) + "' (a repair takes truncate_after and dry_run)");
      return std::nullopt;
    }
  }
  return r;
}

}  // namespace

ApiReply repair_actor(Runtime& runtime, const std::string& ns, const std::string& type, const std::string& id,
                      const std::string& body) {
  ApiReply error;
  const auto req = parse_repair(body, error);
  if (!req) return error;
  const ActorKey key{ns, type, id};
  auto done = runtime.repair(key, req->truncate_after, req->dry_run);
  if (!done) return error_reply(done.status());
  json out = {{"ns", ns},
              {"type", type},
              {"id", id},
              {"truncate_after", req->truncate_after},
              {"dry_run", req->dry_run},
              {"removed",
               {{"records", done->records}, {"last_version", done->last_version}, {"snapshots", done->snapshots}}}};
  if (!req->dry_run) {
    auto view = runtime.query_state(ns, type, id, true);
    if (view) {
      out["version"] = view->version;
    } else if (view.status().code() == StatusCode::kNotFound && req->truncate_after == 0) {
      out["version"] = 0;  // no events left
    } else {
      out["load_error"] = {{"code", status_code_name(view.status().code())}, {"message", view.status().message()}};
    }
  }
  return {200, out.dump()};
}

}  // namespace aether
