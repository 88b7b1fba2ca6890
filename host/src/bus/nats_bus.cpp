#include "bus/nats_bus.hpp"
#include "bus/queued_subscription.hpp"

#include <nats/nats.h>

#include <atomic>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include "core/guarded.hpp"
#include "core/log.hpp"
#include "nats/connection.hpp"

namespace aether {

struct NatsBus::Impl {
  NatsConnection& conn;
  mutable std::mutex mu;
  // Local subscribers of one pattern share one NATS subscription.
  struct Shared {
    natsSubscription* sub = nullptr;
    std::vector<QueuedSubscription*> locals;
  };
  std::map<std::string, std::unique_ptr<Shared>> by_pattern;

  explicit Impl(NatsConnection& c) : conn(c) {}

  static void on_msg(natsConnection*, natsSubscription* sub, natsMsg* msg, void* closure) {
    auto* self = static_cast<Impl*>(closure);
    run_guarded("nats bus", [&] { self->deliver(sub, msg); });
  }

  // Takes `msg` (destroyed here) to the local subscribers of `sub`.
  void deliver(natsSubscription* sub, natsMsg* msg) {
    struct Owner {
      natsMsg* m;
      ~Owner() { natsMsg_Destroy(m); }
    } owner{msg};
    Message m{natsMsg_GetSubject(msg),
              std::string(natsMsg_GetData(msg), static_cast<size_t>(natsMsg_GetDataLength(msg)))};
    // Found under the lock: a subscription being removed is never touched.
    std::lock_guard lock(mu);
    for (const auto& [_, shared] : by_pattern) {
      if (shared->sub != sub) continue;
      for (QueuedSubscription* l : shared->locals) l->offer(m);
    }
  }

  // To the local subscribers of every pattern `m` matches.
  void deliver_local(const Message& m) {
    std::lock_guard lock(mu);
    for (const auto& [pattern, shared] : by_pattern) {
      if (!subject_matches(pattern, m.subject)) continue;
      for (QueuedSubscription* l : shared->locals) {
        if (!l->remote_only()) l->offer(m);
      }
    }
  }

  void remove(QueuedSubscription* s) {
    natsSubscription* to_close = nullptr;
    std::unique_ptr<Shared> gone;
    {
      std::lock_guard lock(mu);
      auto it = by_pattern.find(s->pattern());
      if (it == by_pattern.end()) return;
      std::erase(it->second->locals, s);
      if (!it->second->locals.empty()) return;
      to_close = it->second->sub;
      gone = std::move(it->second);
      by_pattern.erase(it);
    }
    // The last local subscriber is gone: so is the NATS subscription.
    if (to_close != nullptr) {
      natsSubscription_Unsubscribe(to_close);
      natsSubscription_Destroy(to_close);
    }
  }
};

NatsBus::NatsBus(NatsConnection& connection, BusOptions options)
    : options_(options), impl_(std::make_unique<Impl>(connection)) {}

NatsBus::~NatsBus() = default;

void NatsBus::publish(Message m) {
  if (!impl_->conn.connected()) return;
  natsConnection_Publish(impl_->conn.nc(), m.subject.c_str(), m.data.data(), static_cast<int>(m.data.size()));
  // The server echoes nothing back to this connection: its own readers
  // get the message here.
  if (impl_->conn.options().no_echo) impl_->deliver_local(m);
}

void NatsBus::deliver_local(const Message& m) { impl_->deliver_local(m); }

std::unique_ptr<Subscription> NatsBus::subscribe(std::string pattern, MessageHandler handler,
                                                 SubscribeOptions options) {
  Impl* impl = impl_.get();
  auto local = std::make_unique<QueuedSubscription>(pattern, std::move(handler), options_.queue_for(options),
                                                    [impl](QueuedSubscription* gone) { impl->remove(gone); },
                                                    options.remote_only);
  std::lock_guard lock(impl->mu);
  auto& shared = impl->by_pattern[pattern];
  if (!shared) {
    shared = std::make_unique<Impl::Shared>();
    natsStatus s = natsConnection_Subscribe(&shared->sub, impl->conn.nc(), pattern.c_str(), &Impl::on_msg, impl);
    if (s != NATS_OK) {
      log::warn(nats_error(s, "nats bus: subscribe " + pattern));
      shared->sub = nullptr;
    }
  }
  shared->locals.push_back(local.get());
  return local;
}

bool NatsBus::has_subscribers() const { return impl_->conn.connected(); }

size_t NatsBus::nats_subscriptions() const {
  std::lock_guard lock(impl_->mu);
  size_t n = 0;
  for (const auto& [_, s] : impl_->by_pattern) n += s->sub != nullptr ? 1 : 0;
  return n;
}

}  // namespace aether
