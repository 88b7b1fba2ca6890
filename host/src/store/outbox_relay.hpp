// OutboxRelay: publishes the sqlite outbox to NATS in order and removes what
// was published after a flush: the sqlite backend's way of making every
// commit visible on its events subject, in the commit format
// (store/commit_codec.hpp), one message per commit. A crash between commit
// and publish delays the broadcast, never loses it (at-least-once: consumers
// deduplicate by commit id).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/status.hpp"

namespace aether {

class Bus;
class NatsConnection;

// A commit waiting in the sqlite outbox.
struct OutboxEntry {
  uint64_t id = 0;  // increasing
  std::string subject;
  std::string data;
};

// The outbox of a store that has one (sqlite with SqliteOptions::outbox),
// as its relay reads it. Private to the store module.
class Outbox {
 public:
  virtual ~Outbox() = default;
  // The oldest entries, at most `limit`.
  virtual Result<std::vector<OutboxEntry>> outbox_fetch(size_t limit) = 0;
  // Removes every entry with id <= `up_to` (they were broadcast).
  virtual Status outbox_ack(uint64_t up_to) = 0;
};

class OutboxRelay {
 public:
  // REQUIRES: connection, outbox and `echo` outlive the relay. `echo`
  // (optional): what the relay published, once the server has it, also
  // goes to this process's subscribers on it (a connection that does not
  // echo: NatsOptions::no_echo).
  OutboxRelay(NatsConnection& connection, Outbox& outbox, Bus* echo = nullptr);
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
