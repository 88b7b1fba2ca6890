// The NATS side of the bus module.
//
// NatsBus: a Bus over a NATS connection. publish() sends a message to NATS
// as it is (the memory backend's commits on a host with NATS; the other
// backends' commits reach NATS from the store: the JetStream message itself,
// or the sqlite outbox via OutboxRelay, store/outbox_relay.hpp). subscribe()
// subscribes on NATS; subscriptions with the same pattern share one NATS
// subscription, reference-counted, so it lives exactly as long as a local
// subscriber needs it. Every message is delivered, this node's own commits
// included: a reader that wants only other nodes' commits tells them by the
// commit's "node" (decode_commit_summary, store/commit_codec.hpp).
#pragma once

#include <memory>
#include <string>

#include "bus/bus.hpp"

namespace aether {

class NatsConnection;

class NatsBus final : public Bus {
 public:
  explicit NatsBus(NatsConnection& connection, BusOptions options = {});
  ~NatsBus() override;
  void publish(Message message) override;
  void deliver_local(const Message& message) override;
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

}  // namespace aether
