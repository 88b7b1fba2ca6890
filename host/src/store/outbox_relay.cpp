#include "store/outbox_relay.hpp"

#include <nats/nats.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "bus/bus.hpp"
#include "core/guarded.hpp"
#include "nats/connection.hpp"
#include "store/store.hpp"

namespace aether {

struct OutboxRelay::Impl {
  NatsConnection& conn;
  Outbox& outbox;
  std::mutex mu;
  std::condition_variable cv;
  bool stop = false;
  bool wake = false;
  uint64_t started = 0;  // passes begun
  uint64_t emptied = 0;  // the last pass that found the outbox empty
  std::thread thread;

  Bus* echo = nullptr;

  Impl(NatsConnection& c, Outbox& o, Bus* e) : conn(c), outbox(o), echo(e) {}

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
    if (echo != nullptr) {
      for (const auto& e : *batch) echo->deliver_local(Message{e.subject, e.data});
    }
    return static_cast<int>(batch->size());
  }

  void run() {
    std::unique_lock lock(mu);
    while (!stop) {
      const uint64_t pass = ++started;
      lock.unlock();
      int n = -1;  // a step that fails unexpectedly is retried like a NATS failure
      run_guarded("outbox relay", [&] { n = step(); });
      lock.lock();
      if (n > 0) continue;  // more may be waiting
      if (n == 0) emptied = pass;
      cv.notify_all();  // drained (or failing): wake drain() callers
      cv.wait_for(lock, std::chrono::milliseconds(n < 0 ? 250 : 50), [&] { return stop || wake; });
      wake = false;
    }
  }
};

OutboxRelay::OutboxRelay(NatsConnection& connection, Outbox& outbox, Bus* echo)
    : impl_(std::make_unique<Impl>(connection, outbox, echo)) {
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

// Done when a pass that began after the call found the outbox empty: what
// was committed before the call has then been published.
bool OutboxRelay::drain(int64_t timeout_ms) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  std::unique_lock lock(impl_->mu);
  const uint64_t asked = impl_->started;
  impl_->wake = true;
  impl_->cv.notify_all();
  return impl_->cv.wait_until(lock, deadline, [&] { return impl_->stop || impl_->emptied > asked; }) &&
         impl_->emptied > asked;
}

}  // namespace aether
