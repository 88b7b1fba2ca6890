// InDoubtCommits against a real nats-server: a commit in doubt, published
// again before the actor's next commit, is stored at most once, and a
// second commit of the same version is refused.
#include <gtest/gtest.h>
#include <nats/nats.h>

#include "store/jetstream_doubt.hpp"
#include "support/child_process.hpp"
#include "support/nats_server.hpp"

namespace aether {
namespace {

class InDoubtCommitsTest : public testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(natsConnection_ConnectTo(&nc_, server_.url().c_str()), NATS_OK);
    ASSERT_EQ(natsConnection_JetStream(&js_, nc_, nullptr), NATS_OK);
    ASSERT_EQ(test::add_test_stream(js_, "DOUBT", "doubt.>"), NATS_OK);
  }
  void TearDown() override {
    jsCtx_Destroy(js_);
    natsConnection_Destroy(nc_);
  }

  // A commit as the store builds it: message id and expected subject sequence.
  static natsMsg* commit(const char* id, uint64_t expected) {
    natsMsg* m = nullptr;
    natsMsg_Create(&m, "doubt.a", nullptr, id, static_cast<int>(strlen(id)));
    natsMsgHeader_Set(m, "Nats-Msg-Id", id);
    natsMsgHeader_Set(m, "Nats-Expected-Last-Subject-Sequence", std::to_string(expected).c_str());
    return m;
  }
  void publish(const char* id, uint64_t expected) {
    natsMsg* m = commit(id, expected);
    ASSERT_EQ(js_PublishMsg(nullptr, js_, m, nullptr, nullptr), NATS_OK);
    natsMsg_Destroy(m);
  }
  uint64_t messages() {
    jsStreamInfo* si = nullptr;
    if (js_GetStreamInfo(&si, js_, "DOUBT", nullptr, nullptr) != NATS_OK) return ~0ull;
    const uint64_t n = si->State.Msgs;
    jsStreamInfo_Destroy(si);
    return n;
  }

  test::NatsServer server_;
  natsConnection* nc_ = nullptr;
  jsCtx* js_ = nullptr;
  InDoubtCommits doubt_;
};

TEST_F(InDoubtCommitsTest, NothingHeldIsSettled) {
  EXPECT_TRUE(doubt_.settle("doubt.a", js_, 1000).settled);
  EXPECT_EQ(messages(), 0u);
}

TEST_F(InDoubtCommitsTest, ACommitThatWasStoredIsNotStoredAgain) {
  publish("a.1", 0);  // stored; its acknowledgement was lost
  doubt_.hold(commit("a.1", 0));
  const auto d = doubt_.settle("doubt.a", js_, 2000);
  EXPECT_TRUE(d.settled);
  EXPECT_TRUE(d.stored);
  EXPECT_TRUE(d.duplicate);
  EXPECT_EQ(d.seq, 1u);
  ASSERT_NE(d.held, nullptr);
  EXPECT_STREQ(natsMsg_GetSubject(d.held.get()), "doubt.a");
  EXPECT_EQ(messages(), 1u);
  EXPECT_EQ(doubt_.size(), 0u);
}

TEST_F(InDoubtCommitsTest, ACommitThatWasNotStoredIsStoredOnce) {
  doubt_.hold(commit("a.1", 0));
  const auto d = doubt_.settle("doubt.a", js_, 2000);
  EXPECT_TRUE(d.settled);
  EXPECT_TRUE(d.stored);
  EXPECT_FALSE(d.duplicate);
  EXPECT_EQ(d.seq, 1u);
  EXPECT_EQ(messages(), 1u);
  EXPECT_TRUE(doubt_.settle("doubt.a", js_, 2000).settled);
  EXPECT_EQ(messages(), 1u);
}

TEST_F(InDoubtCommitsTest, AnotherCommitOfThatVersionSettlesItAsNotStored) {
  publish("other.1", 0);
  doubt_.hold(commit("a.1", 0));
  const auto d = doubt_.settle("doubt.a", js_, 2000);
  EXPECT_TRUE(d.settled);
  EXPECT_FALSE(d.stored);
  EXPECT_EQ(d.js_code, static_cast<int>(JSStreamWrongLastSequenceErr));
  EXPECT_EQ(messages(), 1u);
}

TEST_F(InDoubtCommitsTest, WithoutAnAnswerItStaysInDoubt) {
  doubt_.hold(commit("a.1", 0));
  {
    test::Paused paused(server_.pid());
    EXPECT_FALSE(doubt_.settle("doubt.a", js_, 300).settled);
  }
  EXPECT_EQ(doubt_.size(), 1u);
  // The server answers again: one copy, however many times it was sent.
  bool settled = false;
  for (int i = 0; i < 50 && !settled; ++i) settled = doubt_.settle("doubt.a", js_, 1000).settled;
  EXPECT_TRUE(settled);
  EXPECT_EQ(messages(), 1u);
}

}  // namespace
}  // namespace aether
