#include "api/nats_ingress.hpp"

#include <nats/nats.h>

#include <atomic>
#include <condition_variable>
#include <mutex>

#include "api/command_api.hpp"
#include "core/log.hpp"
#include "nats/connection.hpp"
#include "runtime/runtime.hpp"

namespace aether {

struct NatsIngress::Impl {
  NatsConnection& conn;
  Runtime& runtime;
  std::vector<natsSubscription*> subs;
  std::mutex mu;
  std::condition_variable idle;
  uint64_t in_flight = 0;

  Impl(NatsConnection& c, Runtime& r) : conn(c), runtime(r) {}

  static void on_msg(natsConnection*, natsSubscription*, natsMsg* msg, void* closure) {
    static_cast<Impl*>(closure)->handle(msg);
  }

  void respond(const std::string& reply_to, const ApiReply& r) {
    if (reply_to.empty()) return;
    natsMsg* out = nullptr;
    if (natsMsg_Create(&out, reply_to.c_str(), nullptr, r.body.data(), static_cast<int>(r.body.size())) !=
        NATS_OK) {
      return;
    }
    natsMsgHeader_Set(out, "Aether-Status", std::to_string(r.status).c_str());
    natsConnection_PublishMsg(conn.nc(), out);
    natsMsg_Destroy(out);
  }

  void handle(natsMsg* msg) {
    const std::string subject = natsMsg_GetSubject(msg);
    const std::string reply_to = natsMsg_GetReply(msg) ? natsMsg_GetReply(msg) : "";
    const std::string body(natsMsg_GetData(msg), static_cast<size_t>(natsMsg_GetDataLength(msg)));
    const char* idem = nullptr;
    natsMsgHeader_Get(msg, "Idempotency-Key", &idem);
    const std::string idem_header = idem ? idem : "";
    natsMsg_Destroy(msg);
    // aether.<ns>.cmd.<type>.<id>: five tokens, matched by the subscription.
    std::vector<std::string> tokens;
    for (size_t start = 0;;) {
      const size_t dot = subject.find('.', start);
      tokens.push_back(subject.substr(start, dot == std::string::npos ? std::string::npos : dot - start));
      if (dot == std::string::npos) break;
      start = dot + 1;
    }
    if (tokens.size() != 5) {
      return respond(reply_to, error_reply(Status::invalid("subject must be aether.<ns>.cmd.<type>.<id>")));
    }
    const std::string ns = tokens[1], type = tokens[3], id = tokens[4];
    Command c;
    ApiReply error;
    if (!parse_command_request(ns, type, id, body, idem_header, c, error)) {
      return respond(reply_to, error);
    }
    {
      std::lock_guard lock(mu);
      ++in_flight;
    }
    runtime.send(std::move(c), [this, ns, type, id, reply_to](CommandResult r) {
      respond(reply_to, command_reply(ns, type, id, r));
      std::lock_guard lock(mu);
      if (--in_flight == 0) idle.notify_all();
    });
  }
};

NatsIngress::NatsIngress(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

NatsIngress::~NatsIngress() { stop(); }

Result<std::unique_ptr<NatsIngress>> NatsIngress::start(NatsConnection& conn, Runtime& runtime,
                                                        const std::vector<std::string>& namespaces) {
  auto impl = std::make_unique<Impl>(conn, runtime);
  for (const auto& ns : namespaces) {
    const std::string subject = "aether." + ns + ".cmd.*.*";
    const std::string queue = "aether." + ns;
    natsSubscription* sub = nullptr;
    natsStatus s = natsConnection_QueueSubscribe(&sub, conn.nc(), subject.c_str(), queue.c_str(),
                                                 &Impl::on_msg, impl.get());
    if (s != NATS_OK) {
      for (auto* x : impl->subs) natsSubscription_Destroy(x);
      return Status::unavailable(nats_error(s, "nats ingress: subscribe " + subject));
    }
    // Commands are queued per actor by the runtime; let the client library
    // hold many pending requests instead of dropping them.
    natsSubscription_SetPendingLimits(sub, 1 << 20, 1 << 30);
    impl->subs.push_back(sub);
    log::info("nats ingress: serving " + subject + " (queue group " + queue + ")");
  }
  return std::unique_ptr<NatsIngress>(new NatsIngress(std::move(impl)));
}

void NatsIngress::stop() {
  if (!impl_) return;
  for (auto* s : impl_->subs) {
    natsSubscription_Unsubscribe(s);
    natsSubscription_Destroy(s);
  }
  impl_->subs.clear();
  std::unique_lock lock(impl_->mu);
  impl_->idle.wait(lock, [&] { return impl_->in_flight == 0; });
}

}  // namespace aether
