// The HTTP side of the event stream: a connection that has asked for
// GET /v1/{ns}/events/stream becomes a StreamSession. Frames from the bus go
// into a bounded inbox (never blocking the bus, never slowing commands); the
// session writes them on its strand. A client whose inbox overflows is sent
// a final `dropped` message and closed; a write that does not finish within
// api.http.request_timeout closes the connection (a client that never reads).
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/http/status.hpp>
#include <array>
#include <deque>
#include <mutex>

#include "api/event_stream.hpp"
#include "api/http_connection.hpp"
#include "core/log.hpp"

namespace aether::http_detail {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

// A comment line this often on a quiet stream: proxies keep it open, and a
// client that vanished is noticed by the failing write.
constexpr std::chrono::seconds kPingInterval{15};
// Bytes waiting for one client at most, whatever api.http.event_stream_queue
// (commits can be large).
constexpr size_t kMaxInboxBytes = 16 << 20;

// Frames waiting for the client: filled on a bus thread, emptied on the
// session's strand.
class Inbox {
 public:
  Inbox(size_t capacity, std::function<void()> wake) : capacity_(capacity), wake_(std::move(wake)) {}

  void offer(std::string frame) {
    {
      std::lock_guard lock(mu_);
      if (overflow_) return;
      if (frames_.size() >= capacity_ || bytes_ + frame.size() > kMaxInboxBytes) {
        overflow_ = true;
        frames_.clear();
        bytes_ = 0;
      } else {
        bytes_ += frame.size();
        frames_.push_back(std::move(frame));
      }
      if (wake_posted_) return;
      wake_posted_ = true;
    }
    wake_();
  }

  // Everything queued, and whether the client fell behind.
  std::deque<std::string> take(bool& overflow) {
    std::lock_guard lock(mu_);
    wake_posted_ = false;
    overflow = overflow_;
    bytes_ = 0;
    std::deque<std::string> out;
    out.swap(frames_);
    return out;
  }

 private:
  std::mutex mu_;
  std::deque<std::string> frames_;
  size_t capacity_;
  size_t bytes_ = 0;
  bool overflow_ = false;
  bool wake_posted_ = false;
  std::function<void()> wake_;
};

std::string raw_head(int status, const std::string& type, const std::string& origin) {
  std::string h = "HTTP/1.1 " + std::to_string(status) + " " +
                  std::string(boost::beast::http::obsolete_reason(static_cast<boost::beast::http::status>(status))) +
                  "\r\nContent-Type: " + type + "\r\nCache-Control: no-store\r\nConnection: close\r\n";
  if (!origin.empty()) h += "Access-Control-Allow-Origin: " + origin + "\r\nVary: Origin\r\n";
  return h;
}

class StreamSession : public std::enable_shared_from_this<StreamSession> {
 public:
  StreamSession(tcp::socket socket, ConnectionHub& hub, uint64_t connection)
      : socket_(std::move(socket)),
        timer_(socket_.get_executor()),
        ping_(socket_.get_executor()),
        hub_(hub),
        connection_(connection) {}
  ~StreamSession() { close(); }

  void start(const ApiRequest& req, const std::string& ns, const std::string& origin) {
    std::string type, id;
    for (const auto& [k, v] : req.query) {
      if (k == "type") type = v;
      if (k == "id") id = v;
    }
    inbox_ = std::make_shared<Inbox>(hub_.streams()->options().queue, on_strand(&StreamSession::pump));
    ApiReply error;
    auto stream = hub_.streams()->open(
        ns, type, id, [inbox = inbox_](std::string f) { inbox->offer(std::move(f)); },
        on_strand(&StreamSession::close), error);
    if (!stream) {
      final_ = true;
      return write(raw_head(error.status, "application/json", origin) +
                   "Content-Length: " + std::to_string(error.body.size()) + "\r\n\r\n" + error.body);
    }
    stream_ = *stream;
    read();
    ping();
    write(raw_head(200, "text/event-stream", origin) + "X-Accel-Buffering: no\r\n\r\n: events of " +
          EventStreams::pattern(ns, type, id) + "\n\n");
  }

 private:
  // A callable for other threads that runs `method` on this session's strand
  // if the session still exists (it never keeps the session alive there).
  std::function<void()> on_strand(void (StreamSession::*method)()) {
    return [weak = weak_from_this(), ex = socket_.get_executor(), method] {
      asio::post(ex, [weak, method] {
        if (auto s = weak.lock()) ((*s).*method)();
      });
    };
  }

  // Waits for the client to go away (what it sends is dropped).
  void read() {
    socket_.async_read_some(asio::buffer(scratch_), [self = shared_from_this()](boost::system::error_code ec, size_t) {
      if (self->closed_) return;
      if (ec) return self->close();
      self->read();
    });
  }

  void ping() {
    ping_.expires_after(kPingInterval);
    ping_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
      if (ec || self->closed_) return;
      if (!self->writing_) self->write(": ping\n\n");
      self->ping();
    });
  }

  void pump() {
    if (closed_ || writing_) return;
    bool overflow = false;
    auto frames = inbox_->take(overflow);
    std::string out;
    if (overflow) {
      final_ = true;
      out = sse_frame("dropped", "",
                      R"x({"error":{"code":"slow_consumer","message":"the client read too slowly: more than )x" +
                          std::to_string(hub_.streams()->options().queue) +
                          R"x( commits were waiting (api.http.event_stream_queue)"}})x");
    } else {
      for (auto& f : frames) out += f;
    }
    if (!out.empty()) write(std::move(out));
  }

  void write(std::string data) {
    out_ = std::move(data);
    writing_ = true;
    if (const int64_t ms = hub_.options().request_timeout_ms; ms > 0) {
      timer_.expires_after(std::chrono::milliseconds(ms));
      timer_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
        if (!ec && self->writing_) self->close();
      });
    }
    asio::async_write(socket_, asio::buffer(out_), [self = shared_from_this()](boost::system::error_code ec, size_t) {
      self->writing_ = false;
      self->timer_.cancel();
      if (self->closed_) return;
      if (ec || self->final_) return self->close();
      self->pump();
    });
  }

  void close() {
    if (closed_) return;
    closed_ = true;
    if (stream_ != 0) hub_.streams()->close(stream_);
    boost::system::error_code ignored;
    socket_.shutdown(tcp::socket::shutdown_both, ignored);
    socket_.close(ignored);
    timer_.cancel();
    ping_.cancel();
    hub_.remove(connection_);
  }

  tcp::socket socket_;
  asio::steady_timer timer_;
  asio::steady_timer ping_;
  ConnectionHub& hub_;
  uint64_t connection_;
  uint64_t stream_ = 0;
  std::shared_ptr<Inbox> inbox_;
  std::string out_;
  std::array<char, 512> scratch_{};
  bool writing_ = false;
  bool final_ = false;
  bool closed_ = false;
};

}  // namespace

void serve_event_stream(tcp::socket socket, ConnectionHub& hub, uint64_t connection, const ApiRequest& request,
                        const std::string& ns, const std::string& origin) {
  auto s = std::make_shared<StreamSession>(std::move(socket), hub, connection);
  s->start(request, ns, origin);
}

}  // namespace aether::http_detail
