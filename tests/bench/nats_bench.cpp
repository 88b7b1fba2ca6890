// NATS benchmarks, each against its baseline on the same nats-server in the
// same run:
//  - command throughput with the jetstream store (1000 actors, 256 commands in
//    flight) against raw cnats async JetStream publishes of the same payloads,
//    and against the same publishes chained per actor (one in flight per
//    actor with its expected sequence: the ceiling of optimistic concurrency);
//  - one-at-a-time command latency over NATS request/reply (the ingress)
//    against a raw synchronous js_Publish, and against raw cnats responders
//    (echo only; js_Publish then reply) that give the floor of any ingress;
//  - replay from JetStream.
#include <benchmark/benchmark.h>
#include <nats/nats.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <functional>
#include <fstream>
#include <map>
#include <mutex>
#include <thread>
#include <sstream>

#include <sys/types.h>
#include <unistd.h>

#include "bench_host.hpp"
#include "closed_loop.hpp"
#include "core/worker_pool.hpp"
#include "nats/connection.hpp"
#include "ratio_reporter.hpp"
#include "runtime/runtime.hpp"
#include "store/jetstream_store.hpp"
#include "support/nats_server.hpp"

namespace {

using Clock = std::chrono::steady_clock;
constexpr int kActors = 1000;
constexpr int kCommands = 20000;
constexpr int kInFlight = 256;
constexpr int kLatencySamples = 2000;
constexpr int kReplayEvents = 200000;

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// CPU seconds (user + system) a process has used so far, from /proc.
double cpu_seconds(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  std::getline(f, line);
  std::istringstream in(line.substr(line.rfind(')') + 2));  // after "pid (comm) "
  std::string skip;
  for (int i = 0; i < 11; ++i) in >> skip;  // state .. cmajflt
  long user = 0, sys = 0;
  in >> user >> sys;
  return static_cast<double>(user + sys) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

// Where the CPU of a throughput run went: this process (runtime or raw
// client) and nats-server, in microseconds per command.
class CpuPerCommand {
 public:
  explicit CpuPerCommand(pid_t server) : server_(server), self0_(cpu_seconds(getpid())), server0_(cpu_seconds(server)) {}
  void report(benchmark::State& state, int commands) {
    client_ += (cpu_seconds(getpid()) - self0_) * 1e6 / commands;
    serverc_ += (cpu_seconds(server_) - server0_) * 1e6 / commands;
    state.counters["client_cpu_us"] = benchmark::Counter(client_, benchmark::Counter::kAvgIterations);
    state.counters["server_cpu_us"] = benchmark::Counter(serverc_, benchmark::Counter::kAvgIterations);
  }
  void restart() {
    self0_ = cpu_seconds(getpid());
    server0_ = cpu_seconds(server_);
  }

 private:
  pid_t server_;
  double self0_, server0_;
  double client_ = 0, serverc_ = 0;
};

struct Env {
  aether::test::NatsServer server;
  std::unique_ptr<aether::NatsConnection> conn;
  Env() {
    aether::NatsOptions o;
    o.servers = {server.url()};
    o.request_timeout_ms = 5000;
    conn = std::move(aether::NatsConnection::connect(o)).value();
  }
  // The jetstream store of namespace `ns` on this connection, with 16 publishers.
  std::unique_ptr<aether::Journal> store(const std::string& ns) {
    aether::JetStreamOptions jo;
    jo.namespaces = {ns};
    jo.publishers = 16;
    return std::move(aether::open_jetstream_store(*conn, jo)).value();
  }
};

std::unique_ptr<Env>& env_holder() {
  static std::unique_ptr<Env> e;
  return e;
}
Env& env() {
  if (!env_holder()) env_holder() = std::make_unique<Env>();
  return *env_holder();
}

// A host of namespace `ns` over the jetstream store that env().store(ns)
// opens (again at each restart_runtime), without a NATS connection of its
// own: the runtime's commits go through the same connection as before.
aether::HostConfig js_host_config(const std::string& ns) {
  aether::HostConfig c = aether::bench::host_config({"counter", "bank"}, "jetstream");
  c.node.namespaces = {ns};
  c.actors.snapshot.every = 0;
  return c;
}
std::unique_ptr<aether::Host> start_js_host(const std::string& ns) {
  aether::HostSeams seams;
  seams.open_store = [ns]() -> aether::Result<std::unique_ptr<aether::Journal>> { return env().store(ns); };
  return aether::bench::start_host(js_host_config(ns), std::move(seams));
}

// The payload a commit of one Increment carries, as the store writes it.
std::string commit_payload(int i) {
  return R"({"actor_id":"a)" + std::to_string(i % kActors) +
         R"(","commit_id":"bench","events":[{"id":"x","payload":{"by":1},"type":"Incremented","version":1}],"first_version":1,"node":"node-1","ns":"raw","timestamp":1700000000000,"type":"Counter","version":1})";
}

