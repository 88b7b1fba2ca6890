// The cluster's view of a key-value bucket: what membership, the leader
// lease and the shard map need of JetStream KV, and nothing else, so that
// their logic can run against an in-memory bucket in tests.
//
// Two implementations: over a JetStream KV bucket (open_nats_bucket) and in
// memory (make_memory_bucket; no TTL, for tests).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "core/status.hpp"

namespace aether {

class NatsConnection;
struct KvBucketOptions;  // nats/connection.hpp

namespace cluster {

struct KvEntry {
  std::string key;
  std::string value;      // "" for a deletion
  uint64_t revision = 0;  // the bucket's sequence of this change
  bool deleted = false;   // a delete or purge marker
};

// The changes of every key of a bucket: first the current values, then a
// marker (an empty optional), then each change as it happens.
class KvWatch {
 public:
  virtual ~KvWatch() = default;
  // The next change, the marker, or kUnavailable when none came within
  // `timeout_ms` or the watch cannot deliver (after such an error it pauses
  // briefly, so that a loop around it does not spin).
  virtual Result<std::optional<KvEntry>> next(int64_t timeout_ms) = 0;
};

// Thread-safe.
class KvBucket {
 public:
  virtual ~KvBucket() = default;
  virtual Status put(const std::string& key, const std::string& value) = 0;
  // Writes only if the key has no value; returns the new revision.
  virtual Result<uint64_t> create(const std::string& key, const std::string& value) = 0;
  // Writes only if the key's latest revision is `revision`.
  virtual Result<uint64_t> update(const std::string& key, const std::string& value, uint64_t revision) = 0;
  // The key's value, or none (never written, deleted, or expired), as the
  // bucket's leader holds it (NATS: not a direct get, which a replica that
  // lags may answer).
  virtual Result<std::optional<KvEntry>> get(const std::string& key) = 0;
  virtual Status erase(const std::string& key) = 0;
  virtual Result<std::unique_ptr<KvWatch>> watch_all() = 0;
};

// A JetStream KV bucket (created when missing). `who` names the caller in
// errors. REQUIRES: `connection` outlives the bucket.
Result<std::unique_ptr<KvBucket>> open_nats_bucket(NatsConnection& connection, const KvBucketOptions& options,
                                                   const std::string& who);

// A watch of every key of JetStream KV bucket `bucket` over a consumer of
// its own (cluster/nats_kv_watch.cpp says why not the client's KV watcher).
// REQUIRES: `connection` outlives the watch.
Result<std::unique_ptr<KvWatch>> watch_nats_bucket(NatsConnection& connection, const std::string& bucket);

// A bucket in memory, for tests: the same revisions and conditional writes,
// no TTL.
std::unique_ptr<KvBucket> make_memory_bucket();

}  // namespace cluster
}  // namespace aether
