// The one commit format: what every commit is, once, on
// aether.<ns>.events.<type>.<id> (the JetStream message itself, the sqlite
// outbox row the relay publishes, the message the local bus delivers), and
// the decoders of it. docs/nats.md describes the format.
//
//   {"actor_id","command_digest"?,"commit_id","events":[{"id","payload","type","version"}],
//    "first_version","idempotency_key"?,"node","ns","timestamp","type","version"}
//
// (idempotency_key and command_digest: on the commit of a command with an
// idempotency key.)
//
// Keys in sorted order. scan_commit (store/commit_scan.hpp) reads a commit's
// events on the replay path; decode_commit_summary reads what a follower of
// other nodes' commits needs, without the events.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/records.hpp"
#include "store/commit_scan.hpp"

namespace aether {

struct AppendRequest;
class Bus;

// The commit of `request`, whose events get versions first_version.. .
// Event payloads are embedded as they are (the plugin boundary has checked
// that each is valid JSON; an empty one is written as {}).
std::string encode_commit(const AppendRequest& request, uint64_t first_version, const std::string& commit_id,
                          const std::string& node_id);

// Publishes the commit of `request` on `bus`, on its events subject, when the
// bus has subscribers (the local bus of the memory and sqlite backends).
void publish_commit(Bus& bus, const AppendRequest& request, uint64_t first_version, const std::string& commit_id,
                    const std::string& node_id);

// What a commit message says about itself, without its events.
struct CommitSummary {
  ActorKey key;
  uint64_t first_version = 0;
  uint64_t version = 0;  // the last event's
  std::string commit_id;
  std::string node;  // the node that committed it
  int64_t timestamp_ms = 0;
  std::string idempotency_key;  // empty: a command without one
  std::string command_digest;
};

// Reads the members around the events of a commit message (not the events
// themselves: cheap for any commit size). nullopt when `data` is not a
// commit message of the format above or names an invalid actor.
std::optional<CommitSummary> decode_commit_summary(std::string_view data);

// "<node>-<start ms>-": a prefix that keeps the commit ids one process makes
// (prefix + counter) unique across restarts.
std::string commit_id_prefix(const std::string& node_id);

}  // namespace aether
