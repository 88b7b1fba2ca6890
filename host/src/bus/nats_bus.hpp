// The NATS side of the bus module.
//
// NatsBus: a Bus over a NATS connection. publish() sends EventStored
// notifications and other non-event messages to NATS (committed events reach
// NATS from the store: the JetStream message itself, or the sqlite outbox via
// OutboxRelay). subscribe() subscribes on NATS; subscriptions with the same
// pattern share one NATS subscription, reference-counted, so it lives exactly
// as long as a local subscriber needs it. Incoming EventStored notifications
// sent by this node itself are not delivered (a node ignores its own).
//
// OutboxRelay: publishes the sqlite outbox to NATS in order and removes what
// was published after a flush. A crash between commit and publish delays the
// broadcast, never loses it (at-least-once: consumers deduplicate by event id).
#pragma once

#include <memory>
#include <string>

#include "bus/bus.hpp"

namespace aether {

class NatsConnection;
class Outbox;

class NatsBus final : public Bus {
 public:
  NatsBus(NatsConnection& connection, std::string node_id, BusOptions options = {});
  ~NatsBus() override;
  void publish(Message message) override;
  std::unique_ptr<Subscription> subscribe(std::string pattern, MessageHandler handler,
                                          SubscribeOptions options = {}) override;
  bool has_subscribers() const override;
  // NATS subscriptions currently open (for tests of the reference counting).
  size_t nats_subscriptions() const;

 private:
  struct Impl;
  const BusOptions options_;
  std::unique_ptr<Impl> impl_;
};

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
