#include <atomic>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

#include "bus/bus.hpp"

namespace aether {

namespace {

// Splits at the next '.'; returns the token and advances `s` past it.
std::string_view next_token(std::string_view& s) {
  const size_t dot = s.find('.');
  std::string_view t = s.substr(0, dot);
  s = dot == std::string_view::npos ? std::string_view() : s.substr(dot + 1);
  return t;
}

}  // namespace

bool subject_matches(std::string_view pattern, std::string_view subject) {
  while (!pattern.empty()) {
    if (subject.empty()) return false;
    const std::string_view p = next_token(pattern);
    const std::string_view s = next_token(subject);
    if (p == ">") return !s.empty();
    if (p != "*" && p != s) return false;
  }
  return subject.empty();
}

std::string check_pattern(std::string_view pattern) {
  if (pattern.empty()) return "pattern is empty";
  for (size_t start = 0;;) {
    const size_t dot = pattern.find('.', start);
    const bool last = dot == std::string_view::npos;
    const std::string_view t = pattern.substr(start, last ? std::string_view::npos : dot - start);
    if (t.empty()) return "pattern has an empty token";
    if (t == ">" && !last) return "'>' may only be the last token";
    if (t.size() > 1 && t.find_first_of("*> \t") != std::string_view::npos) {
      return "wildcards must be whole tokens";
    }
    if (last) return {};
    start = dot + 1;
  }
}

std::string events_subject(std::string_view ns, std::string_view type, std::string_view id) {
  std::string s = "aether.";
  s.append(ns).append(".events.").append(type).append(".").append(id);
  return s;
}

std::string stored_subject(std::string_view ns, std::string_view type, std::string_view id) {
  std::string s = "aether.";
  s.append(ns).append(".stored.").append(type).append(".").append(id);
  return s;
}

namespace {

class LocalSubscription;

class LocalBus final : public Bus {
 public:
  void publish(Message m) override;
  std::unique_ptr<Subscription> subscribe(std::string pattern, MessageHandler handler,
                                          SubscribeOptions options) override;
  bool has_subscribers() const override { return count_.load(std::memory_order_relaxed) > 0; }

  void remove(LocalSubscription* s);

 private:
  mutable std::mutex mu_;
  std::vector<LocalSubscription*> subs_;
  std::atomic<size_t> count_{0};
};

class LocalSubscription final : public Subscription {
 public:
  LocalSubscription(LocalBus* bus, std::string pattern, MessageHandler h, size_t cap)
      : bus_(bus), pattern_(std::move(pattern)), handler_(std::move(h)), capacity_(cap) {
    thread_ = std::thread([this] { run(); });
  }
  ~LocalSubscription() override {
    bus_->remove(this);
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
      handler_(m);
      delivered_.fetch_add(1);
      lock.lock();
    }
  }

  LocalBus* bus_;
  std::string pattern_;
  MessageHandler handler_;
  size_t capacity_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Message> queue_;
  bool stop_ = false;
  std::atomic<uint64_t> dropped_{0};
  std::atomic<uint64_t> delivered_{0};
  std::thread thread_;
};

void LocalBus::publish(Message m) {
  std::lock_guard lock(mu_);
  for (LocalSubscription* s : subs_) {
    if (subject_matches(s->pattern(), m.subject)) s->offer(m);
  }
}

std::unique_ptr<Subscription> LocalBus::subscribe(std::string pattern, MessageHandler handler,
                                                  SubscribeOptions options) {
  auto s = std::make_unique<LocalSubscription>(this, std::move(pattern), std::move(handler),
                                               std::max<size_t>(1, options.queue_capacity));
  std::lock_guard lock(mu_);
  subs_.push_back(s.get());
  count_.fetch_add(1);
  return s;
}

void LocalBus::remove(LocalSubscription* s) {
  std::lock_guard lock(mu_);
  std::erase(subs_, s);
  count_.store(subs_.size());
}

}  // namespace

std::unique_ptr<Bus> make_local_bus() { return std::make_unique<LocalBus>(); }

}  // namespace aether
