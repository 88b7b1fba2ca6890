// The route trail a forwarded command carries (cluster/route_trail.hpp):
// header parsing with its bounds, and the rule that keeps a command from
// travelling in a circle.
#include "cluster/route_trail.hpp"

#include <gtest/gtest.h>

namespace aether {
namespace {

TEST(RouteTrail, ParsesWhatANodeSends) {
  auto t = parse_route_trail("42", "node-1,node-2", "3750", 5000);
  ASSERT_TRUE(t) << t.status().to_string();
  EXPECT_EQ(t->epoch, 42u);
  EXPECT_EQ(t->path, (std::vector<std::string>{"node-1", "node-2"}));
  EXPECT_EQ(t->budget_ms, 3750);
  EXPECT_EQ(t->path_text(), "node-1,node-2");
  auto none = parse_route_trail(nullptr, nullptr, nullptr, 5000);
  ASSERT_TRUE(none);
  EXPECT_EQ(none->epoch, 0u);
  EXPECT_TRUE(none->path.empty());
  EXPECT_EQ(none->budget_ms, -1);
  EXPECT_EQ(parse_route_trail(nullptr, nullptr, "999999999", 5000)->budget_ms, 5000) << "capped";
}

TEST(RouteTrail, RefusesWhatNoNodeSends) {
  for (const char* epoch : {"", "-1", "12ab", "99999999999999999999", " 1"}) {
    auto t = parse_route_trail(epoch, nullptr, nullptr, 5000);
    ASSERT_FALSE(t) << "epoch '" << epoch << "'";
    EXPECT_NE(t.status().message().find("Aether-Epoch"), std::string::npos);
  }
  for (const char* path : {"a,,b", "a.b", "a,*", ",", "a,b,", "n\xff"}) {
    auto t = parse_route_trail(nullptr, path, nullptr, 5000);
    ASSERT_FALSE(t) << "path '" << path << "'";
    EXPECT_NE(t.status().message().find("Aether-Path"), std::string::npos);
  }
  std::string long_path = "n0";
  for (size_t i = 1; i <= RouteTrail::kMaxPath; ++i) long_path += ",n" + std::to_string(i);
  EXPECT_FALSE(parse_route_trail(nullptr, long_path.c_str(), nullptr, 5000));
  EXPECT_FALSE(parse_route_trail(nullptr, nullptr, "-5", 5000));
}

TEST(RouteTrail, NeverForwardsToANodeOnThePath) {
  RouteTrail t;
  t.epoch = 7;
  t.path = {"a", "b"};
  EXPECT_EQ(check_trail(t, 7, "a", false), TrailStep::kRedirect);
  EXPECT_EQ(check_trail(t, 9, "b", false), TrailStep::kRedirect) << "a newer map here does not make a circle right";
  EXPECT_EQ(check_trail(t, 7, "c", false), TrailStep::kGo);
  EXPECT_EQ(check_trail(t, 7, "", false), TrailStep::kGo) << "runs or waits here";
}

TEST(RouteTrail, AnOlderMapIsReadAgainOnceBeforeForwarding) {
  RouteTrail t;
  t.epoch = 12;
  t.path = {"a"};
  EXPECT_EQ(check_trail(t, 11, "c", false), TrailStep::kFetchMap);
  EXPECT_EQ(check_trail(t, 11, "c", true), TrailStep::kGo) << "after one read it goes on with its map";
  EXPECT_EQ(check_trail(t, 11, "a", true), TrailStep::kRedirect);
  EXPECT_EQ(check_trail(t, 12, "c", false), TrailStep::kGo);
}

}  // namespace
}  // namespace aether
