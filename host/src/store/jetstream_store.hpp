// The JetStream backend of the store module (the cluster's store).
//
// One stream per namespace captures aether.<ns>.events.>: one message per
// command commit (1..n events, atomic), so storing is broadcasting. The
// actor's expected version is enforced by the server with
// Nats-Expected-Last-Subject-Sequence (the actor's subject is its stream);
// Nats-Msg-Id = <ns>.<type>.<id>.<first version> deduplicates a retried
// publish and catches a racing writer on the same version. Snapshots go to a second
// stream (one subject per actor). A commit made with an idempotency key
// carries the key and the command's digest in its body (the record); a KV
// bucket caches keys, written after the commit's ack.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "store/store.hpp"

namespace aether {

class Bus;
class NatsConnection;

struct JetStreamOptions {
  std::vector<std::string> namespaces = {"default"};  // streams are made for these
  std::string stream_prefix = "AETHER_";               // stream AETHER_<ns>
  int replicas = 1;
  std::string storage = "file";  // file | memory
  int64_t max_age_ms = 0;        // 0 = keep forever
  int64_t max_bytes = -1;        // -1 = unlimited
  // The events stream's deduplication window (Nats-Msg-Id), set when the
  // stream is created; 0 = the server's default (2 minutes).
  int64_t duplicate_window_ms = 0;
  std::string node_id = "node-1";
  uint32_t publishers = 32;      // appends in flight at once
  // On a connection that does not echo (NatsOptions::no_echo): each commit,
  // once stored, is handed to this process's subscribers on this bus
  // (Bus::deliver_local), as the server would have. REQUIRES: outlives the
  // store.
  Bus* echo = nullptr;
};

// REQUIRES: `connection` outlives the store.
Result<std::unique_ptr<Journal>> open_jetstream_store(NatsConnection& connection,
                                                    const JetStreamOptions& options);

}  // namespace aether