// state.range(0): 0 = a fresh runtime and namespace: the timed run starts
// with 1,000 actors that have no events yet; 1 = the same after an untimed
// pass, with every actor active; 2 = a fresh runtime and store (as after a
// restart) on actors that a previous runtime wrote (3 commits each): each is
// loaded from the stream by its first command.
void BM_JetStreamStoreCommands(benchmark::State& state) {
  static int round = 0;
  const int mode = static_cast<int>(state.range(0));
  CpuPerCommand cpu(env().server.pid());
  for (auto _ : state) {
    const std::string ns = "thr" + std::to_string(round++);
    auto command = [&](int i) {
      return aether::Command{ns, "Counter", "a" + std::to_string(i % kActors), "Increment", R"({"by":1})", {}, ""};
    };
    auto host = start_js_host(ns);
    if (mode == 1) aether::bench::run_closed_loop(host->runtime(), kInFlight, kActors, command);
    if (mode == 2) {
      aether::bench::run_closed_loop(host->runtime(), kInFlight, 3 * kActors, command);  // 3 commits each
      if (!host->restart_runtime()) state.SkipWithError("restart failed");  // a fresh runtime and store
    }
    cpu.restart();
    const auto start = Clock::now();
    const int failed = aether::bench::run_closed_loop(host->runtime(), kInFlight, kCommands, command);
    state.SetIterationTime(seconds_since(start));
    cpu.report(state, kCommands);
    if (failed > 0) state.SkipWithError("commands failed");
    (void)host->stop();
  }
  state.SetItemsProcessed(state.iterations() * kCommands);
}
BENCHMARK(BM_JetStreamStoreCommands)->Arg(0)->Arg(1)->Arg(2)->UseManualTime()->Iterations(3)->Unit(benchmark::kMillisecond);

void BM_RawAsyncJsPublish(benchmark::State& state) {
  auto& e = env();
  (void)e.store("raw");  // creates the stream aether.raw.events.>
  jsCtx* js = nullptr;
  jsOptions jo;
  jsOptions_Init(&jo);
  jo.PublishAsync.MaxPending = kInFlight;
  natsConnection_JetStream(&js, e.conn->nc(), &jo);
  std::vector<std::string> payloads;
  for (int i = 0; i < kCommands; ++i) payloads.push_back(commit_payload(i));
  CpuPerCommand cpu(e.server.pid());
  for (auto _ : state) {
    cpu.restart();
    const auto start = Clock::now();
    for (int i = 0; i < kCommands; ++i) {
      const std::string subj = "aether.raw.events.Counter.a" + std::to_string(i % kActors);
      if (js_PublishAsync(js, subj.c_str(), payloads[i].data(), static_cast<int>(payloads[i].size()), nullptr) !=
          NATS_OK) {
        state.SkipWithError("publish failed");
      }
    }
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MaxWait = 30000;
    js_PublishAsyncComplete(js, &po);
    state.SetIterationTime(seconds_since(start));
    cpu.report(state, kCommands);
  }
  jsCtx_Destroy(js);
  state.SetItemsProcessed(state.iterations() * kCommands);
}
BENCHMARK(BM_RawAsyncJsPublish)->UseManualTime()->Iterations(3)->Unit(benchmark::kMillisecond);

