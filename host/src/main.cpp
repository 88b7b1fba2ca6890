// aether-host: loads the configuration, the store, the plugins and the
// runtime, serves the HTTP API, and shuts down cleanly on SIGINT/SIGTERM
// (stops accepting, finishes queued commands, flushes the store).
#include <signal.h>


#include <CLI/CLI.hpp>
#include <cstdio>
#include <iostream>

#include "api/http_server.hpp"
#include "app/host.hpp"
#include "config/config.hpp"
#include "core/log.hpp"
#include "plugin/plugin.hpp"
#include "runtime/runtime.hpp"

namespace {

using namespace aether;

constexpr const char* kVersion = "0.1.0";

int fail(const std::string& message) {
  log::error(message);
  return 1;
}

int serve(const HostConfig& cfg) {
  if (!log::configure(cfg.log.level, cfg.log.format)) return fail("bad log settings");
  // Signals are taken by sigwait below; block them before any thread starts.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  // A signal while the start waits for NATS ends the wait.
  const StartPause pause = [&signals](int64_t pause_ms) {
    timespec ts{pause_ms / 1000, (pause_ms % 1000) * 1000000};
    const int sig = sigtimedwait(&signals, nullptr, &ts);
    if (sig > 0) log::warn("received signal " + std::to_string(sig) + " while starting: giving up");
    return sig > 0;
  };
  auto host = Host::start(cfg, pause);
  if (!host) return fail(host.status().message());

  std::string nss;
  for (const auto& ns : cfg.node.namespaces) nss += (nss.empty() ? "" : ", ") + ns;
  log::info("aether-host " + std::string(kVersion) + " node " + cfg.node.id + " (namespaces: " + nss +
            ", store: " + cfg.store.backend + (cfg.store.backend == "sqlite" ? " " + cfg.store.sqlite_path : "") +
            ", config: " + cfg.source + ")");
  if (HttpServer* http = (*host)->http()) {
    const auto addr = parse_listen_address(cfg.api.http_listen);
    log::info("listening on http://" + addr->first + ":" + std::to_string(http->port()));
  }

  int sig = 0;
  sigwait(&signals, &sig);
  log::info(std::string("received ") + (sig == SIGINT ? "SIGINT" : "SIGTERM") +
            ": stopping (finishing queued commands, flushing the store)");
  if (Status s = (*host)->stop(); !s) return fail(s.message());
  const auto st = (*host)->runtime().stats();
  log::info("stopped cleanly after " + std::to_string(st.commands_ok) + " accepted commands");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"aether-host: a runtime for event-sourced actors"};
  std::string config_file;
  std::string check_file;
  bool show_version = false;
  app.add_option("--config", config_file,
                 "YAML configuration file (default: the embedded config/aether.yaml)");
  app.add_option("--check-config", check_file, "validate FILE, print what is wrong, and exit");
  app.add_flag("--version", show_version, "print the version and exit");
  CLI11_PARSE(app, argc, argv);

  if (show_version) {
    std::printf("aether-host %s (plugin ABI %d.%d)\n", kVersion, AETHER_ABI_MAJOR, AETHER_ABI_MINOR);
    return 0;
  }
  if (!check_file.empty()) {
    auto c = load_config_file(check_file);
    if (!c) {
      std::fprintf(stderr, "%s\n", c.status().message().c_str());
      return 1;
    }
    std::printf("%s: ok\n", check_file.c_str());
    return 0;
  }
  auto cfg = config_file.empty() ? parse_config(embedded_default_config(), "<embedded config/aether.yaml>")
                                 : load_config_file(config_file);
  if (!cfg) {
    std::fprintf(stderr, "aether-host: %s\n", cfg.status().message().c_str());
    return 1;
  }
  return serve(*cfg);
}
