// The JetStream store on a 3-server NATS cluster:
// - reads that decide correctness (an actor's tip version, "is this actor
//   new", an idempotency key) on replicated streams see everything the
//   leader acknowledged, also through a server whose replica lags: a
//   follower is paused (SIGSTOP) while commits continue through another
//   server, resumed, and the lookups go through it at once;
// - two writers racing for the versions of one actor store one commit per
//   version;
// - a failure says precisely what failed (docs/api.md): the connection is
//   lost, the stream has no leader, a lookup timed out, a publish was not
//   acknowledged, and whether the command may have been applied.
#include <gtest/gtest.h>
#include <httplib.h>
#include <nats/nats.h>
#include <signal.h>

#include <atomic>
#include <chrono>
#include <future>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "core/subjects.hpp"
#include "nats/connection.hpp"
#include "store/jetstream_store.hpp"
#include "support/nats_cluster.hpp"
#include "support/wait.hpp"

namespace aether {
namespace {

using test::NatsCluster;
using test::Paused;

constexpr char kPrefix[] = "LAG_";
constexpr int kActors = 24;
constexpr int kRounds = 3;

std::unique_ptr<NatsConnection> connect_to(const std::string& url, int64_t request_timeout_ms = 2000) {
  NatsOptions o;
  o.servers = {url};
  o.request_timeout_ms = request_timeout_ms;
  auto c = NatsConnection::connect(o);
  if (!c) ADD_FAILURE() << c.status().to_string();
  return c ? std::move(c).value() : nullptr;
}

std::unique_ptr<Journal> open_store(NatsConnection& conn, const std::string& node, int replicas = 3) {
  JetStreamOptions o;
  o.stream_prefix = kPrefix;
  o.replicas = replicas;
  o.node_id = node;
  o.publishers = 8;
  auto s = open_jetstream_store(conn, o);
  if (!s) ADD_FAILURE() << s.status().to_string();
  return s ? std::move(s).value() : nullptr;
}

// The server name ("s1".."s3") leading `stream`, waiting (bounded) for
// one; "" when none answers.
std::string leader_of(NatsConnection& conn, const std::string& stream) {
  for (int i = 0; i < 100; ++i) {
    jsStreamInfo* si = nullptr;
    std::string out;
    if (js_GetStreamInfo(&si, conn.js(), stream.c_str(), nullptr, nullptr) == NATS_OK && si->Cluster != nullptr &&
        si->Cluster->Leader != nullptr) {
      out = si->Cluster->Leader;
    }
    jsStreamInfo_Destroy(si);
    if (!out.empty()) return out;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return "";
}

// The index of the server leading `stream` (-1: none).
int leader_index(NatsConnection& conn, const std::string& stream) {
  const std::string l = leader_of(conn, stream);
  return l.size() == 2 ? l[1] - '1' : -1;
}

// A 3-server cluster with the streams made through the first server.
struct StreamsSetup {
  explicit StreamsSetup(int replicas = 3, bool monitor = false) : cluster(3, monitor) {
    ready = cluster.wait_ready(60, &why);
    if (!ready) return;
    // Creating a stream of 3 replicas (a meta-group proposal, then the
    // stream's own group) can take seconds on a loaded machine.
    conn = connect_to(cluster.server(0).url(), 10000);
    if (conn) store = open_store(*conn, "setup", replicas);
    ready = store != nullptr;
    if (!ready) why = "the store could not be opened";
  }
  NatsCluster cluster;
  bool ready = false;
  std::string why;  // what was not ready
  std::unique_ptr<NatsConnection> conn;
  std::unique_ptr<Journal> store;
};

Status append_sync(Journal& store, const AppendRequest& req) {
  std::promise<Status> p;
  store.append(req, [&p](AppendResult r) { p.set_value(r.status); });
  return p.get_future().get();
}

std::string key_of(int round, int actor) { return "k-" + std::to_string(round) + "-" + std::to_string(actor); }

TEST(LaggingReplica, LookupsThroughAResumedFollowerMissNoAcknowledgedCommit) {
  // The streams, from the first server; then a server that leads neither
  // the events stream nor the key bucket: the one to pause.
  StreamsSetup setup;
  ASSERT_TRUE(setup.ready) << setup.why;
  NatsCluster& cluster = setup.cluster;
  std::set<std::string> leaders;
  for (const std::string& stream : {std::string(kPrefix) + "default", std::string("KV_") + kPrefix + "default_IDEM"}) {
    const std::string l = leader_of(*setup.conn, stream);
    ASSERT_FALSE(l.empty()) << "no leader for " << stream;
    leaders.insert(l);
  }
  size_t lagging = 0, writing = 0;
  for (size_t i = 0; i < cluster.size(); ++i) {
    if (leaders.count("s" + std::to_string(i + 1)) == 0) lagging = i;
  }
  writing = (lagging + 1) % cluster.size();
  auto writer_conn = connect_to(cluster.server(writing).url());
  auto reader_conn = connect_to(cluster.server(lagging).url());
  ASSERT_TRUE(writer_conn && reader_conn);
  auto writer = open_store(*writer_conn, "writer");
  auto reader = open_store(*reader_conn, "reader");
  ASSERT_TRUE(writer && reader);

  std::vector<uint64_t> versions(kActors, 0);
  const auto actor = [](int a) { return ActorKey{"default", "Counter", "lag-" + std::to_string(a)}; };
  for (int round = 0; round < kRounds; ++round) {
    {
      Paused paused(cluster.server(lagging).pid());
      for (int a = 0; a < kActors; ++a) {
        AppendRequest req;
        req.key = actor(a);
        req.expected_version = versions[static_cast<size_t>(a)];
        req.events = {{"Incremented", R"({"by":1})"}};
        req.idempotency_key = key_of(round, a);
        req.command_digest = "d";
        Status s = append_sync(*writer, req);
        ASSERT_TRUE(s) << s.to_string();
        ++versions[static_cast<size_t>(a)];
      }
      ASSERT_TRUE(writer->flush());
      // The key cache is written after each ack: wait (bounded) until the
      // leader holds every key of this round.
      for (int a = 0; a < kActors; ++a) {
        Result<std::optional<IdempotentCommit>> hit = std::optional<IdempotentCommit>();
        test::eventually(
            [&] {
              hit = writer->find_idempotent(actor(a), key_of(round, a));
              return hit && hit->has_value();
            },
            test::kWaitSeconds, 25);
        ASSERT_TRUE(hit && hit->has_value()) << "key " << key_of(round, a) << " never recorded";
      }
    }  // resumed: its replicas now lag behind the leaders
    int missed = 0;
    std::string detail;
    for (int a = 0; a < kActors; ++a) {
      auto v = reader->latest_version(actor(a));
      ASSERT_TRUE(v) << v.status().to_string();
      if (*v != versions[static_cast<size_t>(a)]) {
        ++missed;
        detail += " tip of " + actor(a).id + " read as " + std::to_string(*v);
      }
      auto hit = reader->find_idempotent(actor(a), key_of(round, a));
      ASSERT_TRUE(hit) << hit.status().to_string();
      if (!hit->has_value()) {
        ++missed;
        detail += " key " + key_of(round, a) + " not found";
      }
    }
    EXPECT_EQ(missed, 0) << "round " << round << ":" << detail;
  }
}

// Two writers of one actor, each with its own idempotency keys, racing
// for the same versions on a replicated stream (one commits two events at
// a time, the other one): the stream keeps one commit per version. nats-server 2.9 checks an expected last subject
// sequence before the proposal, against what the leader has applied (its
// issue 4320): two publishes in its pipeline with the same expected
// sequence would both be stored. The journal's fence is the message id of
// a commit, its first version, which the server deduplicates as it applies.
TEST(RacingWriters, TwoWritersOfOneVersionStoreOneCommit) {
  StreamsSetup setup;
  ASSERT_TRUE(setup.ready) << setup.why;
  NatsCluster& cluster = setup.cluster;
  const int leader = leader_index(*setup.conn, std::string(kPrefix) + "default");
  ASSERT_GE(leader, 0);
  // Both writers through the leader's server: the publishes meet in its
  // pipeline with the least time between them.
  auto conn_a = connect_to(cluster.server(static_cast<size_t>(leader)).url());
  auto conn_b = connect_to(cluster.server(static_cast<size_t>(leader)).url());
  ASSERT_TRUE(conn_a && conn_b);
  auto a = open_store(*conn_a, "writer-a");
  auto b = open_store(*conn_b, "writer-b");
  ASSERT_TRUE(a && b);
  constexpr int kRaceActors = 8;
  constexpr int kAttempts = 150;  // per writer and actor
  std::atomic<uint64_t> acked{0};  // events of acknowledged appends
  const auto actor = [](int i) { return ActorKey{"default", "Counter", "race-" + std::to_string(i)}; };
  const auto write = [&](Journal& store, const std::string& name, size_t events) {
    std::vector<uint64_t> known(kRaceActors, 0);
    for (int n = 0; n < kAttempts; ++n) {
      // Every actor at once: one append in flight per actor and writer.
      std::vector<AppendRequest> reqs(kRaceActors);
      std::vector<std::promise<AppendResult>> done(kRaceActors);
      for (int i = 0; i < kRaceActors; ++i) {
        auto& req = reqs[static_cast<size_t>(i)];
        req.key = actor(i);
        req.expected_version = known[static_cast<size_t>(i)];
        req.events.assign(events, NewEvent{"Incremented", R"({"by":1})"});
        req.idempotency_key = name + "-" + std::to_string(i) + "-" + std::to_string(n);
        req.command_digest = "d";
        store.append(req, [&done, i](AppendResult r) { done[static_cast<size_t>(i)].set_value(std::move(r)); });
      }
      for (int i = 0; i < kRaceActors; ++i) {
        AppendResult r = done[static_cast<size_t>(i)].get_future().get();
        if (r.status) {
          known[static_cast<size_t>(i)] = r.version;
          acked += r.version - r.first_version + 1;
        } else if (r.status.code() == StatusCode::kConflict) {
          known[static_cast<size_t>(i)] = r.current_version;
        } else {
          auto v = store.latest_version(actor(i));
          if (v) known[static_cast<size_t>(i)] = *v;
        }
      }
    }
  };
  std::thread ta([&] { write(*a, "a", 2); });
  std::thread tb([&] { write(*b, "b", 1); });
  ta.join();
  tb.join();
  ASSERT_GT(acked.load(), 0u);
  // Every version once, read through a third connection.
  uint64_t total = 0;
  for (int i = 0; i < kRaceActors; ++i) {
    uint64_t expect = 1;
    Status s = setup.store->read(actor(i), 1, 1000000, [&](const StoredEvent& e) {
      EXPECT_EQ(e.version, expect);
      ++expect;
      return Status::ok();
    });
    EXPECT_TRUE(s) << actor(i).id << ": " << s.to_string();
    total += expect - 1;
  }
  // The acknowledged appends' events are the streams' events: none stored beside them.
  EXPECT_EQ(total, acked.load());
}

Status append_one(Journal& store, const ActorKey& key, uint64_t expected) {
  AppendRequest req;
  req.key = key;
  req.expected_version = expected;
  req.events = {{"Incremented", R"({"by":1})"}};
  return append_sync(store, req);
}

std::string why(const Status& s) { return s.to_string() + " [cause " + s.cause() + "]"; }

// A follower paused for longer than its election timeout and resumed may
// depose the leader of a group it follows (nats-server 2.9 has no pre-vote:
// its candidacy's higher term ends the leader's): for seconds, no server
// answers for the stream, leader reads through any server get "JetStream
// system temporarily unavailable" (10008). A lookup then fails, says that
// the stream has no leader (or that the lookup timed out while one is
// elected) and that nothing was applied, and never answers an old version;
// once a leader is back, lookups answer the acknowledged one.
TEST(LaggingReplica, AFollowerResumedAfterALongPauseLeavesLookupsRightOrPreciselyFailed) {
  StreamsSetup setup;
  ASSERT_TRUE(setup.ready) << setup.why;
  NatsCluster& cluster = setup.cluster;
  const std::string stream = std::string(kPrefix) + "default";
  const std::string leader = leader_of(*setup.conn, stream);
  ASSERT_FALSE(leader.empty()) << "no leader for " << stream;
  const size_t lagging = (static_cast<size_t>(leader[1] - '1') + 1) % cluster.size();
  auto writer_conn = connect_to(cluster.server((lagging + 1) % cluster.size()).url());
  auto reader_conn = connect_to(cluster.server(lagging).url());
  ASSERT_TRUE(writer_conn && reader_conn);
  auto writer = open_store(*writer_conn, "writer");
  auto reader = open_store(*reader_conn, "reader");
  ASSERT_TRUE(writer && reader);
  constexpr int kLongActors = 8;
  const auto actor = [](int a) { return ActorKey{"default", "Counter", "long-" + std::to_string(a)}; };
  for (int a = 0; a < kLongActors; ++a) ASSERT_TRUE(append_one(*writer, actor(a), 0));
  {
    Paused paused(cluster.server(lagging).pid());
    for (int a = 0; a < kLongActors; ++a) ASSERT_TRUE(append_one(*writer, actor(a), 1));
    // As long as the fault suite's pauses: longer than the followers'
    // election timeout, shorter than the routes' write deadline.
    std::this_thread::sleep_for(std::chrono::seconds(6));
  }
  // Through the resumed server, at once, until every actor was read right
  // once a leader is back (bounded).
  int no_leader = 0, wrong = 0, other = 0, right_in_a_row = 0;
  std::string detail;
  const auto resumed = std::chrono::steady_clock::now();
  const auto until = resumed + std::chrono::seconds(30);
  while (right_in_a_row < kLongActors && std::chrono::steady_clock::now() < until) {
    for (int a = 0; a < kLongActors; ++a) {
      auto v = reader->latest_version(actor(a));
      if (v) {
        right_in_a_row = *v == 2 ? right_in_a_row + 1 : 0;
        if (*v != 2) ++wrong;
        continue;
      }
      right_in_a_row = 0;
      // No leader, or one elected but not answering yet: either said so.
      const std::string cause = v.status().cause();
      if ((cause == "stream_no_leader" || cause == "lookup_timeout") && v.status().applied() == Applied::kNo) {
        ++no_leader;
      } else if (other++ == 0) {
        detail = why(v.status());
      }
    }
    if (right_in_a_row < kLongActors) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  std::printf("lookups through the resumed server: %d answered that the stream has no leader; all right %.1f s "
              "after the resume\n",
              no_leader, std::chrono::duration<double>(std::chrono::steady_clock::now() - resumed).count());
  EXPECT_EQ(wrong, 0) << "a lookup answered a version the leader had replaced";
  EXPECT_EQ(other, 0) << "first: " << detail;
  EXPECT_GE(right_in_a_row, kLongActors) << "no lookup succeeded within 30 s of the resume";
}

// The meta group's leader ("s1".."s3") as server `via`'s monitoring port
// tells (/jsz); "" when it does not answer.
std::string meta_leader(NatsCluster& cluster, size_t via) {
  httplib::Client c("127.0.0.1", cluster.monitor_port(via));
  c.set_read_timeout(2, 0);
  const auto r = c.Get("/jsz");
  if (!r || r->status != 200) return "";
  const auto j = nlohmann::json::parse(r->body, nullptr, false);
  if (!j.is_object() || !j.contains("meta_cluster") || !j["meta_cluster"].is_object()) return "";
  const auto& mc = j["meta_cluster"];
  return mc.contains("leader") && mc["leader"].is_string() ? mc["leader"].get<std::string>() : "";
}

void step_down(NatsConnection& conn, const std::string& stream) {
  natsMsg* reply = nullptr;
  const std::string subject = "$JS.API.STREAM.LEADER.STEPDOWN." + stream;
  natsConnection_RequestString(&reply, conn.nc(), subject.c_str(), "", 5000);
  natsMsg_Destroy(reply);
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
}

// The meta group's leader away (paused) does not stop an actor's
// activation: a short history is read from the events stream's leader, a
// "next by subject" get a commit. A consumer, which the meta leader makes,
// would wait for a new meta leader, and the read would fail meanwhile.
TEST(MetaLeaderAway, AnActorsHistoryIsReadFromTheStreamLeaderAlone) {
  StreamsSetup setup(3, /*monitor=*/true);
  ASSERT_TRUE(setup.ready) << setup.why;
  NatsCluster& cluster = setup.cluster;
  const std::string events = std::string(kPrefix) + "default";
  const ActorKey key{"default", "Counter", "history"};
  for (uint64_t v = 0; v < 5; ++v) ASSERT_TRUE(append_one(*setup.store, key, v));
  std::string meta;
  for (int i = 0; i < 50 && meta.size() != 2; ++i) {
    meta = meta_leader(cluster, static_cast<size_t>(i) % cluster.size());
    if (meta.size() != 2) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_EQ(meta.size(), 2u) << "no server named the meta leader";
  for (int i = 0; i < 10 && leader_of(*setup.conn, events) == meta; ++i) step_down(*setup.conn, events);
  const std::string stream_leader = leader_of(*setup.conn, events);
  ASSERT_FALSE(stream_leader.empty()) << "the events stream has no leader";
  ASSERT_NE(stream_leader, meta) << "the events stream's leader stayed on the meta leader";
  // A reader that never saw the actor, on a server that stays up.
  const size_t away = static_cast<size_t>(meta[1] - '1');
  auto conn = connect_to(cluster.server((away + 1) % cluster.size()).url(), 2000);
  ASSERT_TRUE(conn);
  auto reader = open_store(*conn, "reader");
  ASSERT_TRUE(reader);
  std::vector<uint64_t> versions;
  Status read;
  // Still the meta leader (the step-downs may have moved it), or the test
  // would pause a follower of the meta group and prove nothing.
  ASSERT_EQ(meta_leader(cluster, (away + 1) % cluster.size()), meta) << "the meta leader moved";
  {
    test::Paused paused(cluster.server(away).pid());
    read = reader->read(key, 1, 100, [&](const StoredEvent& e) {
      versions.push_back(e.version);
      return Status::ok();
    });
  }
  ASSERT_TRUE(read) << why(read);
  EXPECT_EQ(versions, (std::vector<uint64_t>{1, 2, 3, 4, 5}));
}

// A paused stream leader: a lookup times out (and says so, not "NATS is
// not connected"); a publish is not acknowledged and may have been stored.
TEST(StoreErrors, APausedLeaderTimesOutLookupsAndLeavesPublishesUnacknowledged) {
  StreamsSetup setup;
  ASSERT_TRUE(setup.ready) << setup.why;
  NatsCluster& cluster = setup.cluster;
  ASSERT_TRUE(append_one(*setup.store, ActorKey{"default", "Counter", "known"}, 0));
  // A fresh stream's leadership may still move: when the lookup succeeds
  // anyway, the paused server was no longer the leader; again (bounded).
  Result<uint64_t> tip = uint64_t{0};
  Status pub;
  for (int attempt = 0; attempt < 5 && tip; ++attempt) {
    const int leader = leader_index(*setup.conn, std::string(kPrefix) + "default");
    ASSERT_GE(leader, 0);
    const size_t via = (static_cast<size_t>(leader) + 1) % cluster.size();
    auto conn = connect_to(cluster.server(via).url(), 500);
    ASSERT_TRUE(conn);
    auto store = open_store(*conn, "client");
    ASSERT_TRUE(store);
    Paused paused(cluster.server(static_cast<size_t>(leader)).pid());
    tip = store->latest_version(ActorKey{"default", "Counter", "other-" + std::to_string(attempt)});
    // Version 0 needs no lookup: straight to the publish.
    if (!tip) pub = append_one(*store, ActorKey{"default", "Counter", "fresh"}, 0);
  }
  ASSERT_FALSE(tip);
  EXPECT_EQ(tip.status().cause(), "lookup_timeout") << why(tip.status());
  EXPECT_EQ(tip.status().applied(), Applied::kNo);
  EXPECT_NE(tip.status().message().find("timed out"), std::string::npos) << why(tip.status());
  ASSERT_FALSE(pub);
  EXPECT_EQ(pub.cause(), "publish_not_acknowledged") << why(pub);
  EXPECT_EQ(pub.applied(), Applied::kMaybe);
}

// The only server of a single-replica stream is gone while the client's
// server is up: nobody serves the stream.
TEST(StoreErrors, AStreamWhoseServersAreGoneHasNoLeader) {
  StreamsSetup setup(1);
  ASSERT_TRUE(setup.ready) << setup.why;
  NatsCluster& cluster = setup.cluster;
  const int leader = leader_index(*setup.conn, std::string(kPrefix) + "default");
  ASSERT_GE(leader, 0);
  // The client talks to a server that does not hold the stream.
  const size_t holder = static_cast<size_t>(leader);
  auto conn = connect_to(cluster.server((holder + 1) % cluster.size()).url(), 1000);
  ASSERT_TRUE(conn);
  auto store = open_store(*conn, "client", 1);
  ASSERT_TRUE(store);
  ASSERT_TRUE(append_one(*store, ActorKey{"default", "Counter", "a"}, 0));
  cluster.server(holder).kill9();
  Status last;
  // Bounded: the routes notice the lost server within a few seconds.
  for (int i = 0; i < 40; ++i) {
    last = append_one(*store, ActorKey{"default", "Counter", "b-" + std::to_string(i)}, 0);
    if (!last && last.cause() == "stream_no_leader") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
  ASSERT_FALSE(last);
  EXPECT_EQ(last.cause(), "stream_no_leader") << why(last);
  EXPECT_EQ(last.applied(), Applied::kNo);
}

TEST(StoreErrors, ALostConnectionSaysSoAndNothingWasApplied) {
  test::NatsServer server;
  auto conn = connect_to(server.url(), 500);
  ASSERT_TRUE(conn);
  auto store = open_store(*conn, "client", 1);
  ASSERT_TRUE(store);
  ASSERT_TRUE(append_one(*store, ActorKey{"default", "Counter", "a"}, 0));
  server.kill9();
  // A publish written before the client noticed the loss may have reached the
  // server (applied: maybe); once the client knows, every append is refused
  // with a definite "not applied".
  Status last;
  for (int i = 0; i < 40; ++i) {
    last = append_one(*store, ActorKey{"default", "Counter", "a"}, 1);
    if (last.cause() == "nats_disconnected" && last.applied() == Applied::kNo) break;
    ASSERT_FALSE(last) << "an append succeeded after the server was killed";
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(last.cause(), "nats_disconnected") << why(last);
  EXPECT_EQ(last.applied(), Applied::kNo);
}

// Appends `key`'s first commit on `store` without waiting; the result
// comes through the future.
std::future<AppendResult> append_first(Journal& store, const ActorKey& key, AppendRequest& req) {
  req.key = key;
  req.expected_version = 0;
  req.events = {{"Incremented", R"({"by":1})"}};
  auto p = std::make_shared<std::promise<AppendResult>>();
  store.append(req, [p](AppendResult r) { p->set_value(std::move(r)); });
  return p->get_future();
}

// The versions `store` reads of `key`, or the read's error.
std::string versions_of(Journal& store, const ActorKey& key) {
  std::string out;
  const Status s = store.read(key, 1, 100, [&](const StoredEvent& e) {
    out += (out.empty() ? "" : ",") + std::to_string(e.version);
    return Status::ok();
  });
  return s ? out : why(s);
}

// A client's store on a server other than the events stream's leader.
struct BesideTheLeader {
  BesideTheLeader(StreamsSetup& setup, int64_t request_timeout_ms)
      : leader(leader_index(*setup.conn, std::string(kPrefix) + "default")) {
    if (leader < 0) return;
    const size_t via = (static_cast<size_t>(leader) + 1) % setup.cluster.size();
    conn = connect_to(setup.cluster.server(via).url(), request_timeout_ms);
    if (conn) store = open_store(*conn, "client");
  }
  const int leader;
  std::unique_ptr<NatsConnection> conn;
  std::unique_ptr<Journal> store;
};

// A publish that reached the stream's leader just before the leader died
// is never answered. The commit is sent again each second (a send's wait)
// while nats.request_timeout lasts, and the leader elected meanwhile
// stores it, once. (A single send would wait out the whole timeout and
// answer "may or may not be stored".)
TEST(PublishSentAgain, ACommitLostWithItsLeaderIsStoredByTheNextLeader) {
  StreamsSetup setup;
  ASSERT_TRUE(setup.ready) << setup.why;
  // Long enough for the followers' election (their timeout is 4-9 s on
  // nats-server 2.10) and a send after it.
  BesideTheLeader client(setup, 25000);
  ASSERT_GE(client.leader, 0);
  ASSERT_TRUE(client.store);
  test::NatsServer& leader = setup.cluster.server(static_cast<size_t>(client.leader));
  Journal& store = *client.store;
  const ActorKey key{"default", "Counter", "lost-with-its-leader"};
  AppendRequest req;
  std::future<AppendResult> result;
  {
    // Stopped first, so that the publish (version 0: no lookup before it)
    // waits in its socket, and dies with it.
    Paused paused(leader.pid());
    result = append_first(store, key, req);
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    leader.kill9();
    paused.pid = -1;  // gone: nothing to resume
  }
  ASSERT_EQ(result.wait_for(std::chrono::seconds(40)), std::future_status::ready);
  const AppendResult r = result.get();
  ASSERT_TRUE(r.status) << why(r.status);
  EXPECT_EQ(r.version, 1u);
  EXPECT_FALSE(r.duplicate);
  EXPECT_EQ(versions_of(store, key), "1");
}

// A leader that stalls for longer than a send's wait, then resumes, takes
// both sends: it stores the first and answers the second "duplicate" with
// sequence 0 (the first only staged), or refuses it for its expected last
// sequence (the first applied; nats-server checks that before the message
// id). Either answer looks like another writer's commit of the version,
// but is the commit's own first send: the append succeeds, and the actor
// has the commit once.
TEST(PublishSentAgain, ASecondSendOfAStoredCommitIsTakenForTheCommit) {
  StreamsSetup setup;
  ASSERT_TRUE(setup.ready) << setup.why;
  BesideTheLeader client(setup, 10000);
  ASSERT_GE(client.leader, 0);
  ASSERT_TRUE(client.store);
  Journal& store = *client.store;
  const ActorKey key{"default", "Counter", "sent-twice"};
  AppendRequest req;
  std::future<AppendResult> result;
  {
    // Shorter than the followers' election timeout: it stays the leader.
    Paused paused(setup.cluster.server(static_cast<size_t>(client.leader)).pid());
    result = append_first(store, key, req);
    std::this_thread::sleep_for(std::chrono::milliseconds(1600));  // a send waits 1 s
  }
  ASSERT_EQ(result.wait_for(std::chrono::seconds(20)), std::future_status::ready);
  const AppendResult r = result.get();
  ASSERT_TRUE(r.status) << why(r.status);
  EXPECT_EQ(r.version, 1u);
  EXPECT_EQ(versions_of(store, key), "1");
  // The next commit follows it, expecting it.
  EXPECT_TRUE(append_one(store, key, 1));
  EXPECT_EQ(versions_of(store, key), "1,2");
}

}  // namespace
}  // namespace aether
