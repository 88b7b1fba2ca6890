#include "api/http_connection.hpp"

#include <algorithm>
#include <array>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http.hpp>
#include <cctype>
#include <chrono>
#include <optional>

namespace aether::http_detail {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

constexpr size_t kReadChunk = 16 << 10;
// After an early reply (the body was not read), input is read and dropped
// this long so that the client sees the reply instead of a reset.
constexpr int64_t kLingerMs = 5000;

// What to do with the connection once a reply is written.
enum class After { kKeepAlive, kClose, kLinger };

std::string lower(beast::string_view s) {
  std::string out(s.data(), s.size());
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

// "application/json", with or without parameters such as "; charset=utf-8".
bool is_json_media_type(beast::string_view value) {
  std::string v = lower(value.substr(0, value.find(';')));
  const auto b = v.find_first_not_of(" \t");
  const auto e = v.find_last_not_of(" \t");
  return b != std::string::npos && v.substr(b, e - b + 1) == "application/json";
}

// Compares in time independent of where the strings differ.
bool constant_time_equal(beast::string_view got, const std::string& want) {
  if (got.size() != want.size()) return false;
  unsigned char diff = 0;
  for (size_t i = 0; i < got.size(); ++i) diff |= static_cast<unsigned char>(got[i] ^ want[i]);
  return diff == 0;
}

std::string quoted(beast::string_view s) {
  return "'" + std::string(s.substr(0, 100).data(), std::min<size_t>(s.size(), 100)) + "'";
}

using Headers = std::vector<std::pair<http::field, std::string>>;

// A browser sends Origin also with a POST to the page's own host. That is the
// same origin when Origin is http://<Host> and Host is an IP address or
// localhost (a DNS name could be rebound to this host by a foreign page: list
// it in api.http.allowed_origins instead).
bool same_origin(beast::string_view origin, beast::string_view host) {
  if (host.empty() || origin != "http://" + std::string(host)) return false;
  std::string name(host);
  if (name.front() == '[') return name.find(']') != std::string::npos;  // [::1]:port
  name = name.substr(0, name.rfind(':') == std::string::npos ? name.size() : name.rfind(':'));
  if (name == "localhost") return true;
  boost::system::error_code ec;
  boost::asio::ip::make_address_v4(name, ec);
  return !ec;
}

}  // namespace

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(tcp::socket socket, ConnectionHub& hub)
      : socket_(std::move(socket)),
        timer_(socket_.get_executor()),
        hub_(hub),
        buffer_(hub.options().max_header_bytes + kReadChunk) {}
  ~Connection() { close(); }

  void set_id(uint64_t id) { id_ = id; }
  void start() { begin_request(opts().header_timeout_ms); }
  tcp::socket::executor_type executor() { return socket_.get_executor(); }

  // The server stops: a connection waiting for (or reading) a request closes.
  void on_stop() {
    if (phase_ == Phase::kReading) close();
  }

 private:
  enum class Phase { kReading, kHandling, kWriting, kLinger, kClosed };

  const HttpOptions& opts() const { return hub_.options(); }

  // Deadlines: the connection closes once `deadline_` has passed. 0 = none.
  // One timer wait serves many deadlines: a later deadline leaves the wait
  // as it is (when it fires early it waits again for the deadline then in
  // force), only an earlier one restarts it. A request thus costs no timer
  // operation of its own once its connection's wait is in place.
  void arm(int64_t ms) {
    if (ms <= 0) return disarm();
    arm_until(Clock::now() + std::chrono::milliseconds(ms));
  }
  void arm_until(Clock::time_point when) {
    deadline_ = when;
    if (timer_waiting_ && timer_.expiry() <= when) return;
    timer_.expires_at(when);  // a wait in progress ends as superseded
    wait_deadline();
  }
  void wait_deadline() {
    timer_waiting_ = true;
    const uint64_t gen = ++timer_gen_;
    timer_.async_wait([self = shared_from_this(), gen](beast::error_code ec) {
      if (gen != self->timer_gen_) return;  // superseded by a later wait
      self->timer_waiting_ = false;
      if (ec || self->phase_ == Phase::kClosed || self->deadline_ == Clock::time_point::max()) return;
      if (Clock::now() >= self->deadline_) return self->close();
      self->timer_.expires_at(self->deadline_);
      self->wait_deadline();
    });
  }
  void disarm() { deadline_ = Clock::time_point::max(); }