// The ceiling of per-actor optimistic concurrency for any client of
// JetStream: the same payloads, kInFlight in flight as in the runtime's run,
// but at most one per actor, each carrying the Msg-Id and the
// Nats-Expected-Last-Subject-Sequence of that actor's previous ack (what the
// store must send so that a racing writer is caught). Raw cnats, no aether
// code; a fresh stream per iteration.
struct ChainAcks {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<std::pair<int, uint64_t>> acks;  // (actor, stream sequence); 0 = failed
};

void on_chain_ack(jsCtx*, natsMsg* msg, jsPubAck* pa, jsPubAckErr*, void* closure) {
  auto* c = static_cast<ChainAcks*>(closure);
  const char* subject = natsMsg_GetSubject(msg);
  const int actor = std::atoi(std::strrchr(subject, '.') + 2);  // ".a<k>"
  const uint64_t seq = pa != nullptr ? pa->Sequence : 0;
  natsMsg_Destroy(msg);
  {
    std::lock_guard lock(c->mu);
    c->acks.emplace_back(actor, seq);
  }
  c->cv.notify_one();
}

// The Aether-* headers a commit message may carry, by bit of
// state.range(0) of BM_RawChainedJsPublish: what each costs the raw writer.
// 31 (all five) is the message the store wrote before; 7 (the versions and
// the commit id, which the store reads back) is the message it writes now:
// the node and the event types are only in the body.
enum HeaderBit { kFirst = 1, kVersion = 2, kCommitId = 4, kNode = 8, kEventTypes = 16 };

void set_headers(natsMsg* m, int mask, const std::string& version, int i) {
  if (mask & kFirst) natsMsgHeader_Set(m, "Aether-First-Version", version.c_str());
  if (mask & kVersion) natsMsgHeader_Set(m, "Aether-Version", version.c_str());
  if (mask & kCommitId) natsMsgHeader_Set(m, "Aether-Commit-Id", ("node-1-1700000000000-" + std::to_string(i + 1)).c_str());
  if (mask & kNode) natsMsgHeader_Set(m, "Aether-Node", "node-1");
  if (mask & kEventTypes) natsMsgHeader_Set(m, "Aether-Event-Types", "Incremented");
}

void BM_RawChainedJsPublish(benchmark::State& state) {
  auto& e = env();
  const int headers = static_cast<int>(state.range(0));
  static int round = 0;
  std::vector<std::string> payloads;
  for (int i = 0; i < kCommands; ++i) payloads.push_back(commit_payload(i));
  CpuPerCommand cpu(e.server.pid());
  for (auto _ : state) {
    const std::string ns = "chain" + std::to_string(round++);
    (void)e.store(ns);  // creates the stream aether.<ns>.events.>
    ChainAcks acks;
    jsCtx* js = nullptr;
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.PublishAsync.MaxPending = kInFlight;
    jo.PublishAsync.AckHandler = on_chain_ack;
    jo.PublishAsync.AckHandlerClosure = &acks;
    natsConnection_JetStream(&js, e.conn->nc(), &jo);
    std::vector<uint64_t> last_seq(kActors, 0), version(kActors, 0);
    std::vector<bool> busy(kActors, false);
    std::vector<std::deque<int>> waiting(kActors);
    bool failed = false;
    auto publish = [&](int i) {
      const int a = i % kActors;
      busy[a] = true;
      const std::string subject = "aether." + ns + ".events.Counter.a" + std::to_string(a);
      const std::string msg_id = ns + ".Counter.a" + std::to_string(a) + "." + std::to_string(++version[a]);
      natsMsg* m = nullptr;
      natsMsg_Create(&m, subject.c_str(), nullptr, payloads[i].data(), static_cast<int>(payloads[i].size()));
      set_headers(m, headers, std::to_string(version[a]), i);
      jsPubOptions po;
      jsPubOptions_Init(&po);
      po.MsgId = msg_id.c_str();
      po.ExpectLastSubjectSeq = last_seq[a];
      if (js_PublishMsgAsync(js, &m, &po) != NATS_OK) failed = true;
      natsMsg_Destroy(m);
    };
    cpu.restart();
    const auto start = Clock::now();
    int next = 0, in_flight = 0, done = 0;
    std::vector<std::pair<int, uint64_t>> got;
    while (done < kCommands && !failed) {
      while (in_flight < kInFlight && next < kCommands) {
        const int a = next % kActors;
        if (busy[a]) waiting[a].push_back(next); else publish(next);
        ++next;
        ++in_flight;
      }
      {
        std::unique_lock lock(acks.mu);
        if (!acks.cv.wait_for(lock, std::chrono::seconds(30), [&] { return !acks.acks.empty(); })) break;
        got.swap(acks.acks);
      }
      for (const auto& [a, seq] : got) {
        if (seq == 0) failed = true;
        last_seq[a] = seq;
        busy[a] = false;
        ++done;
        --in_flight;
        if (!waiting[a].empty()) {
          publish(waiting[a].front());
          waiting[a].pop_front();
        }
      }
      got.clear();
    }
    state.SetIterationTime(seconds_since(start));
    cpu.report(state, kCommands);
    if (failed || done != kCommands) state.SkipWithError("chained publishes failed");
    jsCtx_Destroy(js);
  }
  state.SetItemsProcessed(state.iterations() * kCommands);
}
BENCHMARK(BM_RawChainedJsPublish)
    ->Arg(0)
    ->Arg(kFirst | kVersion | kCommitId)
    ->Arg(31)
    ->Arg(kFirst)
    ->Arg(kVersion)
    ->Arg(kCommitId)
    ->Arg(kNode)
    ->Arg(kEventTypes)
    ->UseManualTime()
    ->Iterations(3)
    ->Unit(benchmark::kMillisecond);

