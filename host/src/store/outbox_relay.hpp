// OutboxRelay: publishes the sqlite outbox to NATS in order and removes what
// was published after a flush: the sqlite backend's way of making every
// commit visible on its events subject, in the commit format
// (store/commit_codec.hpp), one message per commit. A crash between commit
// and publish delays the broadcast, never loses it (at-least-once: consumers
// deduplicate by commit id).
#pragma once

#include <cstdint>
#include <memory>

namespace aether {

class NatsConnection;
class Outbox;

class OutboxRelay {
 public:
  // REQUIRES: connection and outbox outlive the relay.
  OutboxRelay(NatsConnection& connection, Outbox& outbox);
  ~OutboxRelay();
  // Wakes the relay (after a commit).
  void notify();
  // Publishes what is in the outbox now, waiting up to `timeout_ms`; true if
  // the outbox was emptied (for shutdown and tests).
  bool drain(int64_t timeout_ms);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace aether
