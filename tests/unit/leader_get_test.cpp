// leader_get_last (nats/connection.hpp): a leader read that takes the
// leader's answer over another member's claim that the stream has no
// leader. Every server of a stream's group may answer a
// $JS.API.STREAM.MSG.GET request, and a member back from a pause answers
// "JetStream system temporarily unavailable" (10008) at once, before the
// leader's answer; cnats' js_GetLastMsg takes that first answer.
//
// A real nats-server without JetStream, so that the API subject is
// answered only by the responders here: a "member" that
// claims there is no leader at once, and a "leader" that answers the
// message a little later (or not at all, or that it has none, or
// something that is not the API's answer).
#include <gtest/gtest.h>
#include <nats/nats.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "nats/connection.hpp"
#include "support/nats_server.hpp"

namespace aether {
namespace {

constexpr char kSubject[] = "$JS.API.STREAM.MSG.GET.S";
// base64 of "NATS/1.0\r\nAether-Last: 3\r\n\r\n" and of {"a":1}.
constexpr char kHdrs[] = "TkFUUy8xLjANCkFldGhlci1MYXN0OiAzDQoNCg==";
constexpr char kData[] = "eyJhIjoxfQ==";

natsConnection* raw_connect(const test::NatsServer& server) {
  natsOptions* o = nullptr;
  natsOptions_Create(&o);
  natsOptions_SetURL(o, server.url().c_str());
  natsConnection* nc = nullptr;
  natsConnection_Connect(&nc, o);
  natsOptions_Destroy(o);
  return nc;
}

// Answers every request on kSubject with `body` after `delay_ms`.
struct Responder {
  std::string body;
  int delay_ms = 0;
  natsConnection* nc = nullptr;
  natsSubscription* sub = nullptr;
  Responder(const test::NatsServer& server, std::string b, int delay) : body(std::move(b)), delay_ms(delay) {
    nc = raw_connect(server);
    natsConnection_Subscribe(
        &sub, nc, kSubject,
        [](natsConnection* c, natsSubscription*, natsMsg* m, void* closure) {
          auto* self = static_cast<Responder*>(closure);
          std::this_thread::sleep_for(std::chrono::milliseconds(self->delay_ms));
          natsConnection_Publish(c, natsMsg_GetReply(m), self->body.data(), static_cast<int>(self->body.size()));
          natsMsg_Destroy(m);
        },
        this);
    natsConnection_Flush(nc);
  }
  ~Responder() {
    natsSubscription_Destroy(sub);
    natsConnection_Destroy(nc);
  }
};

const std::string kNoLeader =
    R"({"type":"io.nats.jetstream.api.v1.stream_msg_get_response","error":{"code":503,"err_code":10008,"description":"JetStream system temporarily unavailable"}})";
const std::string kMessage = std::string(R"({"type":"io.nats.jetstream.api.v1.stream_msg_get_response","message":{"subject":"s.x","seq":7,"hdrs":")") +
                             kHdrs + R"(","data":")" + kData + R"(","time":"2026-11-29T00:00:00Z"}})";
const std::string kNone =
    R"({"type":"io.nats.jetstream.api.v1.stream_msg_get_response","error":{"code":404,"err_code":10037,"description":"no message found"}})";

std::unique_ptr<NatsConnection> client(const test::NatsServer& server) {
  NatsOptions o;
  o.servers = {server.url()};
  o.request_timeout_ms = 4000;  // the leader's answer is waited 1 s after a claim
  auto c = NatsConnection::connect(o);
  EXPECT_TRUE(c) << c.status().to_string();
  return c ? std::move(c).value() : nullptr;
}

