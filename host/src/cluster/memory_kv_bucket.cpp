// KvBucket in memory, for tests: revisions, conditional writes and watches
// as JetStream KV has them, without TTL.
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <vector>

#include "cluster/kv_bucket.hpp"

namespace aether::cluster {

namespace {

struct Shared {
  std::mutex mu;
  std::condition_variable changed;
  uint64_t revision = 0;
  std::map<std::string, KvEntry> values;  // deletions kept as markers
  std::vector<KvEntry> log;               // every change, in order
};

class MemoryWatch final : public KvWatch {
 public:
  explicit MemoryWatch(std::shared_ptr<Shared> s) : s_(std::move(s)) {
    std::lock_guard lock(s_->mu);
    for (const auto& [key, e] : s_->values) {
      if (!e.deleted) pending_.push_back(e);
    }
    pending_.push_back(std::nullopt);  // initial values done
    seen_ = s_->log.size();
  }

  Result<std::optional<KvEntry>> next(int64_t timeout_ms) override {
    std::unique_lock lock(s_->mu);
    if (pending_.empty()) {
      s_->changed.wait_for(lock, std::chrono::milliseconds(timeout_ms), [&] { return s_->log.size() > seen_; });
      for (; seen_ < s_->log.size(); ++seen_) pending_.push_back(s_->log[seen_]);
    }
    if (pending_.empty()) return Status::unavailable("no change within " + std::to_string(timeout_ms) + " ms");
    auto e = std::move(pending_.front());
    pending_.pop_front();
    return e;
  }

 private:
  std::shared_ptr<Shared> s_;
  std::deque<std::optional<KvEntry>> pending_;
  size_t seen_ = 0;
};

class MemoryBucket final : public KvBucket {
 public:
  Status put(const std::string& key, const std::string& value) override {
    std::lock_guard lock(s_->mu);
    write(key, value, false);
    return Status::ok();
  }
  Result<uint64_t> create(const std::string& key, const std::string& value) override {
    std::lock_guard lock(s_->mu);
    auto it = s_->values.find(key);
    if (it != s_->values.end() && !it->second.deleted) return Status::conflict("key " + key + " exists");
    return write(key, value, false);
  }
  Result<uint64_t> update(const std::string& key, const std::string& value, uint64_t revision) override {
    std::lock_guard lock(s_->mu);
    auto it = s_->values.find(key);
    const uint64_t at = it == s_->values.end() ? 0 : it->second.revision;
    if (at != revision) {
      return Status::conflict("key " + key + " is at revision " + std::to_string(at) + ", not " +
                              std::to_string(revision));
    }
    return write(key, value, false);
  }
  Result<std::optional<KvEntry>> get(const std::string& key) override {
    std::lock_guard lock(s_->mu);
    auto it = s_->values.find(key);
    if (it == s_->values.end() || it->second.deleted) return std::optional<KvEntry>();
    return std::optional<KvEntry>(it->second);
  }
  Status erase(const std::string& key) override {
    std::lock_guard lock(s_->mu);
    write(key, "", true);
    return Status::ok();
  }
  Result<std::unique_ptr<KvWatch>> watch_all() override { return std::unique_ptr<KvWatch>(new MemoryWatch(s_)); }

 private:
  // REQUIRES: s_->mu held.
  uint64_t write(const std::string& key, const std::string& value, bool deleted) {
    KvEntry e{key, value, ++s_->revision, deleted};
    s_->values[key] = e;
    s_->log.push_back(std::move(e));
    s_->changed.notify_all();
    return s_->revision;
  }

  std::shared_ptr<Shared> s_ = std::make_shared<Shared>();
};

}  // namespace

std::unique_ptr<KvBucket> make_memory_bucket() { return std::make_unique<MemoryBucket>(); }

}  // namespace aether::cluster
