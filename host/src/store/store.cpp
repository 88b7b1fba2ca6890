#include "store/store.hpp"

#include <future>
#include <nlohmann/json.hpp>

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

std::string commit_message_json(const AppendRequest& req, uint64_t first,
                                const std::string& commit_id, const std::string& node_id) {
  using json = nlohmann::json;
  json body;
  body["ns"] = req.key.ns;
  body["type"] = req.key.type;
  body["actor_id"] = req.key.id;
  body["first_version"] = first;
  body["version"] = first + req.events.size() - 1;
  body["commit_id"] = commit_id;
  body["node"] = node_id;
  body["timestamp"] = req.timestamp_ms;
  json events = json::array();
  uint64_t v = first;
  for (const auto& e : req.events) {
    events.push_back({{"id", event_id(req.key, v)},
                      {"version", v},
                      {"type", e.type},
                      {"payload", json::parse(e.payload, nullptr, false)}});
    ++v;
  }
  body["events"] = std::move(events);
  return body.dump();
}

}  // namespace aether
