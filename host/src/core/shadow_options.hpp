// The bounds and sample of a reload's shadow check (runtime/shadow_check.hpp),
// plain data so that the configuration can hold them (plugins.shadow_check).
#pragma once

#include <cstdint>

namespace aether {

struct ShadowOptions {
  bool enabled = true;
  // Passive actors sampled per (namespace, actor type): the larger of
  // `sample` and `sample_percent` % of them (all when fewer exist).
  uint64_t sample = 1000;
  uint32_t sample_percent = 0;
  // Active actors, always included, up to this many.
  uint64_t max_active = 1000;
  int64_t time_limit_ms = 30000;
  // The most CPU the check takes, in percent of one core: after each few
  // milliseconds of work it rests so long that its share stays at this
  // (100: it never rests). Its thread is in the idle CPU class, so the
  // commands' threads come first; time_limit counts the rests.
  uint32_t cpu_percent = 10;
  // The check's own working memory: sampled ids, the states' snapshots and
  // views of the actor being checked, and the report.
  uint64_t memory_limit_bytes = 64ull << 20;
  // Differences reported in detail (all are counted).
  uint32_t max_differences = 20;
  // Longest a plugin hook the check calls may take (0: no limit); the host
  // gives it actors.call_timeout. The check gives up on a hook past it and
  // fails ("stopped_by": "plugin_timeout").
  int64_t call_timeout_ms = 0;
};

}  // namespace aether
