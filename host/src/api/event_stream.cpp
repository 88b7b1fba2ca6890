#include "api/event_stream.hpp"

#include <vector>

#include "api/http_routes.hpp"
#include "bus/bus.hpp"
#include "core/log.hpp"
#include "core/names.hpp"
#include "core/subjects.hpp"
#include "store/commit_codec.hpp"

namespace aether {
namespace {

// What a commit message becomes: one frame, its data as it is.
MessageHandler commit_handler(std::function<void(std::string)> on_frame) {
  return [on_frame = std::move(on_frame)](const Message& m) {
    const auto c = decode_commit_summary(m.data);
    on_frame(sse_frame("commit", c ? c->commit_id : std::string(), m.data));
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

EventStreams::EventStreams(Bus* bus, EventStreamOptions options) : bus_(bus), options_(options) {}

EventStreams::~EventStreams() { close_all(); }

std::string EventStreams::pattern(const std::string& ns, const std::string& type, const std::string& id) {
  return subjects::events_pattern(ns, type, id);
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
  SubscribeOptions so;
  so.queue_capacity = options_.queue;
  auto sub = bus_->subscribe(pattern(ns, type, id), commit_handler(std::move(on_frame)), so);
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
