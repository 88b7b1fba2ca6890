#include "api/nats_ingress.hpp"

#include <nats/nats.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <optional>

#include "api/command_api.hpp"
#include "cluster/cluster.hpp"
#include "core/guarded.hpp"
#include "core/log.hpp"
#include "core/subjects.hpp"
#include "nats/connection.hpp"
#include "runtime/runtime.hpp"

namespace aether {

struct NatsIngress::Impl {
  NatsConnection& conn;
  Runtime& runtime;
  ClusterNode* cluster = nullptr;
  size_t max_json_depth = kDefaultMaxJsonDepth;
  std::vector<natsSubscription*> subs;
  std::mutex mu;
  std::condition_variable idle;
  uint64_t in_flight = 0;

  Impl(NatsConnection& c, Runtime& r) : conn(c), runtime(r) {}

  // A command message, copied out of the cnats message.
  struct Request {
    std::string subject, reply_to, body, idempotency_key;
    // The route trail headers (route_trail.hpp), read only on the forward
    // subject: on a client's command subject they mean nothing.
    std::optional<std::string> epoch, path, budget;
  };

  static void on_msg(natsConnection*, natsSubscription*, natsMsg* msg, void* closure) {
    auto* self = static_cast<Impl*>(closure);
    std::string reply_to;
    const bool handled = run_guarded("nats ingress", [&] {
      if (const char* r = natsMsg_GetReply(msg)) reply_to = r;
      Request req = read_request(msg);
      natsMsg_Destroy(msg);
      msg = nullptr;
      self->handle(std::move(req));
    });
    if (msg != nullptr) natsMsg_Destroy(msg);
    if (!handled) {
      run_guarded("nats ingress reply", [&] {
        self->respond(reply_to, error_reply(Status::internal(
                                    "internal error while handling this message; see the host's log")));
      });
    }
  }

  static Request read_request(natsMsg* msg) {
    Request req;
    req.subject = natsMsg_GetSubject(msg);
    if (const char* r = natsMsg_GetReply(msg)) req.reply_to = r;
    req.body.assign(natsMsg_GetData(msg), static_cast<size_t>(natsMsg_GetDataLength(msg)));
    const char* idem = nullptr;
    if (natsMsgHeader_Get(msg, "Idempotency-Key", &idem) == NATS_OK && idem != nullptr) req.idempotency_key = idem;
    if (req.subject.rfind(ClusterNode::forward_subject(""), 0) == 0) {
      auto header = [&](const char* name, std::optional<std::string>& out) {
        const char* v = nullptr;
        if (natsMsgHeader_Get(msg, name, &v) == NATS_OK && v != nullptr) out = v;
      };
      header(kHeaderEpoch, req.epoch);
      header(kHeaderPath, req.path);
      header(kHeaderBudget, req.budget);
    }
    return req;
  }

  void respond(const std::string& reply_to, const ApiReply& r) {
    if (reply_to.empty()) return;
    natsMsg* out = nullptr;
    if (natsMsg_Create(&out, reply_to.c_str(), nullptr, r.body.data(), static_cast<int>(r.body.size())) !=
        NATS_OK) {
      return;
    }
    natsMsgHeader_Set(out, "Aether-Status", std::to_string(r.status).c_str());
    if (r.redirect_epoch > 0) natsMsgHeader_Set(out, kHeaderRedirect, std::to_string(r.redirect_epoch).c_str());
    const natsStatus sent = natsConnection_PublishMsg(conn.nc(), out);
    natsMsg_Destroy(out);
    if (sent != NATS_OK) lost_reply(sent, reply_to);
  }

  // A reply that could not be sent (the connection is reconnecting): its
  // client gets no answer and times out. Logged at most once a second.
  std::atomic<uint64_t> replies_lost{0};
  std::atomic<int64_t> lost_logged_ms{0};
  void lost_reply(natsStatus s, const std::string& reply_to) {
    const uint64_t n = replies_lost.fetch_add(1) + 1;
    const int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::steady_clock::now().time_since_epoch()).count();
    int64_t last = lost_logged_ms.load();
    if (now - last < 1000 || !lost_logged_ms.compare_exchange_strong(last, now)) return;
    log::warn(nats_error(s, "nats ingress: a reply to " + reply_to + " was not sent (" + std::to_string(n) +
                                " so far); its client gets no answer"));
  }

