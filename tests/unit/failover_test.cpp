// cluster::failed_over (cluster/failover.hpp): which members lose their
// shards before their TTL under cluster.failover_after.
#include "cluster/failover.hpp"

#include <gtest/gtest.h>

namespace aether::cluster {
namespace {

TEST(Failover, OffWhenNotConfigured) {
  const std::map<std::string, Heard> m = {{"a", {0, 1}}, {"b", {9000, 2}}};
  EXPECT_TRUE(failed_over(m, "b", 10000, 0).empty());
}

TEST(Failover, AMemberSilentThatLongIsFailedOver) {
  const std::map<std::string, Heard> m = {{"a", {8000, 1}}, {"b", {9800, 2}}, {"c", {9500, 3}}};
  EXPECT_EQ(failed_over(m, "b", 10000, 1500), (std::set<std::string>{"a"}));
  EXPECT_EQ(failed_over(m, "b", 10000, 2001), (std::set<std::string>{}));
}

TEST(Failover, NobodyWhileThisNodeDoesNotHearItself) {
  // Cut off from NATS, this node hears nobody, itself included.
  const std::map<std::string, Heard> m = {{"a", {1000, 1}}, {"b", {1000, 2}}};
  EXPECT_TRUE(failed_over(m, "b", 10000, 1500).empty());
  EXPECT_TRUE(failed_over({{"a", {1000, 1}}}, "b", 10000, 1500).empty()) << "itself not heard yet";
}

}  // namespace
}  // namespace aether::cluster