  // Waits for the next request: `first_byte_ms` until its first byte, then
  // header_timeout for its headers and request_timeout for all of it.
  void begin_request(int64_t first_byte_ms) {
    phase_ = Phase::kReading;
    if (hub_.stopping()) return close();
    parser_.emplace();
    parser_->header_limit(static_cast<std::uint32_t>(std::min<uint64_t>(opts().max_header_bytes, UINT32_MAX)));
    parser_->body_limit(opts().max_body_bytes);
    started_ = false;
    header_checked_ = false;
    arm(first_byte_ms);
    parse();
  }

  void parse() {
    beast::error_code ec;
    while (buffer_.size() > 0 && !parser_->is_done()) {
      if (!started_) {
        started_ = true;
        started_at_ = Clock::now();
        arm(opts().header_timeout_ms);
      }
      const size_t n = parser_->put(buffer_.data(), ec);
      buffer_.consume(n);
      if (ec == http::error::need_more) break;
      if (ec) return malformed(ec);
      if (parser_->is_header_done() && !header_checked_) {
        header_checked_ = true;
        if (!check_header()) return;
        if (opts().request_timeout_ms > 0) {
          arm_until(started_at_ + std::chrono::milliseconds(opts().request_timeout_ms));
        }
        if (expects_continue()) return send_continue();
      }
      if (n == 0) break;
    }
    if (parser_->is_done()) return dispatch();
    read_more();
  }

  void read_more() {
    const size_t room = buffer_.max_size() - buffer_.size();
    if (room == 0) return early(431, "headers_too_large", header_size_message(), After::kLinger);
    socket_.async_read_some(buffer_.prepare(std::min(room, kReadChunk)),
                            [self = shared_from_this()](beast::error_code ec, size_t n) {
                              if (self->phase_ == Phase::kClosed) return;
                              self->buffer_.commit(n);
                              if (ec) return self->close();
                              self->parse();
                            });
  }

  std::string header_size_message() const {
    return "request headers are larger than " + std::to_string(opts().max_header_bytes) + " bytes";
  }

  // A request the parser refused: too large, or not HTTP.
  void malformed(const beast::error_code& ec) {
    if (ec == http::error::body_limit) {
      return early(413, "payload_too_large",
                   "request body is larger than " + std::to_string(opts().max_body_bytes) + " bytes",
                   After::kLinger);
    }
    if (ec == http::error::header_limit) {
      // The parser keeps the request line once it has it in full; else
      // the line is what the buffer starts with.
      size_t line = parser_->get().target().size();
      if (parser_->get().method_string().empty()) {
        const beast::string_view seen(static_cast<const char*>(buffer_.data().data()), buffer_.size());
        line = std::min(seen.find("\r\n"), seen.size());
      }
      if (line > opts().max_uri_bytes) return early(414, "uri_too_long", "request URI is too long", After::kLinger);
      return early(431, "headers_too_large", header_size_message(), After::kLinger);
    }
    early(400, "bad_request", "malformed HTTP request: " + ec.message(), After::kLinger);
  }