  void handle(Request req) {
    const std::string& reply_to = req.reply_to;
    Command c;
    ApiReply error;
    if (!parse_ingress_message(req.subject, req.body, req.idempotency_key, c, error, max_json_depth)) {
      return respond(reply_to, error);
    }
    constexpr int64_t kMaxBudgetMs = 24 * 3600 * 1000;  // the cluster caps it at its route wait
    auto opt = [](const std::optional<std::string>& v) { return v ? v->c_str() : nullptr; };
    auto trail = parse_route_trail(opt(req.epoch), opt(req.path), opt(req.budget), kMaxBudgetMs);
    if (!trail) return respond(reply_to, error_reply(trail.status()));
    {
      std::lock_guard lock(mu);
      ++in_flight;
    }
    try {
      dispatch_command(runtime, cluster, std::move(c), std::move(trail).value(), [this, reply_to](ApiReply r) {
        run_guarded("nats ingress reply", [&] { respond(reply_to, r); });
        finish_one();
      });
    } catch (...) {
      finish_one();
      throw;
    }
  }

  void finish_one() {
    std::lock_guard lock(mu);
    if (--in_flight == 0) idle.notify_all();
  }
};

bool parse_ingress_message(const std::string& subject, const std::string& body,
                           const std::string& idempotency_key, Command& out, ApiReply& error,
                           size_t max_json_depth) {
  // aether.<ns>.cmd.<type>.<id>, or forwarded by another node:
  // aether._cluster.fwd.<node>.<ns>.<type>.<id> (matched by the subscription).
  const auto key = subjects::parse_command(subject);
  if (!key) {
    error = error_reply(Status::invalid("subject must be aether.<ns>.cmd.<type>.<id>"));
    return false;
  }
  const std::string& ns = key->ns;
  const std::string& type = key->type;
  const std::string& id = key->id;
  return parse_command_request(ns, type, id, body, idempotency_key, out, error, max_json_depth);
}

NatsIngress::NatsIngress(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

NatsIngress::~NatsIngress() { stop(); }

Result<std::unique_ptr<NatsIngress>> NatsIngress::start(NatsConnection& conn, Runtime& runtime,
                                                        const std::vector<std::string>& namespaces,
                                                        ClusterNode* cluster, const std::string& node_id,
                                                        size_t max_json_depth) {
  auto impl = std::make_unique<Impl>(conn, runtime);
  impl->cluster = cluster;
  impl->max_json_depth = max_json_depth;
  std::vector<std::pair<std::string, std::string>> subs;  // subject, queue group
  for (const auto& ns : namespaces) subs.push_back({subjects::commands_pattern(ns), subjects::command_queue(ns)});
  if (cluster != nullptr) subs.push_back({subjects::forward_prefix(node_id) + ".*.*.*", ""});
  for (const auto& [subject, queue] : subs) {
    natsSubscription* sub = nullptr;
    natsStatus s = queue.empty()
                       ? natsConnection_Subscribe(&sub, conn.nc(), subject.c_str(), &Impl::on_msg, impl.get())
                       : natsConnection_QueueSubscribe(&sub, conn.nc(), subject.c_str(), queue.c_str(),
                                                       &Impl::on_msg, impl.get());
    if (s != NATS_OK) {
      for (auto* x : impl->subs) natsSubscription_Destroy(x);
      return Status::unavailable(nats_error(s, "nats ingress: subscribe " + subject));
    }
    // Commands are queued per actor by the runtime; let the client library
    // hold many pending requests instead of dropping them.
    natsSubscription_SetPendingLimits(sub, 1 << 20, 1 << 30);
    impl->subs.push_back(sub);
    log::info("nats ingress: serving " + subject + (queue.empty() ? "" : " (queue group " + queue + ")"));
  }
  // Returns once the server has the subscriptions (the flush's PONG), so a
  // client is served as soon as the host is up. A connection that is down
  // sends them when it is back.
  if (natsStatus s = conn.connected() ? natsConnection_FlushTimeout(conn.nc(), 5000) : NATS_OK; s != NATS_OK) {
    log::warn(nats_error(s, "nats ingress: the server has not confirmed the subscriptions yet"));
  }
  return std::unique_ptr<NatsIngress>(new NatsIngress(std::move(impl)));
}

void NatsIngress::stop() {
  if (!impl_) return;
  // Drain, not unsubscribe: requests the server already handed to this
  // subscription are answered instead of dropped.
  for (auto* s : impl_->subs) {
    if (natsSubscription_Drain(s) != NATS_OK) natsSubscription_Unsubscribe(s);
  }
  for (auto* s : impl_->subs) {
    natsSubscription_WaitForDrainCompletion(s, 10000);
    natsSubscription_Destroy(s);
  }
  impl_->subs.clear();
  std::unique_lock lock(impl_->mu);
  impl_->idle.wait(lock, [&] { return impl_->in_flight == 0; });
}

}  // namespace aether
