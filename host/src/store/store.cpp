#include "store/store.hpp"

#include <chrono>
#include <future>

namespace aether {

AppendResult EventStore::append_sync(const AppendRequest& request) {
  std::promise<AppendResult> p;
  auto f = p.get_future();
  append(request, [&p](AppendResult r) { p.set_value(std::move(r)); });
  return f.get();
}

Result<std::vector<StoredEvent>> EventStore::read_all(const ActorKey& key, uint64_t from_version,
                                                      uint64_t limit) {
  std::vector<StoredEvent> out;
  Status s = read(key, from_version, limit, [&out](const StoredEvent& e) {
    out.push_back(e);
    return Status::ok();
  });
  if (!s) return s;
  return out;
}

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

}  // namespace

// Written by hand, not through a JSON tree: it runs once per commit. Keys in
// the order a JSON library that sorts them would write; event payloads are
// embedded as they are (the plugin boundary has checked that each is valid
// JSON).
std::string commit_message_json(const AppendRequest& req, uint64_t first,
                                const std::string& commit_id, const std::string& node_id) {
  std::string out;
  size_t size = 160 + req.key.ns.size() + req.key.type.size() + req.key.id.size() + commit_id.size() +
                node_id.size();
  for (const auto& e : req.events) {
    size += 96 + req.key.ns.size() + req.key.type.size() + req.key.id.size() + e.type.size() + e.payload.size();
  }
  out.reserve(size);
  out += "{\"actor_id\":";
  append_json_string(out, req.key.id);
  out += ",\"commit_id\":";
  append_json_string(out, commit_id);
  out += ",\"events\":[";
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
  out += "],\"first_version\":";
  out += std::to_string(first);
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

ActorSampler::ActorSampler(uint64_t n)
    : n_(n), rng_(static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count()) | 1) {}

void ActorSampler::offer(const std::string& id) {
  ++out_.total;
  if (out_.ids.size() < n_) {
    out_.ids.push_back(id);
    return;
  }
  rng_ ^= rng_ >> 12;
  rng_ ^= rng_ << 25;
  rng_ ^= rng_ >> 27;
  if (const uint64_t j = (rng_ * 0x2545F4914F6CDD1Dull) % out_.total; j < n_) out_.ids[j] = id;
}

}  // namespace aether