  // Checks a request's headers before its body is read: limits, origin,
  // token, media type. Answers and returns false if one fails.
  bool check_header() {
    const auto& req = parser_->get();
    const size_t fields = static_cast<size_t>(std::distance(req.begin(), req.end()));
    const After after = parser_->is_done() ? After::kKeepAlive : After::kLinger;
    if (fields > opts().max_header_count) {
      early(431, "headers_too_large",
            "request has " + std::to_string(fields) + " header fields (at most " +
                std::to_string(opts().max_header_count) + ")",
            After::kLinger);
      return false;
    }
    if (req.target().size() > opts().max_uri_bytes) {
      early(414, "uri_too_long", "request URI is too long", After::kLinger);
      return false;
    }
    origin_.clear();
    if (auto o = req[http::field::origin]; !o.empty() && !same_origin(o, req[http::field::host])) {
      const auto& allowed = opts().allowed_origins;
      if (std::find(allowed.begin(), allowed.end(), std::string(o)) == allowed.end()) {
        early(403, "forbidden_origin",
              "origin " + quoted(o) + " is not allowed (api.http.allowed_origins)", after);
        return false;
      }
      origin_ = std::string(o);
    }
    if (!authorized(req)) {
      early(401, "unauthorized",
            req.count(http::field::authorization) > 0 ? "the bearer token is not valid"
                                                      : "this host requires 'Authorization: Bearer <token>'",
            after, {{http::field::www_authenticate, "Bearer"}});
      return false;
    }
    if (req.method() == http::verb::post && !is_json_media_type(req[http::field::content_type])) {
      const auto ct = req[http::field::content_type];
      early(415, "unsupported_media_type",
            "a POST needs 'Content-Type: application/json', got " + (ct.empty() ? std::string("none") : quoted(ct)),
            after);
      return false;
    }
    return true;
  }

  bool authorized(const http::request<http::string_body>& req) const {
    if (opts().bearer_token.empty() || req.method() == http::verb::options) return true;
    const auto target = req.target();
    const auto path = target.substr(0, target.find('?'));
    if (path == "/healthz" || path == "/readyz") return true;
    // The console's static files hold no data (every API call they make
    // needs the token); a browser cannot send a token with a page load.
    if (is_console_path(std::string(path)) && req.method() == http::verb::get) return true;
    return constant_time_equal(req[http::field::authorization], "Bearer " + opts().bearer_token);
  }

  bool expects_continue() const {
    const auto& req = parser_->get();
    return !parser_->is_done() && req.version() >= 11 &&
           lower(req[http::field::expect]) == "100-continue";
  }

  void send_continue() {
    static constexpr char kContinue[] = "HTTP/1.1 100 Continue\r\n\r\n";
    asio::async_write(socket_, asio::buffer(kContinue, sizeof kContinue - 1),
                      [self = shared_from_this()](beast::error_code ec, size_t) {
                        if (self->phase_ == Phase::kClosed) return;
                        if (ec) return self->close();
                        self->parse();
                      });
  }

  // A full request: hand it to the routes; the reply comes back on this
  // connection's strand whenever it is ready.
  void dispatch() {
    disarm();
    if (!hub_.request_started()) return close();  // stopping: this request is not run
    phase_ = Phase::kHandling;
    in_request_ = true;
    auto& req = parser_->get();
    version_ = req.version();
    keep_alive_ = req.keep_alive();
    head_ = req.method() == http::verb::head;
    ApiRequest a;
    a.method = std::string(req.method_string());
    split_target(std::string(req.target()), a.path, a.query);
    if (req.method() == http::verb::options) return preflight(a.path);
    if (req.method() == http::verb::get) {
      if (auto ns = event_stream_namespace(a.path)) return stream(a, *ns);
    }
    a.idempotency_key = std::string(req["Idempotency-Key"]);
    a.body = std::move(req.body());
    hub_.routes().handle(std::move(a), [self = shared_from_this()](ApiResponse r) {
      asio::post(self->socket_.get_executor(), [self, r = std::move(r)]() mutable {
        self->write_reply(std::move(r), After::kKeepAlive);
      });
    });
  }

  // The socket becomes an event stream; this connection ends without
  // closing it (the stream keeps the connection's admission).
  void stream(const ApiRequest& a, const std::string& ns) {
    finish_request();  // a stream is no request in progress for stop()
    phase_ = Phase::kClosed;
    timer_.cancel();
    serve_event_stream(std::move(socket_), hub_, id_, a, ns, origin_);
  }

