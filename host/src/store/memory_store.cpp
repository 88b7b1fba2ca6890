// The memory backend: one stream per actor in a map, guarded by striped
// mutexes so appends to different actors run in parallel.
#include <algorithm>
#include <array>
#include <atomic>
#include <map>
#include <mutex>
#include <random>
#include <unordered_map>

#include "core/conflict.hpp"
#include "store/commit_codec.hpp"
#include "store/store.hpp"

namespace aether {
namespace {

struct KeyHash {
  size_t operator()(const ActorKey& k) const {
    std::hash<std::string> h;
    return h(k.ns) * 31 * 31 + h(k.type) * 31 + h(k.id);
  }
};

struct Stream {
  std::vector<StoredEvent> events;
  std::unordered_map<std::string, IdempotentCommit> idempotency;
  std::vector<Snapshot> snapshots;  // oldest first
};

class MemoryStore final : public Journal {
 public:
  MemoryStore(Bus* broadcast, const std::string& node_id)
      : broadcast_(broadcast), node_id_(node_id), commit_prefix_(commit_id_prefix(node_id)) {}

  void append(const AppendRequest& req, AppendCallback done) override {
    AppendResult r;
    {
      Stripe& s = stripe(req.key);
      std::lock_guard lock(s.mu);
      Stream& st = s.streams[req.key];
      const uint64_t current = st.events.size();
      if (!req.idempotency_key.empty()) {
        auto it = st.idempotency.find(req.idempotency_key);
        if (it != st.idempotency.end()) {
          r.duplicate = true;
          r.first_version = it->second.first_version;
          r.version = it->second.last_version;
          r.duplicate_digest = it->second.digest;
          done(std::move(r));
          return;
        }
      }
      if (req.events.empty()) {
        r.status = Status::invalid("an append needs at least one event");
      } else if (current != req.expected_version) {
        r.status = version_conflict(req.key, req.expected_version, current);
        r.current_version = current;
      } else {
        r.first_version = current + 1;
        for (const auto& e : req.events) {
          st.events.push_back({st.events.size() + 1, e.type, e.payload, req.timestamp_ms});
        }
        r.version = st.events.size();
        if (!req.idempotency_key.empty()) {
          StoredEvent& last = st.events.back();
          last.idempotency_key = req.idempotency_key;
          last.command_digest = req.command_digest;
          last.commit_first_version = r.first_version;
          st.idempotency[req.idempotency_key] = {r.first_version, r.version, req.command_digest};
        }
        // Under the stripe's lock: an actor's commits reach the bus in order.
        if (broadcast_ != nullptr) {
          publish_commit(*broadcast_, req, r.first_version, commit_prefix_ + std::to_string(++commits_), node_id_);
        }
      }
    }
    done(std::move(r));
  }

  Status read(const ActorKey& key, uint64_t from_version, uint64_t limit,
              const EventVisitor& visit) override {
    std::vector<StoredEvent> copy;
    {
      Stripe& s = stripe(key);
      std::lock_guard lock(s.mu);
      auto it = s.streams.find(key);
      if (it == s.streams.end()) return Status::ok();
      const auto& ev = it->second.events;
      const uint64_t start = from_version == 0 ? 0 : from_version - 1;
      for (uint64_t i = start; i < ev.size() && copy.size() < limit; ++i) copy.push_back(ev[i]);
    }
    for (const auto& e : copy) {
      if (Status st = visit(e); !st) return st;
    }
    return Status::ok();
  }

  Result<uint64_t> latest_version(const ActorKey& key) override {
    Stripe& s = stripe(key);
    std::lock_guard lock(s.mu);
    auto it = s.streams.find(key);
    return it == s.streams.end() ? uint64_t{0} : uint64_t{it->second.events.size()};
  }

  Result<std::optional<IdempotentCommit>> find_idempotent(const ActorKey& key,
                                                          const std::string& k) override {
    Stripe& s = stripe(key);
    std::lock_guard lock(s.mu);
    auto it = s.streams.find(key);
    if (it == s.streams.end()) return std::optional<IdempotentCommit>();
    auto i = it->second.idempotency.find(k);
    if (i == it->second.idempotency.end()) return std::optional<IdempotentCommit>();
    return std::optional<IdempotentCommit>(i->second);
  }

