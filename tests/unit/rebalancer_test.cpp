// The leader's rebalancing round (cluster::plan_round) and the shard map's
// wire form, without NATS: joins, leaves, deaths, releases, pacing, timeouts.
#include <gtest/gtest.h>

#include <map>
#include <set>
#include <string>

#include "cluster/shard_map.hpp"

namespace ac = aether::cluster;

namespace {

constexpr uint32_t kShards = 64;
const ac::RoundOptions kOpts{kShards, 16, /*max_moves=*/8, /*handoff_timeout_ms=*/1000};

struct Leader {
  ac::ShardMap map;
  ac::Released released;
  std::map<uint32_t, int64_t> planned_at;
  int64_t now = 1'000'000;

  ac::RoundResult round(const std::map<std::string, bool>& members, const ac::RoundOptions& o = kOpts) {
    return ac::plan_round(map, members, released, planned_at, now, o);
  }
  // Every source releases what it was asked to; rounds until nothing changes.
  int settle(const std::map<std::string, bool>& members) {
    for (int i = 0; i < 100; ++i) {
      for (const auto& [s, mg] : map.migrations) released[s] = mg.planned_epoch;
      if (!round(members).changed) return i;
    }
    return -1;
  }
  std::map<std::string, int> counts() const {
    std::map<std::string, int> c;
    for (const auto& o : map.owners) ++c[o];
    return c;
  }
};

}  // namespace

TEST(PlanRound, FirstRoundAssignsEveryShardAtOnceAndBumpsTheEpoch) {
  Leader l;
  const auto r = l.round({{"a", false}, {"b", false}});
  EXPECT_TRUE(r.changed);
  EXPECT_EQ(l.map.epoch, 1u);
  EXPECT_TRUE(l.map.migrations.empty()) << "unowned shards need no handoff";
  const auto c = l.counts();
  EXPECT_EQ(c.count(""), 0u);
  EXPECT_EQ(c.at("a") + c.at("b"), static_cast<int>(kShards));
  EXPECT_FALSE(l.round({{"a", false}, {"b", false}}).changed) << "a balanced map is left alone";
  EXPECT_EQ(l.map.epoch, 1u);
}

TEST(PlanRound, AJoinMigratesAtMostMaxMovesAtATimeUntilBalanced) {
  Leader l;
  l.round({{"a", false}, {"b", false}});
  const std::map<std::string, bool> three{{"a", false}, {"b", false}, {"c", false}};
  const auto r = l.round(three);
  EXPECT_TRUE(r.changed);
  EXPECT_EQ(l.map.migrations.size(), kOpts.max_moves);
  for (const auto& [s, mg] : l.map.migrations) {
    EXPECT_EQ(mg.to, "c");
    EXPECT_EQ(l.map.owners[s], mg.from) << "the source serves the shard until it releases it";
    EXPECT_EQ(mg.planned_epoch, l.map.epoch);
  }
  EXPECT_GT(l.settle(three), 0);
  const auto c = l.counts();
  for (const char* n : {"a", "b", "c"}) {
    EXPECT_GE(c.at(n), static_cast<int>(kShards / 3)) << n;
    EXPECT_LE(c.at(n), static_cast<int>(kShards / 3 + 1)) << n;
  }
  EXPECT_TRUE(l.map.migrations.empty());
}

TEST(PlanRound, AReleasedMigrationSettlesToItsTarget) {
  Leader l;
  l.round({{"a", false}});
  l.round({{"a", false}, {"b", false}});
  ASSERT_FALSE(l.map.migrations.empty());
  const auto [shard, mg] = *l.map.migrations.begin();
  l.released[shard] = mg.planned_epoch;
  const auto r = l.round({{"a", false}, {"b", false}});
  EXPECT_GE(r.migrations_done, 1u);
  EXPECT_EQ(l.map.owners[shard], "b");
}

TEST(PlanRound, AReleaseOfAnOlderPlanDoesNotSettleANewerOne) {
  Leader l;
  l.round({{"a", false}});
  l.round({{"a", false}, {"b", false}});
  const auto [shard, mg] = *l.map.migrations.begin();
  l.released[shard] = mg.planned_epoch - 1;
  l.round({{"a", false}, {"b", false}});
  EXPECT_EQ(l.map.owners[shard], "a");
  EXPECT_TRUE(l.map.migrations.count(shard));
}

