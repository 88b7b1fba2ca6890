// What HTTP costs: command throughput through aether-host's HTTP API with
// keep-alive connections, against the in-process runtime API on the same
// store (memory, so the store is not what is measured), same commands, same
// concurrency.
#include <benchmark/benchmark.h>
#include <httplib.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "api/http_server.hpp"
#include "bench_host.hpp"
#include "ratio_reporter.hpp"
#include "runtime/runtime.hpp"

namespace {

using Clock = std::chrono::steady_clock;
constexpr int kClients = 8;
constexpr int kPerClient = 2000;

// A host on the memory store serving HTTP on a free loopback port.
std::unique_ptr<aether::Host> start_http_host() {
  aether::HostConfig c = aether::bench::host_config({"counter"});
  c.actors.snapshot.every = 0;
  c.api.http_enabled = true;
  c.api.http_listen = "127.0.0.1:0";
  c.api.http_threads = kClients;
  return aether::bench::start_host(c);
}

void BM_HttpCommandsKeepAlive(benchmark::State& state) {
  auto host = start_http_host();
  const int port = host->http()->port();
  for (auto _ : state) {
    std::atomic<int> failed{0};
    const auto start = Clock::now();
    std::vector<std::thread> clients;
    for (int c = 0; c < kClients; ++c) {
      clients.emplace_back([&, c] {
        httplib::Client cl("127.0.0.1", port);
        cl.set_keep_alive(true);
        cl.set_tcp_nodelay(true);
        const std::string path = "/v1/default/actors/Counter/h" + std::to_string(c) + "/commands";
        for (int i = 0; i < kPerClient; ++i) {
          auto r = cl.Post(path, R"({"command":"Increment","payload":{"by":1}})", "application/json");
          if (!r || r->status != 200) failed.fetch_add(1);
        }
      });
    }
    for (auto& t : clients) t.join();
    state.SetIterationTime(std::chrono::duration<double>(Clock::now() - start).count());
    if (failed.load()) state.SkipWithError("HTTP commands failed");
  }
  state.SetItemsProcessed(state.iterations() * kClients * kPerClient);
}
BENCHMARK(BM_HttpCommandsKeepAlive)->UseManualTime()->Iterations(3)->Unit(benchmark::kMillisecond);

void BM_InProcessCommands(benchmark::State& state) {
  auto host = start_http_host();
  aether::Runtime& rt = host->runtime();
  for (auto _ : state) {
    std::atomic<int> failed{0};
    const auto start = Clock::now();
    std::vector<std::thread> clients;
    for (int c = 0; c < kClients; ++c) {
      clients.emplace_back([&, c] {
        for (int i = 0; i < kPerClient; ++i) {
          aether::Command cmd{"default", "Counter", "p" + std::to_string(c), "Increment",
                              R"({"by":1})", std::nullopt, ""};
          if (!rt.send_sync(std::move(cmd)).status.is_ok()) failed.fetch_add(1);
        }
      });
    }
    for (auto& t : clients) t.join();
    state.SetIterationTime(std::chrono::duration<double>(Clock::now() - start).count());
    if (failed.load()) state.SkipWithError("commands failed");
  }
  state.SetItemsProcessed(state.iterations() * kClients * kPerClient);
}
BENCHMARK(BM_InProcessCommands)->UseManualTime()->Iterations(3)->Unit(benchmark::kMillisecond);

}  // namespace

int main(int argc, char** argv) {
  return aether::bench::run_with_ratios(
      argc, argv,
      {{"HTTP keep-alive vs in-process (throughput)", "BM_InProcessCommands/iterations:3/manual_time",
        "BM_HttpCommandsKeepAlive/iterations:3/manual_time", "recorded, no goal yet"}});
}
