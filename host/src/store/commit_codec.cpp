#include "store/commit_codec.hpp"

#include <chrono>
#include <type_traits>
#include <nlohmann/json.hpp>

#include "bus/bus.hpp"
#include "core/json_limits.hpp"
#include "core/names.hpp"
#include "core/subjects.hpp"
#include "store/store.hpp"

namespace aether {

namespace {

// Appends `s` as a JSON string.
void append_json_string(std::string& out, const std::string& s) {
  static const char* hex = "0123456789abcdef";
  out += '"';
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) {
          out += "\\u00";
          out += hex[c >> 4];
          out += hex[c & 15];
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  out += '"';
}

void append_events(std::string& out, const AppendRequest& req, uint64_t first) {
  uint64_t v = first;
  for (const auto& e : req.events) {
    if (v != first) out += ',';
    out += "{\"id\":";
    append_json_string(out, event_id(req.key, v));
    out += ",\"payload\":";
    out += e.payload.empty() ? std::string_view("{}") : std::string_view(e.payload);
    out += ",\"type\":";
    append_json_string(out, e.type);
    out += ",\"version\":";
    out += std::to_string(v);
    out += '}';
    ++v;
  }
}

// The members before and after the events, each as a small JSON object.
// Member values are strings and numbers: an unescaped `"` cannot occur in
// them, so the first `,"events":[` and the last `],"first_version":` are the
// commit's own.
std::optional<std::pair<nlohmann::json, nlohmann::json>> split_commit(std::string_view data) {
  constexpr std::string_view kEvents = ",\"events\":[";
  constexpr std::string_view kTail = "],\"first_version\":";
  const size_t head_end = data.find(kEvents);
  const size_t tail = data.rfind(kTail);
  if (head_end == std::string_view::npos || tail == std::string_view::npos || tail < head_end) return std::nullopt;
  const std::string head_text = std::string(data.substr(0, head_end)) + "}";
  const std::string tail_text = "{" + std::string(data.substr(tail + 2));
  if (!check_json_text(head_text, 2, "commit") || !check_json_text(tail_text, 2, "commit")) return std::nullopt;
  auto head = nlohmann::json::parse(head_text, nullptr, false);
  auto rest = nlohmann::json::parse(tail_text, nullptr, false);
  if (!head.is_object() || !rest.is_object()) return std::nullopt;
  return std::make_pair(std::move(head), std::move(rest));
}

}  // namespace

// Written by hand, not through a JSON tree: it runs once per commit.
std::string encode_commit(const AppendRequest& req, uint64_t first, const std::string& commit_id,
                          const std::string& node_id) {
  std::string out;
  size_t size = 200 + req.key.ns.size() + req.key.type.size() + req.key.id.size() + commit_id.size() +
                node_id.size() + req.idempotency_key.size() + req.command_digest.size();
  for (const auto& e : req.events) {
    size += 96 + req.key.ns.size() + req.key.type.size() + req.key.id.size() + e.type.size() + e.payload.size();
  }
  out.reserve(size);
  const bool keyed = !req.idempotency_key.empty();
  out += "{\"actor_id\":";
  append_json_string(out, req.key.id);
  if (keyed && !req.command_digest.empty()) {
    out += ",\"command_digest\":";
    append_json_string(out, req.command_digest);
  }
  out += ",\"commit_id\":";
  append_json_string(out, commit_id);
  out += ",\"events\":[";
  append_events(out, req, first);
  out += "],\"first_version\":";
  out += std::to_string(first);
  if (keyed) {
    out += ",\"idempotency_key\":";
    append_json_string(out, req.idempotency_key);
  }
  out += ",\"node\":";
  append_json_string(out, node_id);
  out += ",\"ns\":";
  append_json_string(out, req.key.ns);
  out += ",\"timestamp\":";
  out += std::to_string(req.timestamp_ms);
  out += ",\"type\":";
  append_json_string(out, req.key.type);
  out += ",\"version\":";
  out += std::to_string(first + req.events.size() - 1);
  out += '}';
  return out;
}

void publish_commit(Bus& bus, const AppendRequest& req, uint64_t first, const std::string& commit_id,
                    const std::string& node_id) {
  if (!bus.has_subscribers()) return;
  bus.publish(Message{subjects::events(req.key), encode_commit(req, first, commit_id, node_id)});
}

std::optional<CommitSummary> decode_commit_summary(std::string_view data) {
  auto parts = split_commit(data);
  if (!parts) return std::nullopt;
  const auto& [head, tail] = *parts;
  auto str = [](const nlohmann::json& j, const char* k, std::string& out) {
    auto it = j.find(k);
    if (it == j.end() || !it->is_string()) return false;
    out = it->get<std::string>();
    return true;
  };
  // Unsigned members must be unsigned in the text too (no wrap of -1).
  auto num = [](const nlohmann::json& j, const char* k, auto& out) {
    using T = std::remove_reference_t<decltype(out)>;
    auto it = j.find(k);
    if (it == j.end() || !it->is_number_integer()) return false;
    if (std::is_unsigned_v<T> && !it->is_number_unsigned()) return false;
    out = it->get<T>();
    return true;
  };
  CommitSummary c;
  if (!str(head, "actor_id", c.key.id) || !str(head, "commit_id", c.commit_id) || !str(tail, "ns", c.key.ns) ||
      !str(tail, "type", c.key.type) || !str(tail, "node", c.node) || !num(tail, "first_version", c.first_version) ||
      !num(tail, "version", c.version) || !num(tail, "timestamp", c.timestamp_ms)) {
    return std::nullopt;
  }
  // Present on a commit of a command with an idempotency key.
  auto opt_str = [&](const nlohmann::json& j, const char* k, std::string& out) {
    return j.find(k) == j.end() || str(j, k, out);
  };
  if (!opt_str(tail, "idempotency_key", c.idempotency_key) || !opt_str(head, "command_digest", c.command_digest)) {
    return std::nullopt;
  }
  if (!check_name(c.key.ns).empty() || !check_name(c.key.type).empty() || !check_id(c.key.id).empty() ||
      c.first_version == 0 || c.version < c.first_version) {
    return std::nullopt;
  }
  return c;
}

std::string commit_id_prefix(const std::string& node_id) {
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::system_clock::now().time_since_epoch())
                      .count();
  return node_id + "-" + std::to_string(ms) + "-";
}

}  // namespace aether
