// A fast reader of commit messages (the JSON of encode_commit, store/commit_codec.hpp): the
// events' types and the raw text of their payloads, without building a JSON
// tree. Replay reads every commit of an actor, so this is on the hot path of
// activation from JetStream.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

namespace aether {

struct ScannedEvent {
  std::string_view type;
  std::string_view payload;  // the JSON value as stored
};

struct ScannedCommit {
  int64_t timestamp = 0;
  std::vector<ScannedEvent> events;
};

// Reads `body` as a JSON object with "events":[{"type":"...","payload":...}]
// and "timestamp"; other members are skipped. Returns false when the text is
// not of that shape, or uses what this reader does not handle (escapes in
// keys or type names, values nested deeper than kMaxStoredJsonDepth): the
// caller then decodes it with a full JSON parser, which also says what is
// wrong. Does not check UTF-8. `out` views into `body`.
bool scan_commit(std::string_view body, ScannedCommit& out);

// What a commit says of itself: the members around its events.
struct ScannedHead {
  uint64_t first_version = 0;
  uint64_t version = 0;
  std::string_view commit_id;
  std::string_view idempotency_key;  // empty: the commit has none
  std::string_view command_digest;
};

// Reads the top-level members "first_version", "version", "commit_id",
// "idempotency_key" and "command_digest" of a commit message, skipping the
// events. False when the text is not an object of that shape or a string
// member has escapes (the caller then decodes it with a full JSON parser).
// `out` views into `body`.
bool scan_commit_head(std::string_view body, ScannedHead& out);

}  // namespace aether
