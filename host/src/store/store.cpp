#include "store/store.hpp"

#include <chrono>
#include <future>

namespace aether {

AppendResult EventStore::append_sync(const AppendRequest& request) {
  std::promise<AppendResult> p;
  auto f = p.get_future();
  append(request, [&p](AppendResult r) { p.set_value(std::move(r)); });
  return f.get();
}

Result<std::vector<StoredEvent>> EventStore::read_all(const ActorKey& key, uint64_t from_version,
                                                      uint64_t limit) {
  std::vector<StoredEvent> out;
  Status s = read(key, from_version, limit, [&out](const StoredEvent& e) {
    out.push_back(e);
    return Status::ok();
  });
  if (!s) return s;
  return out;
}

ActorSampler::ActorSampler(uint64_t n)
    : n_(n), rng_(static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count()) | 1) {}

void ActorSampler::offer(const std::string& id) {
  ++out_.total;
  if (out_.ids.size() < n_) {
    out_.ids.push_back(id);
    return;
  }
  rng_ ^= rng_ >> 12;
  rng_ ^= rng_ << 25;
  rng_ ^= rng_ >> 27;
  if (const uint64_t j = (rng_ * 0x2545F4914F6CDD1Dull) % out_.total; j < n_) out_.ids[j] = id;
}

}  // namespace aether
