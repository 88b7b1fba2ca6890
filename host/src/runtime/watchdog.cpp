#include "runtime/watchdog.hpp"

#include <algorithm>
#include <chrono>
#include <exception>
#include <vector>

#include "core/log.hpp"

namespace aether {

// --- Quarantine ---------------------------------------------------------------

std::string Quarantine::reason(const std::string& id) const {
  if (empty_.load(std::memory_order_acquire)) return {};
  std::lock_guard lock(mu_);
  if (!all_.empty()) return all_;
  auto it = ids_.find(id);
  return it == ids_.end() ? std::string() : it->second;
}

void Quarantine::add(const std::string& id, std::string reason) {
  std::lock_guard lock(mu_);
  if (!all_.empty() || ids_.size() >= kMaxIds) {
    ids_.clear();
    all_ = "every actor of the type is quarantined (more than " + std::to_string(kMaxIds) +
           " were); the latest: " + reason;
  } else {
    ids_[id] = std::move(reason);
  }
  empty_.store(false, std::memory_order_release);
}

void Quarantine::clear() {
  std::lock_guard lock(mu_);
  ids_.clear();
  all_.clear();
  empty_.store(true, std::memory_order_release);
}

// --- Watchdog -----------------------------------------------------------------

Watchdog::Watchdog(const Clock& clock, int64_t tick_ms, OnTimeout on_timeout)
    : clock_(clock), tick_ms_(std::max<int64_t>(1, tick_ms)), on_timeout_(std::move(on_timeout)) {
  thread_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "aether-watchdog");
    loop();
  });
}

void Watchdog::stop() {
  {
    std::lock_guard lock(loop_mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  loop_cv_.notify_all();
  thread_.join();
}

Watchdog::Stripe& Watchdog::stripe() {
  static std::atomic<uint32_t> next{0};
  thread_local const uint32_t mine = next.fetch_add(1, std::memory_order_relaxed);
  return stripes_[mine % kStripes];
}

void Watchdog::enter(Call& c) {
  Stripe& s = stripe();
  std::lock_guard lock(s.mu);
  c.next = s.head;
  if (s.head != nullptr) s.head->prev = &c;
  s.head = &c;
}

bool Watchdog::leave(Call& c) {
  Stripe& s = stripe();
  Release release;
  {
    std::unique_lock lock(s.mu);
    if (c.state == State::kRunning) {
      if (c.prev != nullptr) c.prev->next = c.next; else s.head = c.next;
      if (c.next != nullptr) c.next->prev = c.prev;
      return true;
    }
    // Given up (and unlinked) by the watchdog: wait until its handler is done.
    s.cv.wait(lock, [&] { return c.state == State::kGivenUp; });
    release = std::move(c.release);
  }
  if (release) release();
  std::lock_guard lock(stuck_mu_);
  if (--stuck_[c.owner] == 0) stuck_.erase(c.owner);
  stuck_total_.fetch_sub(1);
  return false;
}

uint32_t Watchdog::stuck(const void* owner) const {
  if (stuck_total_.load() == 0) return 0;
  std::lock_guard lock(stuck_mu_);
  auto it = stuck_.find(owner);
  return it == stuck_.end() ? 0 : it->second;
}

void Watchdog::loop() {
  std::unique_lock lock(loop_mu_);
  for (;;) {
    loop_cv_.wait_for(lock, std::chrono::milliseconds(tick_ms_), [&] { return stopping_; });
    if (stopping_) return;
    lock.unlock();
    const int64_t now = clock_.mono_ms();
    for (Stripe& s : stripes_) {
      std::vector<Call*> late;
      {
        std::lock_guard sl(s.mu);
        for (Call* c = s.head; c != nullptr; c = c->next) {
          if (now < c->deadline_ms) continue;
          c->state = State::kGivingUp;
          late.push_back(c);
        }
        for (Call* c : late) {
          if (c->prev != nullptr) c->prev->next = c->next; else s.head = c->next;
          if (c->next != nullptr) c->next->prev = c->prev;
        }
      }
      for (Call* c : late) give_up(s, c);
    }
    lock.lock();
  }
}

// `c` is unlinked and kGivingUp: its thread waits in leave() once the call
// returns, so `c` stays valid until kGivenUp is set.
void Watchdog::give_up(Stripe& s, Call* c) {
  {
    std::lock_guard lock(stuck_mu_);
    ++stuck_[c->owner];
    stuck_total_.fetch_add(1);
    given_up_total_.fetch_add(1);
  }
  if (c->worker.pool != nullptr) c->worker.pool->replace(c->worker.worker);
  Release release;
  try {
    release = on_timeout_(c->context);
  } catch (const std::exception& e) {
    log::error(std::string("watchdog: timeout handler failed: ") + e.what());
  }
  std::lock_guard lock(s.mu);
  c->release = std::move(release);
  c->state = State::kGivenUp;
  s.cv.notify_all();
}

}  // namespace aether
