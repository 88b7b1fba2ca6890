// The bus module: publish/subscribe of committed events (one message per
// commit, store/commit_codec.hpp), with NATS-style subjects and patterns.
//
// Subjects are dot-separated tokens (aether.<ns>.events.<type>.<id>). In a
// pattern, `*` matches exactly one token and `>` (last token only) matches one
// or more tokens, as in NATS.
//
// Slow subscribers: every subscription has its own bounded queue and delivery
// thread. publish() never blocks and never waits for a subscriber; when a
// subscription's queue is full, the new message is dropped for that
// subscription only and counted (Subscription::dropped()). A subscriber that
// sees a gap in an actor's versions can read the missing events from the
// store. Memory per subscription is bounded by its queue capacity.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <optional>
#include <string_view>
#include <utility>

#include "core/records.hpp"

namespace aether {

struct Message {
  std::string subject;
  std::string data;  // JSON text
};

using MessageHandler = std::function<void(const Message&)>;

// A live subscription; unsubscribes (and joins its delivery thread) when
// destroyed. REQUIRES: not destroyed from inside its own handler.
class Subscription {
 public:
  virtual ~Subscription() = default;
  virtual const std::string& pattern() const = 0;
  // Messages dropped because the queue was full.
  virtual uint64_t dropped() const = 0;
  // Messages handed to the handler.
  virtual uint64_t delivered() const = 0;
};

struct SubscribeOptions {
  // Messages queued for this subscription before new ones are dropped for
  // it; 0: the bus's BusOptions::subscriber_queue.
  size_t queue_capacity = 0;
  // Only what other processes published (NATS): nothing of deliver_local.
  bool remote_only = false;
};

// A bus's settings (the config's `bus` section).
struct BusOptions {
  // Messages queued per subscription that does not ask for its own bound.
  size_t subscriber_queue = 65536;

  size_t queue_for(const SubscribeOptions& o) const {
    return o.queue_capacity != 0 ? o.queue_capacity : subscriber_queue;
  }
};

// Thread-safe.
class Bus {
 public:
  virtual ~Bus() = default;
  virtual void publish(Message message) = 0;
  // Hands `message` to this process's subscribers only: a message this
  // process published by other means (a JetStream commit, the outbox
  // relay's publish) that its NATS connection does not echo back to it
  // (NatsOptions::no_echo).
  virtual void deliver_local(const Message& message) = 0;
  virtual std::unique_ptr<Subscription> subscribe(std::string pattern, MessageHandler handler,
                                                  SubscribeOptions options = {}) = 0;
  // False iff nothing could receive a message now: lets publishers skip
  // building messages nobody reads.
  virtual bool has_subscribers() const = 0;
};

// True iff `subject` matches `pattern` (`*` one token, `>` the rest).
bool subject_matches(std::string_view pattern, std::string_view subject);

// Returns an empty string if `pattern` is a valid subscription pattern, else
// what is wrong with it.
std::string check_pattern(std::string_view pattern);

// The in-process bus.
std::unique_ptr<Bus> make_local_bus(BusOptions options = {});

}  // namespace aether
