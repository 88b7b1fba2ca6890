// The shadow check of a hot swap: before a new plugin image serves a single
// command, it is tried on real histories. For a sample of the plugin's
// actors (every active one up to a bound, and a random sample of the
// passive ones from the store), the actor's events are replayed through the
// old version's apply, and the state the new version reaches is computed by
// each path the swap would take:
//
//   upgrade  the old state carried over: snapshot (old) -> restore (new), or
//            through the new upgrade_state when the state schema changed
//   replay   the actor's events replayed through the new apply
//
// and the JSON views are compared in canonical form (object keys sorted).
// When the new version declares another state schema and has an
// upgrade_state, the state is meant to change: then the upgrade path is
// compared with the replay path of the new version only (an actor migrated
// at the swap must equal one loaded afterwards), and the report says so.
//
// The check runs off the command path, on a thread of its own at the lowest
// CPU priority (the caller waits for it): it loads nothing into the
// registry, writes nothing, and only reads the store. It stops at its time
// and memory bounds and says so in the report.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/records.hpp"
#include "core/shadow_options.hpp"
#include "core/status.hpp"

namespace aether {

class Journal;
class Plugin;
class Runtime;

// One actor whose new state differs by one path (or whose check failed).
struct ShadowDifference {
  ActorKey actor;
  uint64_t version = 0;       // the actor's version (events replayed)
  std::string path;           // "upgrade" or "replay"
  std::string compared_with;  // "old" (the old version's state) or "replay"
  // JSON array of the first differing fields:
  // [{"field":"/count","expected":5,"got":7}] ("expected" is the state
  // compared with; a field one side lacks is left out on that side).
  std::string diff;
  std::string error;          // set instead of diff when a hook failed
};

struct ShadowReport {
  std::string plugin;
  std::string from_version;
  std::string to_version;
  uint64_t actors_checked = 0;
  uint64_t active_checked = 0;
  uint64_t passive_checked = 0;
  uint64_t stored_actors = 0;     // actors of the plugin with events in the store
  uint64_t events_replayed = 0;   // events applied by the check (per version)
  uint64_t actors_differing = 0;  // actors with at least one difference
  std::vector<ShadowDifference> differences;  // the first max_differences
  std::vector<std::string> notes;  // how types were compared, what was skipped
  double elapsed_ms = 0;
  double cpu_ms = 0;          // CPU time the check's thread used
  uint32_t cpu_percent = 0;   // its bound (ShadowOptions::cpu_percent)
  uint64_t peak_memory_bytes = 0;
  uint64_t memory_limit_bytes = 0;
  bool complete = true;    // every sampled actor was checked
  // When not complete: "time", "memory", "error" or "plugin_timeout" (a hook
  // ran past ShadowOptions::call_timeout_ms).
  std::string stopped_by;

  // No differences, and the check did not fail.
  bool passed() const { return actors_differing == 0 && stopped_by != "error" && stopped_by != "plugin_timeout"; }
  // {"plugin","from_version","to_version","actors_checked",...,
  //  "differences":[{"actor","version","path","compared_with","diff"|"error"}]}
  std::string to_json() const;
};

// Runs the check of `next` against `current` (same plugin name) on the
// actors `runtime` serves in `namespaces` (empty: all it serves), reading
// histories from `events`.
// A hook that runs past options.call_timeout_ms is given up: the check
// returns at once (stopped_by "plugin_timeout") while its thread, holding
// both images, finishes on its own and touches nothing else.
ShadowReport run_shadow_check(std::shared_ptr<const Plugin> current, std::shared_ptr<const Plugin> next,
                              Runtime& runtime, Journal& events, const ShadowOptions& options,
                              const std::vector<std::string>& namespaces = {});

}  // namespace aether
