// core/guarded: the last-resort catch of callbacks and thread bodies.
#include "core/guarded.hpp"

#include <gtest/gtest.h>

#include <new>
#include <stdexcept>

namespace aether {
namespace {

TEST(RunGuarded, ReturnsTrueWhenTheBodyReturns) {
  int ran = 0;
  EXPECT_TRUE(run_guarded("test", [&] { ++ran; }));
  EXPECT_EQ(ran, 1);
}

TEST(RunGuarded, SwallowsAnyExceptionAndSaysSo) {
  EXPECT_FALSE(run_guarded("test", [] { throw std::runtime_error("boom"); }));
  EXPECT_FALSE(run_guarded("test", [] { throw std::bad_alloc(); }));
  EXPECT_FALSE(run_guarded("test", [] { throw 42; }));
  // Messages that are not UTF-8 are logged, not thrown again.
  EXPECT_FALSE(run_guarded("test", [] { throw std::runtime_error("\xff\xfe"); }));
}

}  // namespace
}  // namespace aether
