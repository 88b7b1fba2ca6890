// KvBucket over a JetStream KV bucket (cnats kvStore).
#include <nats/nats.h>

#include "cluster/kv_bucket.hpp"
#include "nats/connection.hpp"

namespace aether::cluster {

namespace {

KvEntry to_entry(kvEntry* e) {
  KvEntry out;
  out.key = kvEntry_Key(e);
  out.deleted = kvEntry_Operation(e) != kvOp_Put;
  if (!out.deleted) out.value = kvEntry_ValueString(e);
  out.revision = kvEntry_Revision(e);
  kvEntry_Destroy(e);
  return out;
}

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
  Result<std::optional<KvEntry>> get(const std::string& key) override {
    kvEntry* e = nullptr;
    const natsStatus s = kvStore_Get(&e, kv_, key.c_str());
    if (s == NATS_NOT_FOUND) return std::optional<KvEntry>();
    if (Status st = check(s, "get", key); !st) return st;
    return std::optional<KvEntry>(to_entry(e));
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
