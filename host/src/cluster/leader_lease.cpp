#include "cluster/leader_lease.hpp"

namespace aether::cluster {

namespace {
constexpr const char* kKey = "leader";
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
  if (auto e = bucket_.get(kKey); e && e->has_value()) turn.leader = (*e)->value;
  return turn;
}

void LeaderLease::release() {
  if (!held_) return;
  (void)bucket_.erase(kKey);
  held_ = false;
}

}  // namespace aether::cluster
