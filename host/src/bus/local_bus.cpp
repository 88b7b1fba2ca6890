#include <atomic>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

#include "bus/bus.hpp"
#include "bus/queued_subscription.hpp"

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

namespace {

class LocalBus final : public Bus {
 public:
  explicit LocalBus(BusOptions options) : options_(options) {}

  void deliver_local(const Message& m) override { publish(m); }
  void publish(Message m) override {
    std::lock_guard lock(mu_);
    for (QueuedSubscription* s : subs_) {
      if (subject_matches(s->pattern(), m.subject)) s->offer(m);
    }
  }

  std::unique_ptr<Subscription> subscribe(std::string pattern, MessageHandler handler,
                                          SubscribeOptions options) override {
    auto s = std::make_unique<QueuedSubscription>(
        std::move(pattern), std::move(handler), options_.queue_for(options),
        [this](QueuedSubscription* gone) {
          std::lock_guard lock(mu_);
          std::erase(subs_, gone);
          count_.store(subs_.size());
        });
    std::lock_guard lock(mu_);
    subs_.push_back(s.get());
    count_.fetch_add(1);
    return s;
  }

  bool has_subscribers() const override { return count_.load(std::memory_order_relaxed) > 0; }

 private:
  const BusOptions options_;
  mutable std::mutex mu_;
  std::vector<QueuedSubscription*> subs_;
  std::atomic<size_t> count_{0};
};

}  // namespace

std::unique_ptr<Bus> make_local_bus(BusOptions options) { return std::make_unique<LocalBus>(options); }

}  // namespace aether
