// Child process for the durability test: runs the runtime on a sqlite store
// (synchronous=FULL) and sends counter commands from several threads until it
// is killed. For every command whose reply arrived it prints
// "<actor> <version>\n" and flushes, so the parent knows what was acknowledged.
// Usage: durability_child DB_PATH COUNTER_PLUGIN
#include <cstdio>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "app/host.hpp"
#include "core/log.hpp"
#include "runtime/runtime.hpp"

int main(int argc, char** argv) {
  if (argc != 3) return 2;
  aether::log::configure("error", "text");
  aether::HostConfig config;
  config.store.backend = "sqlite";
  config.store.sqlite_path = argv[1];
  config.store.sqlite_synchronous = "full";
  config.plugins.dir = std::filesystem::path(argv[2]).parent_path().string();
  config.plugins.list = {argv[2]};
  config.actors.workers = 4;
  config.api.http_enabled = false;
  auto host = aether::Host::start(config);
  if (!host) {
    std::fprintf(stderr, "%s\n", host.status().message().c_str());
    return 1;
  }
  aether::Runtime* rt = &(*host)->runtime();
  std::mutex out;
  std::vector<std::thread> threads;
  for (int t = 0; t < 16; ++t) {
    threads.emplace_back([&, t] {
      for (uint64_t i = 0;; ++i) {
        const std::string id = "d" + std::to_string((t * 7 + i) % 100);
        aether::Command c{"default", "Counter", id, "Increment", "{}", std::nullopt, ""};
        auto r = rt->send_sync(c);
        if (r.status.is_ok()) {
          std::lock_guard lock(out);
          std::printf("%s %llu\n", id.c_str(), static_cast<unsigned long long>(r.version));
          std::fflush(stdout);
        }
      }
    });
  }
  for (auto& th : threads) th.join();
}
