// The server-sent events stream of committed events,
// GET /v1/{ns}/events/stream?type=&id= (docs/api.md): one SSE message per
// commit, in the commit format of the events subject.
//
// EventStreams opens one bus subscription per stream, filtered by the bus
// (aether.<ns>.events.<type|*>.<id|*>), and turns each commit message it
// delivers into one SSE frame, its data as it is. Fed by the NATS bus
// (cluster-wide) or by the host's local bus: both carry the same commit
// messages (store/commit_codec.hpp).
// Independent of plugins: a hot swap does not touch a stream.
// Transport-free (no Asio): the HTTP connection writes the frames.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

#include "api/command_api.hpp"

namespace aether {

class Bus;
class Subscription;

struct EventStreamOptions {
  uint32_t max_streams = 64;   // api.http.max_event_streams
  uint32_t queue = 1024;       // api.http.event_stream_queue: frames buffered per client
};

class EventStreams {
 public:
  // `bus` may be null: every stream is then refused (501).
  EventStreams(Bus* bus, EventStreamOptions options);
  ~EventStreams();
  EventStreams(const EventStreams&) = delete;
  EventStreams& operator=(const EventStreams&) = delete;

  const EventStreamOptions& options() const { return options_; }

  // Opens a stream; `on_frame` is called on a bus thread with each SSE frame
  // (never blocks). Returns the stream's id for close(), or the error reply
  // (400 bad filter, 501 no bus, 503 max_streams open).
  // `on_end` is called when close_all() ends the stream.
  std::optional<uint64_t> open(const std::string& ns, const std::string& type, const std::string& id,
                               std::function<void(std::string)> on_frame, std::function<void()> on_end,
                               ApiReply& error);
  // Ends a stream (joins its delivery thread). Idempotent.
  void close(uint64_t stream);
  // Ends every stream, calling their `on_end` (the server stops).
  void close_all();
  size_t open_streams() const;

  // The subject pattern a stream with this filter subscribes to.
  static std::string pattern(const std::string& ns, const std::string& type, const std::string& id);

 private:
  Bus* bus_;
  EventStreamOptions options_;
  mutable std::mutex mu_;
  struct Open {
    std::unique_ptr<Subscription> subscription;
    std::function<void()> on_end;
  };
  std::unordered_map<uint64_t, Open> streams_;
  uint64_t next_ = 1;
  uint32_t opening_ = 0;
  bool closed_ = false;  // close_all() ran: no new stream
};

// One SSE frame: "id: <id>\nevent: <event>\ndata: <data>\n\n" (a newline in
// `data` starts another data line; an empty `id` is left out).
std::string sse_frame(const std::string& event, const std::string& id, const std::string& data);

}  // namespace aether
