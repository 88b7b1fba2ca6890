// A Subscription with its own bounded queue and delivery thread, shared by
// the local and the NATS bus: offer() never blocks; a full queue drops the new
// message for this subscription only and counts it.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>

#include "bus/bus.hpp"
#include "core/guarded.hpp"

namespace aether {

class QueuedSubscription final : public Subscription {
 public:
  // `on_close` runs first in the destructor (the bus forgets the subscription).
  QueuedSubscription(std::string pattern, MessageHandler handler, size_t capacity,
                     std::function<void(QueuedSubscription*)> on_close, bool remote_only = false)
      : pattern_(std::move(pattern)),
        handler_(std::move(handler)),
        capacity_(capacity == 0 ? 1 : capacity),
        remote_only_(remote_only),
        on_close_(std::move(on_close)) {
    thread_ = std::thread([this] { run(); });
  }
  ~QueuedSubscription() override {
    if (on_close_) on_close_(this);
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    cv_.notify_one();
    thread_.join();
  }
  const std::string& pattern() const override { return pattern_; }
  uint64_t dropped() const override { return dropped_.load(); }
  uint64_t delivered() const override { return delivered_.load(); }
  bool remote_only() const { return remote_only_; }

  void offer(const Message& m) {
    {
      std::lock_guard lock(mu_);
      if (queue_.size() >= capacity_) {
        dropped_.fetch_add(1);
        return;
      }
      queue_.push_back(m);
    }
    cv_.notify_one();
  }

 private:
  void run() {
    std::unique_lock lock(mu_);
    for (;;) {
      cv_.wait(lock, [&] { return stop_ || !queue_.empty(); });
      if (stop_) return;
      Message m = std::move(queue_.front());
      queue_.pop_front();
      lock.unlock();
      run_guarded("subscriber of " + pattern_, [&] { handler_(m); });
      delivered_.fetch_add(1);
      lock.lock();
    }
  }

  std::string pattern_;
  MessageHandler handler_;
  size_t capacity_;
  bool remote_only_;
  std::function<void(QueuedSubscription*)> on_close_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Message> queue_;
  bool stop_ = false;
  std::atomic<uint64_t> dropped_{0};
  std::atomic<uint64_t> delivered_{0};
  std::thread thread_;
};

}  // namespace aether
