// The one message of a version conflict, for the stores and the runtime.
#pragma once

#include <cstdint>
#include <string>

#include "core/records.hpp"
#include "core/status.hpp"

namespace aether {

// kConflict: `key` was expected at version `expected` and is at `current`.
inline Status version_conflict(const ActorKey& key, uint64_t expected, uint64_t current) {
  return Status::conflict("actor " + key.to_string() + ": expected version " + std::to_string(expected) +
                          ", current version " + std::to_string(current));
}

}  // namespace aether
