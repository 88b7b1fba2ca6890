#include "cluster/leader_lease.hpp"

#include <chrono>

namespace aether::cluster {

namespace {
constexpr const char* kKey = "leader";

int64_t steady_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}
}  // namespace

LeaseTurn LeaderLease::campaign(bool may_take) {
  LeaseTurn turn;
  if (held_) {
    auto rev = bucket_.update(kKey, id_, revision_);
    if (rev) {
      revision_ = *rev;
      turn.kind = LeaseTurn::kHeld;
      turn.leader = id_;
    } else {
      held_ = false;
      turn.kind = LeaseTurn::kLost;
      turn.error = rev.status().message();
    }
    return turn;
  }
  if (!may_take) return turn;
  if (auto rev = bucket_.create(kKey, id_)) {
    revision_ = *rev;
    held_ = true;
    turn.kind = LeaseTurn::kTaken;
    turn.leader = id_;
    return turn;
  }
  auto e = bucket_.get(kKey);
  if (!e || !e->has_value()) return turn;
  turn.leader = (*e)->value;
  const uint64_t rev = (*e)->revision;
  const int64_t now = steady_ms();
  if (rev != seen_revision_) {
    seen_revision_ = rev;
    seen_since_ms_ = now;
    return turn;
  }
  if (ttl_ms_ <= 0 || now - seen_since_ms_ < ttl_ms_ || turn.leader == id_) return turn;
  // Not renewed for a whole TTL: taken at the revision it was left at.
  if (auto taken = bucket_.update(kKey, id_, rev)) {
    revision_ = *taken;
    held_ = true;
    turn.kind = LeaseTurn::kTaken;
    turn.leader = id_;
  }
  return turn;
}

void LeaderLease::release() {
  if (!held_) return;
  (void)bucket_.erase(kKey);
  held_ = false;
}

}  // namespace aether::cluster
