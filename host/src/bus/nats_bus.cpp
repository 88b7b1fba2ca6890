#include "bus/nats_bus.hpp"
#include "bus/queued_subscription.hpp"

#include <nats/nats.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include "core/guarded.hpp"
#include "core/log.hpp"
#include "nats/connection.hpp"
#include "store/store.hpp"

namespace aether {

namespace {

bool is_events_subject(const std::string& s) {
  // aether.<ns>.events.<type>.<id>
  const size_t a = s.find('.');
  if (a == std::string::npos) return false;
  const size_t b = s.find('.', a + 1);
  return b != std::string::npos && s.compare(b + 1, 7, "events.") == 0;
}

}  // namespace

struct NatsBus::Impl {
  NatsConnection& conn;
  std::string node_marker;  // "\"node\":\"<id>\""
  mutable std::mutex mu;
  // Local subscribers of one pattern share one NATS subscription.
  struct Shared {
    natsSubscription* sub = nullptr;
    std::vector<QueuedSubscription*> locals;
  };
  std::map<std::string, std::unique_ptr<Shared>> by_pattern;

  Impl(NatsConnection& c, const std::string& node) : conn(c), node_marker("\"node\":\"" + node + "\"") {}

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
    Impl* self = this;
    Message m{natsMsg_GetSubject(msg),
              std::string(natsMsg_GetData(msg), static_cast<size_t>(natsMsg_GetDataLength(msg)))};
    if (!is_events_subject(m.subject) && m.data.find(self->node_marker) != std::string::npos) {
      return;  // a node ignores its own EventStored notifications
    }
    // Found under the lock: a subscription being removed is never touched.
    std::lock_guard lock(self->mu);
    for (const auto& [_, shared] : self->by_pattern) {
      if (shared->sub != sub) continue;
      for (QueuedSubscription* l : shared->locals) l->offer(m);
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

NatsBus::NatsBus(NatsConnection& connection, std::string node_id, BusOptions options)
    : options_(options), impl_(std::make_unique<Impl>(connection, node_id)) {}

NatsBus::~NatsBus() = default;

void NatsBus::publish(Message m) {
  // Events reach NATS from the store (JetStream message or outbox relay).
  if (is_events_subject(m.subject) || !impl_->conn.connected()) return;
  natsConnection_Publish(impl_->conn.nc(), m.subject.c_str(), m.data.data(), static_cast<int>(m.data.size()));
}

std::unique_ptr<Subscription> NatsBus::subscribe(std::string pattern, MessageHandler handler,
                                                 SubscribeOptions options) {
  Impl* impl = impl_.get();
  auto local = std::make_unique<QueuedSubscription>(pattern, std::move(handler), options_.queue_for(options),
                                                    [impl](QueuedSubscription* gone) { impl->remove(gone); });
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

// --- OutboxRelay ------------------------------------------------------------------

struct OutboxRelay::Impl {
  NatsConnection& conn;
  Outbox& outbox;
  std::mutex mu;
  std::condition_variable cv;
  bool stop = false;
  bool wake = false;
  std::thread thread;

  Impl(NatsConnection& c, Outbox& o) : conn(c), outbox(o) {}

  // Publishes one batch; returns how many entries were published and removed,
  // or -1 when NATS or the store failed (retried later).
  int step() {
    if (!conn.connected()) return -1;
    auto batch = outbox.outbox_fetch(512);
    if (!batch) return -1;
    if (batch->empty()) return 0;
    for (const auto& e : *batch) {
      natsMsg* m = nullptr;
      natsMsg_Create(&m, e.subject.c_str(), nullptr, e.data.data(), static_cast<int>(e.data.size()));
      natsStatus s = natsConnection_PublishMsg(conn.nc(), m);
      natsMsg_Destroy(m);
      if (s != NATS_OK) return -1;
    }
    // Only what the server has taken (the flush's PONG) leaves the outbox.
    if (natsConnection_FlushTimeout(conn.nc(), 2000) != NATS_OK) return -1;
    if (!outbox.outbox_ack(batch->back().id)) return -1;
    return static_cast<int>(batch->size());
  }

  void run() {
    std::unique_lock lock(mu);
    while (!stop) {
      lock.unlock();
      int n = -1;  // a step that fails unexpectedly is retried like a NATS failure
      run_guarded("outbox relay", [&] { n = step(); });
      lock.lock();
      if (n > 0) continue;  // more may be waiting
      cv.notify_all();      // drained (or failing): wake drain() callers
      cv.wait_for(lock, std::chrono::milliseconds(n < 0 ? 250 : 50), [&] { return stop || wake; });
      wake = false;
    }
  }
};

OutboxRelay::OutboxRelay(NatsConnection& connection, Outbox& outbox)
    : impl_(std::make_unique<Impl>(connection, outbox)) {
  impl_->thread = std::thread([this] { impl_->run(); });
}

OutboxRelay::~OutboxRelay() {
  {
    std::lock_guard lock(impl_->mu);
    impl_->stop = true;
  }
  impl_->cv.notify_all();
  impl_->thread.join();
}

void OutboxRelay::notify() {
  {
    std::lock_guard lock(impl_->mu);
    impl_->wake = true;
  }
  impl_->cv.notify_all();
}

bool OutboxRelay::drain(int64_t timeout_ms) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (std::chrono::steady_clock::now() < deadline) {
    auto left = impl_->outbox.outbox_fetch(1);
    if (left && left->empty()) return true;
    notify();
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

}  // namespace aether
