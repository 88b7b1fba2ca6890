// One commit format on aether.<ns>.events.<type>.<id>: every backend makes
// each commit visible as exactly one message, the bytes encode_commit writes
// (store/commit_codec.hpp): the sqlite outbox relay and JetStream on NATS,
// seen by a raw cnats subscriber and, the same bytes, by the host's NATS bus;
// memory and sqlite without NATS on the local bus, in process.
#include <gtest/gtest.h>
#include <nats/nats.h>
#include <sqlite3.h>

#include <condition_variable>
#include <mutex>
#include <vector>

#include "bus/bus.hpp"
#include "bus/nats_bus.hpp"
#include "core/subjects.hpp"
#include "nats/connection.hpp"
#include "store/commit_codec.hpp"
#include "store/jetstream_store.hpp"
#include "store/store.hpp"
#include "support/nats_connect.hpp"
#include "support/nats_server.hpp"
#include "support/temp_dir.hpp"

namespace aether {
namespace {

// The commits the tests append: two actors, one commit of two events.
std::vector<AppendRequest> commits() {
  std::vector<AppendRequest> out;
  auto add = [&](const std::string& id, uint64_t expected, std::vector<NewEvent> events) {
    AppendRequest r;
    r.key = {"default", "Counter", id};
    r.expected_version = expected;
    r.events = std::move(events);
    r.timestamp_ms = 1700000000000 + static_cast<int64_t>(out.size());
    out.push_back(std::move(r));
  };
  add("a", 0, {{"Incremented", R"({"by":1})"}});
  add("b", 0, {{"Incremented", R"({"by":2})"}, {"Incremented", R"({"by":"two \"2\""})"}});
  add("a", 1, {{"Incremented", "{}"}});
  add("b", 2, {{"Reset", R"({"note":"é"})"}});
  return out;
}

// What a bus subscriber received, in order.
struct Collected {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<Message> messages;
  MessageHandler handler() {
    return [this](const Message& m) {
      std::lock_guard lock(mu);
      messages.push_back(m);
      cv.notify_all();
    };
  }
  std::vector<Message> wait_for(size_t n) {
    std::unique_lock lock(mu);
    cv.wait_for(lock, std::chrono::seconds(30), [&] { return messages.size() >= n; });
    return messages;
  }
};

// Appends every commit; returns the first version each got.
std::vector<uint64_t> append_all(Journal& store, const std::vector<AppendRequest>& reqs) {
  std::vector<uint64_t> first;
  for (const auto& r : reqs) {
    const AppendResult res = store.append_sync(r);
    EXPECT_TRUE(res.status.is_ok()) << res.status.to_string();
    first.push_back(res.first_version);
  }
  return first;
}

// `got[i]` is exactly the encoding of commit i: subject, and bytes given the
// commit id and node the store chose.
void expect_one_format(const std::vector<Message>& got, const std::vector<AppendRequest>& reqs,
                       const std::vector<uint64_t>& first, const std::string& node) {
  ASSERT_EQ(got.size(), reqs.size()) << "one message per commit";
  for (size_t i = 0; i < reqs.size(); ++i) {
    EXPECT_EQ(got[i].subject, subjects::events(reqs[i].key));
    const auto c = decode_commit_summary(got[i].data);
    ASSERT_TRUE(c.has_value()) << got[i].data;
    EXPECT_EQ(c->node, node);
    EXPECT_EQ(got[i].data, encode_commit(reqs[i], first[i], c->commit_id, node));
  }
}

// A subscriber of its own connection, as any NATS client would be.
class RawSubscriber {
 public:
  explicit RawSubscriber(const std::string& url) {
    EXPECT_EQ(natsConnection_ConnectTo(&nc_, url.c_str()), NATS_OK);
    EXPECT_EQ(natsConnection_SubscribeSync(&sub_, nc_, "aether.default.events.>"), NATS_OK);
    natsConnection_Flush(nc_);
  }
  ~RawSubscriber() {
    natsSubscription_Destroy(sub_);
    natsConnection_Destroy(nc_);
  }
  // Up to `n` messages, each waited for up to 10 s; then checks that no
  // further one arrives within a short grace period.
  std::vector<Message> take(size_t n, bool& extra) {
    std::vector<Message> out;
    for (natsMsg* m = nullptr; out.size() < n && natsSubscription_NextMsg(&m, sub_, 10000) == NATS_OK;) {
      out.push_back({natsMsg_GetSubject(m), std::string(natsMsg_GetData(m), natsMsg_GetDataLength(m))});
      natsMsg_Destroy(m);
    }
    natsMsg* more = nullptr;
    extra = natsSubscription_NextMsg(&more, sub_, 300) == NATS_OK;
    if (more != nullptr) natsMsg_Destroy(more);
    return out;
  }

 private:
  natsConnection* nc_ = nullptr;
  natsSubscription* sub_ = nullptr;
};

// Appends the commits to `store` and checks what NATS carried.
void check_nats(const test::NatsServer& server, NatsConnection& conn, Journal& store, const std::string& node) {
  RawSubscriber raw(server.url());
  NatsBus bus(conn);
  Collected in_process;
  auto sub = bus.subscribe("aether.default.events.>", in_process.handler());
  natsConnection_Flush(conn.nc());
  const auto reqs = commits();
  const auto first = append_all(store, reqs);
  bool extra = false;
  const auto seen = raw.take(reqs.size(), extra);
  expect_one_format(seen, reqs, first, node);
  EXPECT_FALSE(extra) << "a message beyond one per commit";
  const auto delivered = in_process.wait_for(reqs.size());
  ASSERT_EQ(delivered.size(), seen.size());
  for (size_t i = 0; i < seen.size(); ++i) EXPECT_EQ(delivered[i].data, seen[i].data) << "commit " << i;
}

// A sqlite store with an outbox, relayed to a fresh NATS server.
struct OutboxFixture {
  test::TempDir dir;
  test::NatsServer server;
  std::unique_ptr<NatsConnection> conn = test::connect(server);
  SqliteOptions options;
  std::unique_ptr<Journal> store;

  explicit OutboxFixture(const std::string& node) {
    options.path = dir.file("aether.db");
    options.outbox = true;
    options.relay = conn.get();
    options.node_id = node;
    if (!conn) return;
    auto s = open_sqlite_store(options);
    EXPECT_TRUE(s.is_ok()) << s.status().to_string();
    if (s) store = std::move(s).value();
  }
};

TEST(CommitBroadcast, SqliteOutboxPublishesOneMessagePerCommit) {
  OutboxFixture f("node-s");
  ASSERT_TRUE(f.store);
  check_nats(f.server, *f.conn, *f.store, "node-s");
}

// Rows left in the outbox table of the sqlite file at `path`.
int64_t outbox_rows(const std::string& path) {
  sqlite3* db = nullptr;
  int64_t n = -1;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK) {
    sqlite3_stmt* st = nullptr;
    if (sqlite3_prepare_v2(db, "SELECT COUNT(*) FROM outbox", -1, &st, nullptr) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW) {
      n = sqlite3_column_int64(st, 0);
    }
    sqlite3_finalize(st);
  }
  sqlite3_close(db);
  return n;
}

// flush() returns once the relay has published every commit made before it
// (the host's shutdown relies on it): the outbox is empty then, repeatedly.
TEST(CommitBroadcast, SqliteFlushReturnsOnceTheOutboxIsPublished) {
  OutboxFixture f("node-f");
  ASSERT_TRUE(f.store);
  for (int round = 0; round < 20; ++round) {
    AppendRequest r;
    r.key = {"default", "Counter", "f" + std::to_string(round)};
    r.events = {{"Incremented", "{}"}, {"Incremented", "{}"}};
    ASSERT_TRUE(f.store->append_sync(r).status.is_ok());
    ASSERT_TRUE(f.store->flush().is_ok()) << "round " << round;
    EXPECT_EQ(outbox_rows(f.options.path), 0) << "round " << round;
  }
}

TEST(CommitBroadcast, JetStreamPublishesOneMessagePerCommit) {
  test::NatsServer server;
  auto conn = test::connect(server);
  ASSERT_TRUE(conn);
  JetStreamOptions o;
  o.node_id = "node-j";
  auto store = open_jetstream_store(*conn, o);
  ASSERT_TRUE(store.is_ok()) << store.status().to_string();
  check_nats(server, *conn, **store, "node-j");
}

// Without NATS: the local bus delivers the same format in process.
void check_local(Bus& bus, Journal& store, const std::string& node) {
  Collected got;
  auto sub = bus.subscribe("aether.default.events.>", got.handler());
  const auto reqs = commits();
  const auto first = append_all(store, reqs);
  expect_one_format(got.wait_for(reqs.size()), reqs, first, node);
}

TEST(CommitBroadcast, MemoryPublishesOneMessagePerCommitOnTheLocalBus) {
  auto bus = make_local_bus();
  auto store = make_memory_store(bus.get(), "node-m");
  check_local(*bus, *store, "node-m");
}

TEST(CommitBroadcast, SqliteWithoutNatsPublishesOneMessagePerCommitOnTheLocalBus) {
  test::TempDir dir;
  auto bus = make_local_bus();
  SqliteOptions o;
  o.path = dir.file("aether.db");
  o.node_id = "node-l";
  o.broadcast = bus.get();
  auto store = open_sqlite_store(o);
  ASSERT_TRUE(store.is_ok()) << store.status().to_string();
  check_local(*bus, **store, "node-l");
}

}  // namespace
}  // namespace aether