  Status forget_idempotent(const ActorKey& key, const std::string& k) override {
    Stripe& s = stripe(key);
    std::lock_guard lock(s.mu);
    auto it = s.streams.find(key);
    if (it != s.streams.end()) it->second.idempotency.erase(k);
    return Status::ok();
  }

  Status flush() override { return Status::ok(); }

  Result<ActorSample> sample_actors(const std::string& ns, const std::string& type, uint64_t n) override {
    ActorSampler sampler(n);
    for (Stripe& s : stripes_) {
      std::lock_guard lock(s.mu);
      for (const auto& [key, st] : s.streams) {
        if (key.ns == ns && key.type == type && !st.events.empty()) sampler.offer(key.id);
      }
    }
    return sampler.take();
  }

  Result<TruncateResult> truncate_after(const ActorKey& key, uint64_t version, bool dry_run) override {
    Stripe& s = stripe(key);
    std::lock_guard lock(s.mu);
    auto it = s.streams.find(key);
    const uint64_t have = it == s.streams.end() ? 0 : it->second.events.size();
    if (version > have) {
      return Status::invalid("actor " + key.to_string() + " has " + std::to_string(have) +
                             " events: nothing follows version " + std::to_string(version));
    }
    TruncateResult r;
    r.records = have - version;
    r.last_version = r.records == 0 ? 0 : have;
    if (dry_run || r.records == 0) return r;
    Stream& st = it->second;
    st.events.resize(version);
    std::erase_if(st.idempotency, [&](const auto& kv) { return kv.second.last_version > version; });
    return r;
  }

  Status save_snapshot(const ActorKey& key, const Snapshot& snapshot, uint32_t keep) override {
    Stripe& s = stripe(key);
    std::lock_guard lock(s.mu);
    auto& snaps = s.streams[key].snapshots;
    std::erase_if(snaps, [&](const Snapshot& x) { return x.version == snapshot.version; });
    snaps.push_back(snapshot);
    std::sort(snaps.begin(), snaps.end(),
              [](const Snapshot& a, const Snapshot& b) { return a.version < b.version; });
    const size_t k = keep == 0 ? 1 : keep;
    if (snaps.size() > k) snaps.erase(snaps.begin(), snaps.end() - static_cast<ptrdiff_t>(k));
    return Status::ok();
  }

  Result<std::optional<Snapshot>> latest_snapshot(const ActorKey& key) override {
    Stripe& s = stripe(key);
    std::lock_guard lock(s.mu);
    auto it = s.streams.find(key);
    if (it == s.streams.end() || it->second.snapshots.empty()) return std::optional<Snapshot>();
    return std::optional<Snapshot>(it->second.snapshots.back());
  }

  Result<uint64_t> drop_snapshots_after(const ActorKey& key, uint64_t version, bool dry_run) override {
    Stripe& s = stripe(key);
    std::lock_guard lock(s.mu);
    auto it = s.streams.find(key);
    if (it == s.streams.end()) return uint64_t{0};
    auto above = [&](const Snapshot& x) { return x.version > version; };
    auto& snaps = it->second.snapshots;
    const auto n = static_cast<uint64_t>(std::count_if(snaps.begin(), snaps.end(), above));
    if (!dry_run) std::erase_if(snaps, above);
    return n;
  }

  Result<std::vector<Snapshot>> list_snapshots(const ActorKey& key) override {
    Stripe& s = stripe(key);
    std::lock_guard lock(s.mu);
    auto it = s.streams.find(key);
    if (it == s.streams.end()) return std::vector<Snapshot>();
    return std::vector<Snapshot>(it->second.snapshots.rbegin(), it->second.snapshots.rend());
  }

 private:
  struct Stripe {
    std::mutex mu;
    std::unordered_map<ActorKey, Stream, KeyHash> streams;
  };
  Stripe& stripe(const ActorKey& k) { return stripes_[KeyHash{}(k) % stripes_.size()]; }

  std::array<Stripe, 64> stripes_;
  Bus* const broadcast_;
  const std::string node_id_;
  const std::string commit_prefix_;
  std::atomic<uint64_t> commits_{0};
};

}  // namespace

std::unique_ptr<Journal> make_memory_store(Bus* broadcast, const std::string& node_id) {
  return std::make_unique<MemoryStore>(broadcast, node_id);
}

}  // namespace aether
