// KvBucket over a JetStream KV bucket (cnats kvStore).
#include <nats/nats.h>

#include "cluster/kv_bucket.hpp"
#include "nats/connection.hpp"

namespace aether::cluster {

namespace {

class NatsBucket final : public KvBucket {
 public:
  NatsBucket(NatsConnection& conn, kvStore* kv, std::string name) : conn_(conn), kv_(kv), name_(std::move(name)) {}
  ~NatsBucket() override { kvStore_Destroy(kv_); }

  Status put(const std::string& key, const std::string& value) override {
    return check(kvStore_PutString(nullptr, kv_, key.c_str(), value.c_str()), "put", key);
  }
  Result<uint64_t> create(const std::string& key, const std::string& value) override {
    uint64_t rev = 0;
    if (Status s = check(kvStore_CreateString(&rev, kv_, key.c_str(), value.c_str()), "create", key); !s) return s;
    return rev;
  }
  Result<uint64_t> update(const std::string& key, const std::string& value, uint64_t revision) override {
    uint64_t rev = 0;
    if (Status s = check(kvStore_UpdateString(&rev, kv_, key.c_str(), value.c_str(), revision), "update", key); !s) {
      return s;
    }
    return rev;
  }
  // Asked of the bucket stream's leader: a direct get (kvStore_Get) may be
  // answered by a replica that lags, and one back from a pause longer than
  // the bucket's TTL has expired every key it held; it says "not found"
  // for keys the leader holds until it has caught up, and a member must not
  // be taken for dead on its word.
  Result<std::optional<KvEntry>> get(const std::string& key) override {
    KvEntry e;
    int js_error = 0;
    const int s = kv_get_leader(conn_, name_, key, e.value, e.revision, &js_error);
    if (s == NATS_NOT_FOUND) return std::optional<KvEntry>();
    if (s != NATS_OK) {
      std::string what = "get " + key + " in bucket " + name_;
      if (js_error != 0) what += " (JetStream error " + std::to_string(js_error) + ")";
      return Status::unavailable(nats_error(s, what));
    }
    e.key = key;
    return std::optional<KvEntry>(std::move(e));
  }
  Status erase(const std::string& key) override { return check(kvStore_Delete(kv_, key.c_str()), "delete", key); }
  Result<std::unique_ptr<KvWatch>> watch_all() override { return watch_nats_bucket(conn_, name_); }

 private:
  Status check(natsStatus s, const char* op, const std::string& key) const {
    if (s == NATS_OK) return Status::ok();
    return Status::unavailable(nats_error(s, std::string(op) + " " + key + " in bucket " + name_));
  }

  NatsConnection& conn_;
  kvStore* kv_;
  std::string name_;
};

}  // namespace

Result<std::unique_ptr<KvBucket>> open_nats_bucket(NatsConnection& connection, const KvBucketOptions& options,
                                                   const std::string& who) {
  auto kv = open_kv_bucket(connection, options, who);
  if (!kv) return kv.status();
  return std::unique_ptr<KvBucket>(new NatsBucket(connection, *kv, options.name));
}

}  // namespace aether::cluster
