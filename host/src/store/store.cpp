#include "store/store.hpp"

#include <chrono>
#include <future>

namespace aether {

AppendResult Journal::append_sync(const AppendRequest& request) {
  std::promise<AppendResult> p;
  auto f = p.get_future();
  append(request, [&p](AppendResult r) { p.set_value(std::move(r)); });
  return f.get();
}

Result<std::vector<StoredEvent>> Journal::read_all(const ActorKey& key, uint64_t from_version,
                                                      uint64_t limit) {
  std::vector<StoredEvent> out;
  Status s = read(key, from_version, limit, [&out](const StoredEvent& e) {
    out.push_back(e);
    return Status::ok();
  });
  if (!s) return s;
  return out;
}

// The generic strategy, refined by a backend's read_known/at_hand/
// may_drop_events: an actor without events needs neither a snapshot lookup
// nor a read, unless the stream may have dropped events a snapshot still
// holds; a snapshot is looked up only when the events are not at hand.
Status Journal::load(const ActorKey& key, uint64_t known_latest, LoadSink& sink) {
  auto latest = known_latest > 0 ? Result<uint64_t>(known_latest) : latest_version(key);
  if (!latest) return latest.status();
  const bool dropping = may_drop_events();
  Result<std::optional<Snapshot>> snap = std::optional<Snapshot>();
  if ((*latest > 0 && !at_hand(key, 1, *latest)) || dropping) {
    snap = latest_snapshot(key);
    if (!snap) return snap.status();
  }
  if (Status s = sink.begin(*latest == 0 && !snap->has_value()); !s) return s;
  uint64_t version = 0;
  if (snap->has_value() && sink.snapshot(**snap)) version = (*snap)->version;
  if (*latest <= version && !dropping) return Status::ok();
  return read_known(key, version + 1, *latest, [&sink](const StoredEvent& e) { return sink.event(e); });
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