  // OPTIONS: what a browser asks before a cross-origin request.
  void preflight(const std::string& path) {
    const std::string allow = hub_.routes().methods_for(path);
    if (allow.empty()) {
      return write_reply({http_error_reply(404, "not_found", "no route for OPTIONS " + path)}, After::kKeepAlive);
    }
    Headers h = {{http::field::allow, allow + ", OPTIONS"}};
    if (!origin_.empty()) {
      h.push_back({http::field::access_control_allow_methods, allow + ", OPTIONS"});
      h.push_back({http::field::access_control_allow_headers, "Authorization, Content-Type, Idempotency-Key"});
      h.push_back({http::field::access_control_max_age, "600"});
    }
    write_reply({{204, ""}}, After::kKeepAlive, h);
  }

  // A reply before the body was read (a refused request).
  void early(int status, const std::string& code, const std::string& message, After after,
             const Headers& headers = {}) {
    disarm();
    const auto& req = parser_->get();
    version_ = req.version() == 10 ? 10 : 11;
    keep_alive_ = parser_->is_header_done() && req.keep_alive();
    head_ = false;
    write_reply({http_error_reply(status, code, message)}, after, headers);
  }

  void write_reply(ApiResponse r, After after, const Headers& headers = {}) {
    if (phase_ == Phase::kClosed) return;
    phase_ = Phase::kWriting;
    if (after == After::kKeepAlive && (!keep_alive_ || hub_.stopping())) after = After::kClose;
    after_ = after;
    reply_body_ = std::move(r.reply.body);
    reply_head_ = reply_head(r, headers, after == After::kKeepAlive);
    if (head_) reply_body_.clear();
    arm(opts().request_timeout_ms);
    const std::array<asio::const_buffer, 2> parts{asio::buffer(reply_head_), asio::buffer(reply_body_)};
    asio::async_write(socket_, parts, [self = shared_from_this()](beast::error_code ec, size_t) {
      self->on_written(ec);
    });
  }

  // The status line and headers of a reply, written as Beast's serializer
  // writes them for a prepared response (Content-Length always; Connection:
  // close on HTTP/1.1 and keep-alive on HTTP/1.0 when they differ from the
  // version's default), without building a fields container per reply.
  std::string reply_head(const ApiResponse& r, const Headers& headers, bool keep_alive) const {
    std::string h;
    h.reserve(192);
    h += version_ == 10 ? "HTTP/1.0 " : "HTTP/1.1 ";
    h += std::to_string(r.reply.status);
    h += ' ';
    const auto reason = http::obsolete_reason(static_cast<http::status>(r.reply.status));
    h.append(reason.data(), reason.size());
    h += "\r\n";
    auto field = [&h](http::field f, beast::string_view value) {
      const auto name = http::to_string(f);
      h.append(name.data(), name.size());
      h += ": ";
      h.append(value.data(), value.size());
      h += "\r\n";
    };
    if (r.reply.status != 204) field(http::field::content_type, r.content_type);
    if (!r.allow.empty()) field(http::field::allow, r.allow);
    for (const auto& [f, v] : headers) field(f, v);
    if (!origin_.empty()) {
      field(http::field::access_control_allow_origin, origin_);
      field(http::field::vary, "Origin");
    }
    if (version_ == 10 && keep_alive) field(http::field::connection, "keep-alive");
    if (version_ != 10 && !keep_alive) field(http::field::connection, "close");
    field(http::field::content_length, std::to_string(reply_body_.size()));
    h += "\r\n";
    return h;
  }

  void on_written(const beast::error_code& ec) {
    if (phase_ == Phase::kClosed) return;
    disarm();
    finish_request();
    if (ec || after_ == After::kClose) return close();
    if (after_ == After::kLinger) return linger();
    begin_request(opts().idle_timeout_ms);
  }

  void finish_request() {
    if (!in_request_) return;
    in_request_ = false;
    hub_.request_finished();
  }

