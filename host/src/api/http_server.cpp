// The listener of the HTTP API: binds, accepts (refusing connections over
// max_connections at once), runs the I/O threads and the small pool that
// takes the routes that may block (store reads, hot swaps). Connections and
// their limits are in http_connection.cpp, routes in http_routes.cpp.
#include "api/http_server.hpp"

#include <sys/resource.h>

#include <algorithm>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/thread_pool.hpp>
#include <future>
#include <thread>

#include "api/event_stream.hpp"
#include "api/http_connection.hpp"
#include "core/log.hpp"

namespace aether {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using boost::system::error_code;

// How long stop() waits for requests in progress before leaving them.
constexpr int64_t kStopWaitMs = 60000;

uint32_t io_thread_count(uint32_t configured) {
  if (configured > 0) return configured;
  const unsigned cores = std::thread::hardware_concurrency();
  return std::clamp<uint32_t>(cores == 0 ? 2 : cores, 1, 8);
}

// Each connection is a descriptor: make room for max_connections of them.
void raise_descriptor_limit(uint32_t max_connections) {
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) != 0) return;
  const rlim_t want = static_cast<rlim_t>(max_connections) + 256;
  if (lim.rlim_cur >= want) return;
  lim.rlim_cur = std::min(want, lim.rlim_max);
  if (setrlimit(RLIMIT_NOFILE, &lim) != 0 || lim.rlim_cur < want) {
    log::warn("http: api.http.max_connections is " + std::to_string(max_connections) +
              " but the open file limit is " + std::to_string(lim.rlim_cur));
  }
}

Result<tcp::endpoint> resolve(asio::io_context& ioc, const std::string& host, int port,
                              const std::string& addr) {
  error_code ec;
  const auto ip = asio::ip::make_address(host, ec);
  if (!ec) return tcp::endpoint(ip, static_cast<unsigned short>(port));
  tcp::resolver resolver(ioc);
  auto found = resolver.resolve(host, std::to_string(port), ec);
  if (ec || found.empty()) {
    return Status::unavailable("http: cannot listen on " + addr + ": cannot resolve '" + host +
                               "'" + (ec ? ": " + ec.message() : ""));
  }
  return found.begin()->endpoint();
}

}  // namespace

struct HttpServer::Impl {
  HttpOptions opts;
  std::atomic<bool> ready{true};
  std::atomic<bool> stopped{false};
  ApiRoutes routes;
  EventStreams streams;  // outlives the hub and the connections
  http_detail::ConnectionHub hub;
  // Destroyed before the hub (its pending handlers hold connections).
  asio::io_context ioc;
  // Keeps the I/O threads running while no socket operation is pending (a
  // connection waiting for its command has none), until stop().
  asio::executor_work_guard<asio::io_context::executor_type> work{ioc.get_executor()};
  // The acceptor, its retry timer and stop()'s close share one strand.
  tcp::acceptor acceptor{asio::make_strand(ioc)};
  asio::steady_timer retry{acceptor.get_executor()};
  std::vector<std::thread> threads;
  asio::thread_pool blocking;
  int port = 0;
  int64_t last_accept_warning = 0;

  Impl(HttpOptions o, ApiRoutes::Deps deps, uint32_t io_threads, Bus* events)
      : opts(std::move(o)),
        routes(with_hooks(std::move(deps))),
        streams(events, {opts.max_event_streams, opts.event_stream_queue}),
        hub(opts, routes),
        ioc(static_cast<int>(io_threads)),
        blocking(std::max<uint32_t>(2, io_threads)) {
    hub.set_streams(&streams);
  }

  ApiRoutes::Deps with_hooks(ApiRoutes::Deps deps) {
    deps.run_blocking = [this](std::function<void()> task) { asio::post(blocking, std::move(task)); };
    deps.ready = &ready;
    return deps;
  }

