#include "cluster/placement.hpp"

#include <algorithm>
#include <unordered_map>

namespace aether::cluster {

uint64_t fnv1a64(std::string_view bytes) {
  uint64_t h = 14695981039346656037ull;
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

uint64_t mix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

uint32_t shard_of(std::string_view type, std::string_view id, uint32_t shard_count) {
  std::string key;
  key.reserve(type.size() + 1 + id.size());
  key.append(type);
  key.push_back('\0');
  key.append(id);
  return static_cast<uint32_t>(mix64(fnv1a64(key)) % shard_count);
}

namespace {

uint64_t shard_point(uint32_t shard) { return mix64(fnv1a64("shard#" + std::to_string(shard))); }

// The ring of virtual nodes, with "skip the full nodes" in near-constant time:
// a union-find over ring positions where a full node's positions point to the
// next position clockwise.
class Ring {
 public:
  Ring(const std::vector<std::string>& nodes, uint32_t vnodes) : positions_of_(nodes.size()) {
    points_.reserve(nodes.size() * vnodes);
    for (uint32_t n = 0; n < nodes.size(); ++n) {
      for (uint32_t v = 0; v < vnodes; ++v) {
        points_.push_back({mix64(fnv1a64(nodes[n] + "#" + std::to_string(v))), n});
      }
    }
    // Ties (astronomically rare) are broken by node index, so the order is total.
    std::sort(points_.begin(), points_.end());
    for (uint32_t p = 0; p < points_.size(); ++p) positions_of_[points_[p].second].push_back(p);
    reset();
  }

  void reset() {
    parent_.resize(points_.size());
    for (uint32_t p = 0; p < parent_.size(); ++p) parent_[p] = p;
  }

  // No shard may be placed on `node` any more.
  void close(uint32_t node) {
    for (uint32_t p : positions_of_[node]) parent_[p] = next(p);
  }

  // The first node clockwise from `point` that is not closed. At least one
  // node must be open.
  uint32_t owner(uint64_t point) {
    auto it = std::lower_bound(points_.begin(), points_.end(), std::pair<uint64_t, uint32_t>{point, 0});
    const uint32_t start = it == points_.end() ? 0 : static_cast<uint32_t>(it - points_.begin());
    return points_[find(start)].second;
  }

 private:
  uint32_t next(uint32_t p) const { return p + 1 == points_.size() ? 0 : p + 1; }

  uint32_t find(uint32_t p) {
    uint32_t root = p;
    while (parent_[root] != root) root = parent_[root];
    while (parent_[p] != root) {
      const uint32_t up = parent_[p];
      parent_[p] = root;
      p = up;
    }
    return root;
  }

  std::vector<std::pair<uint64_t, uint32_t>> points_;
  std::vector<std::vector<uint32_t>> positions_of_;
  std::vector<uint32_t> parent_;
};

}  // namespace

namespace {

// A shard assignment being built over `live` (sorted, unique, non-empty):
// every node ends with `floor` shards or, `extras` of them, floor + 1.
struct Assignment {
  const std::vector<std::string>& live;
  uint32_t nodes, shards, floor, extras;
  std::vector<uint64_t> node_hash;
  std::vector<uint32_t> count;
  std::vector<int64_t> owner;

  Assignment(const std::vector<std::string>& l, uint32_t shard_count)
      : live(l), nodes(static_cast<uint32_t>(l.size())), shards(shard_count), floor(shard_count / nodes),
        extras(shard_count % nodes), node_hash(nodes), count(nodes, 0), owner(shard_count, -1) {
    for (uint32_t n = 0; n < nodes; ++n) node_hash[n] = fnv1a64(live[n]);
  }

  uint64_t score(uint32_t s, uint32_t n) const { return mix64(node_hash[n] ^ mix64(s)); }

  // 1. Live owners keep their shards up to `floor`: the ones they score best
  //    on (a rendezvous score, so which ones is stable and spread out).
  //    2. Of the nodes that held more, as many as there are extra slots keep
  //    one more.
  void keep_held(const std::vector<std::string>& current) {
    std::unordered_map<std::string, uint32_t> index;
    for (uint32_t n = 0; n < nodes; ++n) index.emplace(live[n], n);
    std::vector<std::vector<uint32_t>> held(nodes);
    for (uint32_t s = 0; s < shards && s < current.size(); ++s) {
      auto it = index.find(current[s]);
      if (it != index.end()) held[it->second].push_back(s);
    }
    struct Claim {
      uint64_t order;
      uint32_t node;
      uint32_t shard;
    };
    std::vector<Claim> claims;  // a node's best shard beyond `floor`
    for (uint32_t n = 0; n < nodes; ++n) {
      auto& h = held[n];
      std::sort(h.begin(), h.end(), [&](uint32_t a, uint32_t b) {
        const uint64_t sa = score(a, n), sb = score(b, n);
        return sa != sb ? sa > sb : a < b;
      });
      const uint32_t keep = std::min<uint32_t>(floor, static_cast<uint32_t>(h.size()));
      for (uint32_t i = 0; i < keep; ++i) owner[h[i]] = n;
      count[n] = keep;
      if (h.size() > keep) claims.push_back({mix64(node_hash[n]), n, h[keep]});
    }
    std::sort(claims.begin(), claims.end(),
              [](const Claim& a, const Claim& b) { return a.order != b.order ? a.order < b.order : a.node < b.node; });
    for (const Claim& c : claims) {
      if (extras == 0) break;
      owner[c.shard] = c.node;
      ++count[c.node];
      --extras;
    }
  }

  // 3. The rest go round the ring: first filling every node to `floor`,
  //    then the remaining extra slots.
  void fill_from_ring(uint32_t vnodes) {
    Ring ring(live, std::max<uint32_t>(1, vnodes));
    uint32_t below = 0;
    for (uint32_t n = 0; n < nodes; ++n) {
      if (count[n] >= floor) ring.close(n);
      else ++below;
    }
    uint32_t s = 0;
    for (; s < shards && below > 0; ++s) {
      if (owner[s] >= 0) continue;
      const uint32_t n = ring.owner(shard_point(s));
      owner[s] = n;
      if (++count[n] == floor) {
        ring.close(n);
        --below;
      }
    }
    ring.reset();
    for (uint32_t n = 0; n < nodes; ++n) {
      if (count[n] > floor) ring.close(n);
    }
    for (; s < shards; ++s) {
      if (owner[s] >= 0) continue;
      const uint32_t n = ring.owner(shard_point(s));
      owner[s] = n;
      ++count[n];
      ring.close(n);
    }
  }
};

}  // namespace

RebalancePlan rebalance(const std::vector<std::string>& current, std::vector<std::string> live,
                        uint32_t shard_count, uint32_t vnodes) {
  std::sort(live.begin(), live.end());
  live.erase(std::unique(live.begin(), live.end()), live.end());
  live.erase(std::remove(live.begin(), live.end(), std::string()), live.end());
  RebalancePlan plan;
  plan.owners.assign(shard_count, std::string());
  if (!live.empty()) {
    Assignment a(live, shard_count);
    a.keep_held(current);
    a.fill_from_ring(vnodes);
    for (uint32_t i = 0; i < shard_count; ++i) plan.owners[i] = live[static_cast<size_t>(a.owner[i])];
  }
  static const std::string none;
  for (uint32_t s = 0; s < shard_count; ++s) {
    const std::string& old = s < current.size() ? current[s] : none;
    if (plan.owners[s] != old && !plan.owners[s].empty()) plan.moves.push_back({s, old, plan.owners[s]});
  }
  return plan;
}

std::vector<uint32_t> shards_per_node(const std::vector<std::string>& owners,
                                      const std::vector<std::string>& nodes) {
  std::unordered_map<std::string, uint32_t> index;
  for (uint32_t n = 0; n < nodes.size(); ++n) index.emplace(nodes[n], n);
  std::vector<uint32_t> out(nodes.size(), 0);
  for (const auto& o : owners) {
    auto it = index.find(o);
    if (it != index.end()) ++out[it->second];
  }
  return out;
}

}  // namespace aether::cluster