double p50(std::vector<double>& v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Sends kLatencySamples command requests to `subject`, one at a time; the
// iteration time is their p50, with p50 and p99 as counters.
void request_latencies(benchmark::State& state, natsConnection* nc, const char* subject) {
  const std::string req = R"({"command":"Increment","payload":{"by":1}})";
  std::vector<double> lat;
  for (auto _ : state) {
    lat.clear();
    for (int i = 0; i < kLatencySamples; ++i) {
      natsMsg* reply = nullptr;
      const auto t0 = Clock::now();
      natsStatus s = natsConnection_Request(&reply, nc, subject, req.data(), static_cast<int>(req.size()), 5000);
      lat.push_back(seconds_since(t0) * 1e6);
      if (s != NATS_OK) state.SkipWithError("request failed");
      natsMsg_Destroy(reply);
    }
    state.SetIterationTime(p50(lat) / 1e6);
  }
  state.counters["p50_us"] = p50(lat);
  state.counters["p99_us"] = lat[lat.size() * 99 / 100];
}

// True once a command request to `subject` is answered (bounded: 100 tries).
bool ingress_answers(natsConnection* nc, const char* subject) {
  const std::string req = R"({"command":"Increment","payload":{"by":1}})";
  for (int i = 0; i < 100; ++i) {
    natsMsg* reply = nullptr;
    const natsStatus s = natsConnection_Request(&reply, nc, subject, req.data(), static_cast<int>(req.size()), 1000);
    natsMsg_Destroy(reply);
    if (s == NATS_OK) return true;
    if (s == NATS_NO_RESPONDERS) nats_Sleep(10);
  }
  return false;
}

// A host as aether-host runs one: its own NATS connection, the jetstream
// store (16 publishers) and the NATS ingress.
void BM_NatsRequestReplyCommand(benchmark::State& state) {
  auto& e = env();
  aether::HostConfig c = js_host_config("lat");
  c.nats.enabled = true;
  c.nats.servers = {e.server.url()};
  c.nats.request_timeout_ms = 5000;
  c.store.js_publishers = 16;
  auto host = aether::bench::start_host(c);
  // The ingress subscribed on the host's connection: wait until the server
  // routes this connection's requests to it (another actor than the measured one).
  if (!ingress_answers(e.conn->nc(), "aether.lat.cmd.Counter.warmup")) return state.SkipWithError("no ingress");
  request_latencies(state, e.conn->nc(), "aether.lat.cmd.Counter.one");
  (void)host->stop();
}
BENCHMARK(BM_NatsRequestReplyCommand)->UseManualTime()->Iterations(1)->Unit(benchmark::kMicrosecond);

void BM_RawSyncJsPublish(benchmark::State& state) {
  auto& e = env();
  (void)e.store("sync");
  const std::string payload = commit_payload(0);
  std::vector<double> lat;
  for (auto _ : state) {
    lat.clear();
    for (int i = 0; i < kLatencySamples; ++i) {
      jsPubAck* pa = nullptr;
      const auto t0 = Clock::now();
      natsStatus s = js_Publish(&pa, e.conn->js(), "aether.sync.events.Counter.one", payload.data(),
                                static_cast<int>(payload.size()), nullptr, nullptr);
      lat.push_back(seconds_since(t0) * 1e6);
      if (s != NATS_OK) state.SkipWithError("publish failed");
      jsPubAck_Destroy(pa);
    }
    state.SetIterationTime(p50(lat) / 1e6);
  }
  state.counters["p50_us"] = p50(lat);
  state.counters["p99_us"] = lat[lat.size() * 99 / 100];
}
BENCHMARK(BM_RawSyncJsPublish)->UseManualTime()->Iterations(1)->Unit(benchmark::kMicrosecond);

// The floors of any NATS request/reply ingress, on the same connection and
// server: a raw cnats responder that only echoes (one core NATS round trip,
// no JetStream), and one that does a synchronous js_Publish of the commit
// payload before it replies (the two round trips every command takes: the
// request to the host, the host's publish to JetStream).
struct Responder {
  jsCtx* js = nullptr;
  std::string payload;
  bool publish = false;
};

void on_request(natsConnection* nc, natsSubscription*, natsMsg* m, void* closure) {
  auto* r = static_cast<Responder*>(closure);
  if (r->publish) {
    jsPubAck* pa = nullptr;
    js_Publish(&pa, r->js, "aether.sync.events.Counter.responder", r->payload.data(),
               static_cast<int>(r->payload.size()), nullptr, nullptr);
    jsPubAck_Destroy(pa);
  }
  natsConnection_Publish(nc, natsMsg_GetReply(m), natsMsg_GetData(m), natsMsg_GetDataLength(m));
  natsMsg_Destroy(m);
}

// The same responder built as the runtime is threaded: cnats' thread hands
// the request to a worker thread, which publishes the commit
// asynchronously (the store's message: Msg-Id, expected last subject
// sequence); the JetStream ack handler hands the ack back to the worker,
// which replies. No plugin, no JSON, no store bookkeeping: what the hand-offs
// alone cost, the floor of any ingress that keeps plugin code off cnats'
// threads.
struct HandoffResponder {
  natsConnection* nc = nullptr;
  jsCtx* js = nullptr;
  std::string payload;
  std::mutex mu;
  std::map<natsMsg*, std::string> replies;  // pending publish -> reply subject, under mu
  uint64_t version = 0, last_seq = 0;       // the worker's only
  aether::WorkerPool worker{1, "aether-handoff"};

  void post(std::function<void()> f) { worker.post(std::move(f)); }
  // On the worker.
  void publish(const std::string& reply) {
    natsMsg* m = nullptr;
    natsMsg_Create(&m, "aether.sync.events.Counter.handoff", nullptr, payload.data(), static_cast<int>(payload.size()));
    const std::string msg_id = "sync.Counter.handoff." + std::to_string(++version);
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MsgId = msg_id.c_str();
    po.ExpectLastSubjectSeq = last_seq;
    {
      std::lock_guard lock(mu);
      replies[m] = reply;
    }
    natsMsg* sent = m;
    if (js_PublishMsgAsync(js, &m, &po) != NATS_OK) {
      std::lock_guard lock(mu);
      replies.erase(sent);
      natsMsg_Destroy(m);
    }
  }
};

void on_handoff_request(natsConnection*, natsSubscription*, natsMsg* m, void* closure) {
  auto* r = static_cast<HandoffResponder*>(closure);
  std::string reply = natsMsg_GetReply(m);
  natsMsg_Destroy(m);
  r->post([r, reply = std::move(reply)] { r->publish(reply); });
}

void on_handoff_ack(jsCtx*, natsMsg* msg, jsPubAck* pa, jsPubAckErr*, void* closure) {
  auto* r = static_cast<HandoffResponder*>(closure);
  std::string reply;
  {
    std::lock_guard lock(r->mu);
    if (auto it = r->replies.find(msg); it != r->replies.end()) {
      reply = std::move(it->second);
      r->replies.erase(it);
    }
  }
  const uint64_t seq = pa != nullptr ? pa->Sequence : 0;
  natsMsg_Destroy(msg);
  if (reply.empty()) return;
  r->post([r, reply = std::move(reply), seq] {
    if (seq != 0) r->last_seq = seq;
    natsConnection_Publish(r->nc, reply.c_str(), "{}", 2);
  });
}

void BM_RawHandoffResponder(benchmark::State& state) {
  auto& e = env();
  (void)e.store("sync");
  HandoffResponder r;
  r.nc = e.conn->nc();
  r.payload = commit_payload(0);
  jsOptions jo;
  jsOptions_Init(&jo);
  jo.PublishAsync.AckHandler = on_handoff_ack;
  jo.PublishAsync.AckHandlerClosure = &r;
  natsConnection_JetStream(&r.js, e.conn->nc(), &jo);
  natsSubscription* sub = nullptr;
  natsConnection_Subscribe(&sub, e.conn->nc(), "bench.handoff", on_handoff_request, &r);
  request_latencies(state, e.conn->nc(), "bench.handoff");
  natsSubscription_Unsubscribe(sub);
  natsSubscription_Destroy(sub);
  js_PublishAsyncComplete(r.js, nullptr);
  jsCtx_Destroy(r.js);
}
BENCHMARK(BM_RawHandoffResponder)->UseManualTime()->Iterations(1)->Unit(benchmark::kMicrosecond);

// state.range(0): 0 = echo only, 1 = js_Publish, then reply.
void BM_RawResponder(benchmark::State& state) {
  auto& e = env();
  (void)e.store("sync");
  Responder r{e.conn->js(), commit_payload(0), state.range(0) == 1};
  natsSubscription* sub = nullptr;
  natsConnection_Subscribe(&sub, e.conn->nc(), "bench.responder", on_request, &r);
  request_latencies(state, e.conn->nc(), "bench.responder");
  natsSubscription_Unsubscribe(sub);
  natsSubscription_Destroy(sub);
}
BENCHMARK(BM_RawResponder)->Arg(0)->Arg(1)->UseManualTime()->Iterations(1)->Unit(benchmark::kMicrosecond);

void BM_ReplayFromJetStream(benchmark::State& state) {
  auto& e = env();
  auto store = e.store("replay");
  // One bank account, 10 events per commit.
  uint64_t v = 0;
  while (v < kReplayEvents) {
    aether::AppendRequest r;
    r.key = {"replay", "BankAccount", "long"};
    r.expected_version = v;
    for (int i = 0; i < 10; ++i) {
      if (v == 0 && i == 0) r.events.push_back({"Opened", R"({"owner":"bench"})"});
      else r.events.push_back({"Deposited", R"({"amount":3})"});
    }
    auto res = store->append_sync(r);
    if (!res.status.is_ok()) return state.SkipWithError(res.status.message().c_str());
    v = res.version;
  }
  // One runtime after another over this store, as before.
  auto host = aether::bench::start_host_over(js_host_config("replay"), *store);
  for (auto _ : state) {
    if (!host->restart_runtime()) return state.SkipWithError("restart failed");
    const auto start = Clock::now();
    auto st = host->runtime().state("replay", "BankAccount", "long");
    state.SetIterationTime(seconds_since(start));
    if (!st || st->version != static_cast<uint64_t>(kReplayEvents)) state.SkipWithError("bad replay");
  }
  (void)host->stop();
  state.SetItemsProcessed(state.iterations() * kReplayEvents);
}
BENCHMARK(BM_ReplayFromJetStream)->UseManualTime()->Iterations(3)->Unit(benchmark::kMillisecond);

}  // namespace

