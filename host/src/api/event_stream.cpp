#include "api/event_stream.hpp"

#include <nlohmann/json.hpp>
#include <vector>

#include "api/http_routes.hpp"
#include "bus/bus.hpp"
#include "core/log.hpp"
#include "core/names.hpp"

namespace aether {
namespace {

using json = nlohmann::json;

// Actors with a commit being gathered at once, per stream; more flush all.
constexpr size_t kMaxPendingActors = 4096;
// Events gathered for one commit before it is sent anyway.
constexpr size_t kMaxPendingEvents = 10000;

std::string token(const std::string& subject, int n) {
  size_t start = 0;
  for (int i = 0; i < n; ++i) {
    start = subject.find('.', start);
    if (start == std::string::npos) return "";
    ++start;
  }
  return subject.substr(start, subject.find('.', start) - start);
}

// Turns the local bus's per-event messages back into commits: the runtime
// publishes a commit's events, then its EventStored notification, in order.
class CommitGatherer {
 public:
  explicit CommitGatherer(std::function<void(std::string)> emit) : emit_(std::move(emit)) {}

  void on_message(const Message& m) {
    const std::string kind = token(m.subject, 2);
    const std::string actor = token(m.subject, 3) + "." + token(m.subject, 4);
    if (kind == "stored") return flush(actor);
    json e = json::parse(m.data, nullptr, false);
    if (e.is_discarded() || !e.is_object()) return;
    if (e.contains("events")) return emit(e);  // already a commit
    const uint64_t v = e.value("version", uint64_t{0});
    auto it = pending_.find(actor);
    if (it != pending_.end() && (it->second["version"] != v - 1 || it->second["events"].size() >= kMaxPendingEvents)) {
      flush(actor);
      it = pending_.end();
    }
    if (it == pending_.end()) {
      if (pending_.size() >= kMaxPendingActors) flush_all();
      it = pending_.emplace(actor, json{{"ns", e["ns"]}, {"type", e["type"]}, {"actor_id", e["actor_id"]},
                                        {"first_version", v}, {"events", json::array()}})
               .first;
    }
    json& c = it->second;
    c["version"] = v;
    c["commit_id"] = e["id"];
    c["node"] = e["node"];
    c["timestamp"] = e["timestamp"];
    c["events"].push_back({{"id", e["id"]}, {"version", v}, {"type", e["event_type"]}, {"payload", e["payload"]}});
  }

 private:
  void emit(const json& commit) {
    emit_(sse_frame("commit", commit.value("commit_id", std::string()), commit.dump()));
  }
  void flush(const std::string& actor) {
    auto it = pending_.find(actor);
    if (it == pending_.end()) return;
    json c = std::move(it->second);
    pending_.erase(it);
    emit(c);
  }
  void flush_all() {
    while (!pending_.empty()) flush(pending_.begin()->first);
  }

  std::function<void(std::string)> emit_;
  std::unordered_map<std::string, json> pending_;
};

// What a commit message from NATS becomes: its data as it is.
MessageHandler commit_handler(std::function<void(std::string)> on_frame) {
  return [on_frame = std::move(on_frame)](const Message& m) {
    std::string id;
    const json j = json::parse(m.data, nullptr, false);
    if (j.is_object()) id = j.value("commit_id", std::string());
    on_frame(sse_frame("commit", id, m.data));
  };
}

std::string check_filter(const std::string& ns, const std::string& type, const std::string& id) {
  if (auto bad = check_name(ns); !bad.empty()) return "namespace " + quote_for_message(ns) + " " + bad;
  if (!type.empty()) {
    if (auto bad = check_name(type); !bad.empty()) return "query parameter 'type' " + bad;
  }
  if (!id.empty()) {
    if (auto bad = check_id(id); !bad.empty()) return "query parameter 'id' " + bad;
  }
  return "";
}

}  // namespace

std::string sse_frame(const std::string& event, const std::string& id, const std::string& data) {
  std::string out;
  out.reserve(data.size() + event.size() + id.size() + 32);
  if (!id.empty()) out += "id: " + id + "\n";
  out += "event: " + event + "\ndata: ";
  for (char c : data) {
    if (c == '\r') continue;
    out += c;
    if (c == '\n') out += "data: ";
  }
  out += "\n\n";
  return out;
}

EventStreams::EventStreams(Bus* bus, bool local, EventStreamOptions options)
    : bus_(bus), local_(local), options_(options) {}

EventStreams::~EventStreams() { close_all(); }

std::string EventStreams::pattern(const std::string& ns, const std::string& type, const std::string& id,
                                  bool local) {
  return "aether." + ns + (local ? ".*." : ".events.") + (type.empty() ? "*" : type) + "." +
         (id.empty() ? "*" : id);
}

std::optional<uint64_t> EventStreams::open(const std::string& ns, const std::string& type,
                                           const std::string& id, std::function<void(std::string)> on_frame,
                                           std::function<void()> on_end, ApiReply& error) {
  if (auto bad = check_filter(ns, type, id); !bad.empty()) {
    error = http_error_reply(400, "invalid_argument", bad);
    return std::nullopt;
  }
  if (bus_ == nullptr) {
    error = http_error_reply(501, "not_implemented", "this host broadcasts no events to stream");
    return std::nullopt;
  }
  {
    std::lock_guard lock(mu_);
    if (closed_) {
      error = http_error_reply(503, "unavailable", "the host is stopping");
      return std::nullopt;
    }
    if (streams_.size() + opening_ >= options_.max_streams) {
      error = http_error_reply(503, "unavailable",
                               "too many event streams (api.http.max_event_streams is " +
                                   std::to_string(options_.max_streams) + ")");
      return std::nullopt;
    }
    ++opening_;
  }
  MessageHandler handler;
  if (local_) {
    auto gatherer = std::make_shared<CommitGatherer>(std::move(on_frame));
    handler = [gatherer](const Message& m) { gatherer->on_message(m); };
  } else {
    handler = commit_handler(std::move(on_frame));
  }
  SubscribeOptions so;
  // Two messages a commit on the local bus (an event and its notification).
  so.queue_capacity = static_cast<size_t>(options_.queue) * (local_ ? 2 : 1);
  auto sub = bus_->subscribe(pattern(ns, type, id, local_), std::move(handler), so);
  std::unique_lock lock(mu_);
  --opening_;
  if (closed_) {
    lock.unlock();
    sub.reset();
    error = http_error_reply(503, "unavailable", "the host is stopping");
    return std::nullopt;
  }
  const uint64_t n = next_++;
  streams_.emplace(n, Open{std::move(sub), std::move(on_end)});
  return n;
}

void EventStreams::close(uint64_t stream) {
  Open gone;
  {
    std::lock_guard lock(mu_);
    auto it = streams_.find(stream);
    if (it == streams_.end()) return;
    gone = std::move(it->second);
    streams_.erase(it);
  }
  gone.subscription.reset();  // joins its delivery thread, outside the lock
}

void EventStreams::close_all() {
  std::unordered_map<uint64_t, Open> gone;
  {
    std::lock_guard lock(mu_);
    closed_ = true;
    gone.swap(streams_);
  }
  for (auto& [n, s] : gone) {
    s.subscription.reset();
    if (s.on_end) s.on_end();
  }
}

size_t EventStreams::open_streams() const {
  std::lock_guard lock(mu_);
  return streams_.size();
}

}  // namespace aether