TEST(LeaderGet, TheLeadersAnswerWinsOverAMembersClaimOfNoLeader) {
  test::NatsServer server("", /*jetstream=*/false);
  Responder member(server, kNoLeader, 0);
  Responder leader(server, kMessage, 200);
  auto conn = client(server);
  ASSERT_TRUE(conn);
  // cnats takes the first answer: the member's.
  natsMsg* first = nullptr;
  jsErrCode first_err = static_cast<jsErrCode>(0);
  EXPECT_NE(js_GetLastMsg(&first, conn->js(), "S", "s.x", nullptr, &first_err), NATS_OK);
  EXPECT_EQ(first_err, JSClusterNotAvailErr);
  natsMsg_Destroy(first);
  natsMsg* m = nullptr;
  uint64_t seq = 0;
  int err = -1;
  ASSERT_EQ(leader_get_last(*conn, "S", "s.x", &m, &seq, &err), NATS_OK) << err;
  EXPECT_EQ(err, 0);
  EXPECT_EQ(seq, 7u);
  EXPECT_STREQ(natsMsg_GetSubject(m), "s.x");
  EXPECT_EQ(std::string(natsMsg_GetData(m), static_cast<size_t>(natsMsg_GetDataLength(m))), R"({"a":1})");
  const char* last = nullptr;
  ASSERT_EQ(natsMsgHeader_Get(m, "Aether-Last", &last), NATS_OK);
  EXPECT_STREQ(last, "3");
  natsMsg_Destroy(m);
}

TEST(LeaderGet, WithoutALeaderTheClaimIsTheAnswer) {
  test::NatsServer server("", /*jetstream=*/false);
  Responder member(server, kNoLeader, 0);
  auto conn = client(server);
  ASSERT_TRUE(conn);
  natsMsg* m = nullptr;
  int err = 0;
  // The member's claim, not a timeout: the caller says "no leader".
  EXPECT_EQ(leader_get_last(*conn, "S", "s.x", &m, nullptr, &err), NATS_ERR);
  EXPECT_EQ(err, JSClusterNotAvailErr);
  EXPECT_EQ(m, nullptr);
}

TEST(LeaderGet, NoMessageAndNoResponders) {
  test::NatsServer server("", /*jetstream=*/false);
  auto conn = client(server);
  ASSERT_TRUE(conn);
  natsMsg* m = nullptr;
  EXPECT_EQ(leader_get_last(*conn, "S", "s.x", &m, nullptr, nullptr), NATS_NO_RESPONDERS);
  Responder leader(server, kNone, 0);
  int err = 0;
  EXPECT_EQ(leader_get_last(*conn, "S", "s.x", &m, nullptr, &err), NATS_NOT_FOUND);
  EXPECT_EQ(err, JSNoMessageFoundErr);
  EXPECT_EQ(m, nullptr);
}

// Answers of the wrong shape (types, values, encodings) are failed reads,
// never an exception on the store's thread.
TEST(LeaderGet, AnswersOfTheWrongShapeAreFailedReads) {
  test::NatsServer server("", /*jetstream=*/false);
  auto conn = client(server);
  ASSERT_TRUE(conn);
  const std::string head = R"({"type":"io.nats.jetstream.api.v1.stream_msg_get_response",)";
  const std::vector<std::string> bodies = {
      "not json",
      "[]",
      head + R"("error":{"code":"x","err_code":"10008"}})",
      head + R"("error":{"code":503,"err_code":-1}})",
      head + R"("message":{"subject":null,"seq":7,"data":"eyJhIjoxfQ=="}})",
      head + R"("message":{"subject":"s.x","seq":"7","data":"eyJhIjoxfQ=="}})",
      head + R"("message":{"subject":"s.x","seq":-7,"data":"eyJhIjoxfQ=="}})",
      head + R"("message":{"subject":"s.x","seq":0,"data":"eyJhIjoxfQ=="}})",
      head + R"("message":{"subject":"s.x","seq":7,"data":"***"}})",
      head + R"("message":{"subject":"s.x","seq":7,"data":"eyJhIjoxfQ==","hdrs":"bm90IGEgaGVhZGVy"}})",
      head + R"("message":{"subject":"s.x","seq":7,"data":["eyJhIjoxfQ=="]}})",
  };
  for (const std::string& body : bodies) {
    SCOPED_TRACE(body);
    Responder leader(server, body, 0);
    natsMsg* m = nullptr;
    uint64_t seq = 0;
    int err = 0;
    int s = NATS_OK;
    EXPECT_NO_THROW(s = leader_get_last(*conn, "S", "s.x", &m, &seq, &err));
    EXPECT_EQ(s, NATS_ERR);
    EXPECT_EQ(m, nullptr);
    natsMsg_Destroy(m);
  }
}

}  // namespace
}  // namespace aether