TEST(PlanRound, ADeadSourceHandsItsShardsToTheTargetAtOnce) {
  Leader l;
  l.round({{"a", false}});
  l.round({{"a", false}, {"b", false}});
  const auto planned = l.map.migrations;
  ASSERT_FALSE(planned.empty());
  const auto r = l.round({{"b", false}});
  EXPECT_EQ(r.migrations_done, planned.size());
  EXPECT_TRUE(l.map.migrations.empty());
  for (const auto& o : l.map.owners) EXPECT_EQ(o, "b") << "every shard of the dead node moves now";
}

TEST(PlanRound, ADeadTargetFailsItsMigrationsAndTheSourceKeepsThem) {
  Leader l;
  l.round({{"a", false}});
  l.round({{"a", false}, {"b", false}});
  const size_t planned = l.map.migrations.size();
  const auto r = l.round({{"a", false}});
  EXPECT_EQ(r.migrations_failed, planned);
  EXPECT_TRUE(l.map.migrations.empty());
  for (const auto& o : l.map.owners) EXPECT_EQ(o, "a");
}

TEST(PlanRound, AMigrationNotReleasedInTimeIsReplannedWithAWarning) {
  Leader l;
  l.round({{"a", false}});
  l.round({{"a", false}, {"b", false}});
  const uint32_t shard = l.map.migrations.begin()->first;
  const uint64_t first_plan = l.map.migrations.begin()->second.planned_epoch;
  l.now += kOpts.handoff_timeout_ms + 1;
  const auto r = l.round({{"a", false}, {"b", false}});
  EXPECT_GE(r.migrations_failed, 1u);
  ASSERT_FALSE(r.warnings.empty());
  EXPECT_NE(r.warnings[0].find("not released within 1000 ms"), std::string::npos) << r.warnings[0];
  ASSERT_TRUE(l.map.migrations.count(shard)) << "planned again in the same round";
  EXPECT_GT(l.map.migrations.at(shard).planned_epoch, first_plan);
}

TEST(PlanRound, ALeavingNodeIsDrainedButKeepsServingUntilItReleases) {
  Leader l;
  l.round({{"a", false}, {"b", false}});
  const std::map<std::string, bool> leaving{{"a", false}, {"b", true}};
  l.round(leaving);
  for (const auto& [s, mg] : l.map.migrations) {
    EXPECT_EQ(mg.from, "b");
    EXPECT_EQ(l.map.owners[s], "b");
  }
  EXPECT_GT(l.settle(leaving), 0);
  for (const auto& o : l.map.owners) EXPECT_EQ(o, "a");
}

TEST(PlanRound, NoMemberPlacesNothing) {
  Leader l;
  EXPECT_FALSE(l.round({}).changed);
  EXPECT_EQ(l.map.owners.size(), kShards);
  EXPECT_FALSE(l.round({{"a", true}}).changed) << "a leaving node is not given shards";
}

TEST(ShardMapCodec, RoundTripsAndRefusesWhatDoesNotFit) {
  ac::ShardMap m;
  m.epoch = 7;
  m.owners = {"a", "", "b", "a"};
  m.migrations[2] = {2, "b", "a", 7};
  const auto back = ac::decode_map(ac::encode_map(m));
  ASSERT_TRUE(back);
  EXPECT_EQ(back->epoch, 7u);
  EXPECT_EQ(back->owners, m.owners);
  ASSERT_EQ(back->migrations.count(2), 1u);
  EXPECT_EQ(back->migrations.at(2).to, "a");
  EXPECT_TRUE(ac::map_fits(*back, 4));
  EXPECT_FALSE(ac::map_fits(*back, 3));
  m.migrations[9] = {9, "a", "b", 7};
  EXPECT_FALSE(ac::map_fits(m, 4)) << "a migration of a shard outside the map";
  for (const char* bad : {"", "[]", "{\"epoch\":1}", "{\"epoch\":-1,\"nodes\":[],\"owners\":[],\"migrations\":[]}",
                          "{\"epoch\":1,\"nodes\":[1],\"owners\":[0],\"migrations\":[]}",
                          "{\"epoch\":1,\"nodes\":[\"a\"],\"owners\":[0],\"migrations\":[[-1,\"a\",\"a\",1]]}",
                          "{\"epoch\":1,\"nodes\":[\"a\"],\"owners\":[0],\"migrations\":[[4294967296,\"a\",\"a\",1]]}",
                          "{\"epoch\":1,\"nodes\":[\"a\"],\"owners\":[0],\"migrations\":[[0,\"a\",\"a\",-2]]}"}) {
    EXPECT_FALSE(ac::decode_map(bad)) << bad;
  }
}