  Status listen(const std::string& addr) {
    auto endpoint = resolve(ioc, opts.host, opts.port, addr);
    if (!endpoint) return endpoint.status();
    error_code ec;
    acceptor.open(endpoint->protocol(), ec);
    // SO_REUSEADDR only (restart over TIME_WAIT); never SO_REUSEPORT: a
    // second host on the same port must fail here.
    if (!ec) acceptor.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) acceptor.bind(*endpoint, ec);
    if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
      return Status::unavailable("http: cannot listen on " + addr +
                                 " (address in use, or not an address of this machine): " + ec.message());
    }
    port = acceptor.local_endpoint().port();
    return Status::ok();
  }

  void accept() {
    acceptor.async_accept(asio::make_strand(ioc), [this](error_code ec, tcp::socket socket) {
      if (ec == asio::error::operation_aborted || !acceptor.is_open()) return;
      if (ec) return accept_failed(ec);
      if (!hub.admit()) {
        http_detail::refuse(std::move(socket), opts.max_connections);
      } else {
        socket.set_option(tcp::no_delay(true), ec);
        http_detail::serve(std::move(socket), hub);
      }
      accept();
    });
  }

  // Out of descriptors or memory: say so (once a second) and retry shortly.
  void accept_failed(const error_code& ec) {
    const int64_t now = std::chrono::duration_cast<std::chrono::seconds>(
                            std::chrono::steady_clock::now().time_since_epoch())
                            .count();
    if (now != last_accept_warning) {
      last_accept_warning = now;
      log::warn("http: accept failed: " + ec.message() + " (" + std::to_string(hub.open()) +
                " connections open)");
    }
    retry.expires_after(std::chrono::milliseconds(50));
    retry.async_wait([this](error_code e) {
      if (!e) accept();
    });
  }

  void run_threads(uint32_t n) {
    for (uint32_t i = 0; i < n; ++i) {
      threads.emplace_back([this] {
        for (;;) {
          try {
            ioc.run();
            return;
          } catch (const std::exception& e) {
            log::error(std::string("http: I/O thread caught: ") + e.what());
          } catch (...) {
            log::error("http: I/O thread caught an unknown exception");
          }
        }
      });
    }
  }

  void close_acceptor() {
    auto closed = std::make_shared<std::promise<void>>();
    auto done = closed->get_future();
    asio::post(acceptor.get_executor(), [this, closed] {
      error_code ignored;
      acceptor.close(ignored);
      retry.cancel();
      closed->set_value();
    });
    done.wait_for(std::chrono::seconds(10));
  }
};

HttpServer::HttpServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

HttpServer::~HttpServer() { stop(); }

Result<std::unique_ptr<HttpServer>> HttpServer::start(const HttpOptions& options, Runtime& runtime,
                                                      PluginRegistry& registry, Metrics& metrics,
                                                      PluginManager* plugins, ClusterNode* cluster,
                                                      Bus* events) {
  const uint32_t io_threads = io_thread_count(options.threads);
  ApiRoutes::Deps deps{runtime, registry, metrics, plugins, cluster, options.node_id, {}, nullptr, options.max_json_depth};
  auto impl = std::make_unique<Impl>(options, std::move(deps), io_threads, events);
  const std::string addr = options.host + ":" + std::to_string(options.port);
  if (Status s = impl->listen(addr); !s) return s;
  raise_descriptor_limit(options.max_connections);
  impl->accept();
  impl->run_threads(io_threads);
  return std::unique_ptr<HttpServer>(new HttpServer(std::move(impl)));
}

int HttpServer::port() const { return impl_ ? impl_->port : 0; }

void HttpServer::set_ready(bool ready) {
  if (impl_) impl_->ready.store(ready);
}

void HttpServer::stop() {
  if (!impl_ || impl_->stopped.exchange(true)) return;
  impl_->ready.store(false);
  impl_->close_acceptor();
  impl_->hub.stop_all();
  impl_->streams.close_all();  // event streams end (their clients see the connection close)
  const bool drained = impl_->hub.wait_requests(kStopWaitMs);
  impl_->ioc.stop();
  for (auto& t : impl_->threads) t.join();
  if (!drained) {
    // A command that never completes would call back into freed memory:
    // leave the server's state allocated instead.
    log::error("http: requests still in progress after " + std::to_string(kStopWaitMs / 1000) +
               " s; stopping without them");
    impl_.release();  // NOLINT(bugprone-unused-return-value): deliberately leaked
    return;
  }
  impl_->blocking.join();
}

}  // namespace aether