int main(int argc, char** argv) {
  const int rc = aether::bench::run_with_ratios(
      argc, argv,
      {{"jetstream commands vs raw async publishes (throughput)", "BM_RawAsyncJsPublish/iterations:3/manual_time",
        "BM_JetStreamStoreCommands/0/iterations:3/manual_time", "goal >= 0.6x"},
       {"  the same with the 1,000 actors already active", "BM_RawAsyncJsPublish/iterations:3/manual_time",
        "BM_JetStreamStoreCommands/1/iterations:3/manual_time", "(for comparison)"},
       {"  the same on existing actors after a restart", "BM_RawAsyncJsPublish/iterations:3/manual_time",
        "BM_JetStreamStoreCommands/2/iterations:3/manual_time", "(for comparison)"},
       {"ceiling: raw publishes chained per actor vs raw async publishes", "BM_RawAsyncJsPublish/iterations:3/manual_time",
        "BM_RawChainedJsPublish/0/iterations:3/manual_time",
        "one in flight per actor, Msg-Id, expected sequence: the message the store writes, no runtime"},
       {"  the same with the three Aether-* headers of before vs raw async publishes",
        "BM_RawAsyncJsPublish/iterations:3/manual_time", "BM_RawChainedJsPublish/7/iterations:3/manual_time",
        "(versions and commit id as headers)"},
       {"  the same with the five headers of before vs raw async publishes", "BM_RawAsyncJsPublish/iterations:3/manual_time",
        "BM_RawChainedJsPublish/31/iterations:3/manual_time", "(node and event types also as headers)"},
       {"header cost: Aether-First-Version alone vs none", "BM_RawChainedJsPublish/0/iterations:3/manual_time",
        "BM_RawChainedJsPublish/1/iterations:3/manual_time", "(for comparison)"},
       {"header cost: Aether-Version alone vs none", "BM_RawChainedJsPublish/0/iterations:3/manual_time",
        "BM_RawChainedJsPublish/2/iterations:3/manual_time", "(for comparison)"},
       {"header cost: Aether-Commit-Id alone vs none", "BM_RawChainedJsPublish/0/iterations:3/manual_time",
        "BM_RawChainedJsPublish/4/iterations:3/manual_time", "(for comparison)"},
       {"header cost: Aether-Node alone vs none", "BM_RawChainedJsPublish/0/iterations:3/manual_time",
        "BM_RawChainedJsPublish/8/iterations:3/manual_time", "(for comparison)"},
       {"header cost: Aether-Event-Types alone vs none", "BM_RawChainedJsPublish/0/iterations:3/manual_time",
        "BM_RawChainedJsPublish/16/iterations:3/manual_time", "(for comparison)"},
       {"jetstream commands (actors active) vs the raw chained writer of the same messages",
        "BM_RawChainedJsPublish/0/iterations:3/manual_time", "BM_JetStreamStoreCommands/1/iterations:3/manual_time",
        "goal >= 0.9x"},
       {"  the same with new actors", "BM_RawChainedJsPublish/0/iterations:3/manual_time",
        "BM_JetStreamStoreCommands/0/iterations:3/manual_time", "(for comparison)"},
       {"request/reply command vs raw js_Publish (p50 latency)", "BM_NatsRequestReplyCommand/iterations:1/manual_time",
        "BM_RawSyncJsPublish/iterations:1/manual_time", "goal <= 1.5x"},
       {"floor: raw echo responder vs raw js_Publish (p50 latency)", "BM_RawResponder/0/iterations:1/manual_time",
        "BM_RawSyncJsPublish/iterations:1/manual_time", "one core NATS round trip, nothing stored"},
       {"floor: raw responder that publishes to JetStream vs raw js_Publish (p50)", "BM_RawResponder/1/iterations:1/manual_time",
        "BM_RawSyncJsPublish/iterations:1/manual_time", "the two round trips of any command"},
       {"request/reply command vs that raw responder (p50 latency)", "BM_NatsRequestReplyCommand/iterations:1/manual_time",
        "BM_RawResponder/1/iterations:1/manual_time", "goal <= 1.1x: the runtime's cost over that floor"},
       {"floor: raw responder with the runtime's hand-offs vs the raw responder (p50)",
        "BM_RawHandoffResponder/iterations:1/manual_time", "BM_RawResponder/1/iterations:1/manual_time",
        "a worker thread between cnats and the publish, and between the ack and the reply"},
       {"request/reply command vs the raw responder with the same hand-offs (p50)",
        "BM_NatsRequestReplyCommand/iterations:1/manual_time", "BM_RawHandoffResponder/iterations:1/manual_time",
        "the runtime's own cost on that path"}});
  env_holder().reset();  // before cnats' own teardown at exit
  return rc;
}
