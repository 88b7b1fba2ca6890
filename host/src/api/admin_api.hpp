// Operator routes that change an actor's stored history, as functions that
// return an ApiReply (any HTTP server, or another ingress, can call them).
//
//   POST /v1/{ns}/actors/{type}/{id}/repair
//     {"truncate_after": N, "dry_run": false}
//   -> 200 {"ns","type","id","truncate_after","dry_run",
//           "removed":{"records","last_version","snapshots"},
//           "version": V | "load_error":{"code","message"}}
#pragma once

#include <string>

#include "api/command_api.hpp"

namespace aether {

// Removes every commit of the actor after `truncate_after` (decodable or
// not) and its snapshots above it (Runtime::repair), then loads the actor and
// reports the version it is at, or why it still does not load. With
// "dry_run": true, only says what would be removed.
ApiReply repair_actor(Runtime& runtime, const std::string& ns, const std::string& type, const std::string& id,
                      const std::string& body);

}  // namespace aether
