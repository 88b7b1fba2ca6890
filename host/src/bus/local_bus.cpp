#include <atomic>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

#include "bus/bus.hpp"
#include "core/json_limits.hpp"
#include "core/names.hpp"

#include <nlohmann/json.hpp>
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

std::optional<std::pair<ActorKey, uint64_t>> parse_stored_notification(const std::string& data) {
  // Small messages from anyone allowed to publish on the stored subjects.
  if (!check_json_text(data, 4, "notification")) return std::nullopt;
  const auto j = nlohmann::json::parse(data, nullptr, false);
  if (!j.is_object()) return std::nullopt;
  auto str = [&](const char* k) {
    auto it = j.find(k);
    return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  auto v = j.find("version");
  if (v == j.end() || !v->is_number_unsigned()) return std::nullopt;
  ActorKey key{str("ns"), str("type"), str("actor_id")};
  if (!check_name(key.ns).empty() || !check_name(key.type).empty() || !check_id(key.id).empty()) {
    return std::nullopt;
  }
  return std::make_pair(std::move(key), v->get<uint64_t>());
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

class LocalBus final : public Bus {
 public:
  explicit LocalBus(BusOptions options) : options_(options) {}

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