  // Stops sending and drops what the client still sends, for a bounded time.
  void linger() {
    phase_ = Phase::kLinger;
    beast::error_code ignored;
    socket_.shutdown(tcp::socket::shutdown_send, ignored);
    arm(kLingerMs);
    drain();
  }
  void drain() {
    buffer_.clear();
    socket_.async_read_some(buffer_.prepare(kReadChunk), [self = shared_from_this()](beast::error_code ec, size_t) {
      if (self->phase_ == Phase::kClosed) return;
      if (ec) return self->close();
      self->drain();
    });
  }

  void close() {
    if (phase_ == Phase::kClosed) return;
    phase_ = Phase::kClosed;
    beast::error_code ignored;
    socket_.shutdown(tcp::socket::shutdown_both, ignored);
    socket_.close(ignored);
    timer_.cancel();
    finish_request();
    hub_.remove(id_);
  }

  tcp::socket socket_;
  asio::steady_timer timer_;
  ConnectionHub& hub_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::string reply_head_, reply_body_;  // the reply being written
  Phase phase_ = Phase::kReading;
  After after_ = After::kKeepAlive;
  uint64_t id_ = 0;
  uint64_t timer_gen_ = 0;
  Clock::time_point deadline_ = Clock::time_point::max();
  bool timer_waiting_ = false;
  Clock::time_point started_at_;
  std::string origin_;
  unsigned version_ = 11;
  bool started_ = false;
  bool header_checked_ = false;
  bool keep_alive_ = true;
  bool head_ = false;
  bool in_request_ = false;
};

bool ConnectionHub::admit() {
  std::lock_guard lock(mu_);
  if (admitted_ >= options_.max_connections) return false;
  ++admitted_;
  return true;
}

uint64_t ConnectionHub::add(const std::shared_ptr<Connection>& connection) {
  std::lock_guard lock(mu_);
  const uint64_t id = next_id_++;
  connections_.emplace(id, connection);
  return id;
}

void ConnectionHub::remove(uint64_t id) {
  std::lock_guard lock(mu_);
  if (connections_.erase(id) > 0) --admitted_;
}

size_t ConnectionHub::open() const {
  std::lock_guard lock(mu_);
  return admitted_;
}

bool ConnectionHub::request_started() {
  std::lock_guard lock(mu_);
  if (stopping_.load()) return false;
  ++in_flight_;
  return true;
}

void ConnectionHub::request_finished() {
  std::lock_guard lock(mu_);
  if (--in_flight_ == 0) idle_.notify_all();
}

bool ConnectionHub::wait_requests(int64_t timeout_ms) {
  std::unique_lock lock(mu_);
  return idle_.wait_for(lock, std::chrono::milliseconds(timeout_ms), [this] { return in_flight_ == 0; });
}

void ConnectionHub::stop_all() {
  {
    std::lock_guard lock(mu_);
    stopping_.store(true);
  }
  std::vector<std::shared_ptr<Connection>> live;
  {
    std::lock_guard lock(mu_);
    for (auto& [id, weak] : connections_) {
      if (auto c = weak.lock()) live.push_back(std::move(c));
    }
  }
  for (auto& c : live) {
    asio::post(c->executor(), [c] { c->on_stop(); });
  }
}

void serve(tcp::socket socket, ConnectionHub& hub) {
  auto c = std::make_shared<Connection>(std::move(socket), hub);
  c->set_id(hub.add(c));
  asio::post(c->executor(), [c] { c->start(); });
}

void refuse(tcp::socket socket, uint32_t max_connections) {
  const std::string body =
      R"x({"error":{"code":"unavailable","message":"too many connections (api.http.max_connections is )x" +
      std::to_string(max_connections) + R"x()"}})x";
  const std::string reply = "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                            "Connection: close\r\nContent-Length: " +
                            std::to_string(body.size()) + "\r\n\r\n" + body;
  beast::error_code ignored;
  socket.non_blocking(true, ignored);
  socket.write_some(asio::buffer(reply), ignored);
  socket.shutdown(tcp::socket::shutdown_both, ignored);
  socket.close(ignored);
}

}  // namespace aether::http_detail
