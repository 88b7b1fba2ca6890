// core/subjects.hpp: every subject aether uses, built and parsed in one place.
#include <gtest/gtest.h>

#include "core/conflict.hpp"
#include "core/subjects.hpp"

namespace aether {
namespace {

TEST(Subjects, BuildsEverySubject) {
  const ActorKey k{"shop", "Order", "o-1"};
  EXPECT_EQ(subjects::events(k), "aether.shop.events.Order.o-1");
  EXPECT_EQ(subjects::events_pattern("shop"), "aether.shop.events.*.*");
  EXPECT_EQ(subjects::events_pattern("shop", "Order"), "aether.shop.events.Order.*");
  EXPECT_EQ(subjects::events_pattern("shop", "", "o-1"), "aether.shop.events.*.o-1");
  EXPECT_EQ(subjects::all_events("shop"), "aether.shop.events.>");
  EXPECT_EQ(subjects::snapshots(k), "aether.shop.snapshots.Order.o-1");
  EXPECT_EQ(subjects::all_snapshots("shop"), "aether.shop.snapshots.>");
  EXPECT_EQ(subjects::commands_pattern("shop"), "aether.shop.cmd.*.*");
  EXPECT_EQ(subjects::command_queue("shop"), "aether.shop");
  EXPECT_EQ(subjects::forward("node-2", k), "aether._cluster.fwd.node-2.shop.Order.o-1");
}

TEST(Subjects, ParsesWhatItBuilds) {
  const ActorKey k{"shop", "Order", "o-1"};
  auto c = subjects::parse_command("aether.shop.cmd.Order.o-1");
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->to_string(), k.to_string());
  auto f = subjects::parse_command(subjects::forward("node-2", k));
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->to_string(), k.to_string());
  auto e = subjects::parse_events(subjects::events(k));
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->to_string(), k.to_string());
  for (const char* bad : {"", "aether", "aether.shop.cmd.Order", "aether.shop.events.Order.o-1",
                          "other.shop.cmd.Order.o-1", "aether._cluster.x.n.shop.Order.o-1",
                          "aether.shop.cmd.Order.o-1.extra"}) {
    EXPECT_FALSE(subjects::parse_command(bad).has_value()) << bad;
  }
  EXPECT_FALSE(subjects::parse_events("aether.shop.cmd.Order.o-1").has_value());
}

TEST(Subjects, OneConflictMessage) {
  const Status s = version_conflict({"shop", "Order", "o-1"}, 3, 5);
  EXPECT_EQ(s.code(), StatusCode::kConflict);
  EXPECT_EQ(s.message(), "actor shop/Order/o-1: expected version 3, current version 5");
}

}  // namespace
}  // namespace aether
