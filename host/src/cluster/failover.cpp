#include "cluster/failover.hpp"

namespace aether::cluster {

std::set<std::string> failed_over(const std::map<std::string, Heard>& members, const std::string& self,
                                  int64_t now_ms, int64_t failover_after_ms) {
  std::set<std::string> out;
  if (failover_after_ms <= 0) return out;
  auto me = members.find(self);
  if (me == members.end() || now_ms - me->second.at_ms >= failover_after_ms) return out;
  for (const auto& [id, h] : members) {
    if (id != self && now_ms - h.at_ms >= failover_after_ms) out.insert(id);
  }
  return out;
}

}  // namespace aether::cluster
