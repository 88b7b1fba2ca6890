// The records that flow through the host: actor keys, commands, events,
// snapshots. Plain data; no behaviour beyond formatting.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace aether {

// An actor's identity: (namespace, actor type, actor id). Every part has been
// checked against the safe alphabet (core/names.hpp) before a key is built
// from outside input.
struct ActorKey {
  std::string ns;
  std::string type;
  std::string id;

  bool operator==(const ActorKey&) const = default;
  // "ns/type/id", for messages and logs.
  std::string to_string() const { return ns + "/" + type + "/" + id; }
};

// An event to append: its name in the actor type's model and its JSON payload.
struct NewEvent {
  std::string type;
  std::string payload;
};

// An event as stored: `version` is the actor's version after it (1-based).
struct StoredEvent {
  uint64_t version = 0;
  std::string type;
  std::string payload;  // JSON text
  int64_t timestamp_ms = 0;
  // Set on the last event of a commit made with an idempotency key (empty on
  // every other event): the key, the digest of the command it was made for,
  // and the version of the commit's first event. The journal itself carries
  // them, so that the keys of an actor's commits are found by reading it.
  std::string idempotency_key = {};
  std::string command_digest = {};
  uint64_t commit_first_version = 0;
};

// The globally unique id of an event: "<ns>.<type>.<id>.<version>". A stream
// position is written once, so the id is stable across retries and replays and
// lets consumers of at-least-once broadcasts deduplicate.
inline std::string event_id(const ActorKey& key, uint64_t version) {
  return key.ns + "." + key.type + "." + key.id + "." + std::to_string(version);
}

// A snapshot of an actor's state at `version`, written by plugin `plugin`
// with state schema `schema_version`. `bytes` are the plugin's own format.
struct Snapshot {
  uint64_t version = 0;
  std::string plugin;
  uint32_t schema_version = 0;
  std::string bytes;
  int64_t timestamp_ms = 0;
  // The host's own record kept with the snapshot (not the plugin's): the
  // idempotency keys of the actor's recent commits, as the runtime encodes
  // them. Empty for a snapshot written before hosts kept it.
  std::string host_record = {};
};

}  // namespace aether
