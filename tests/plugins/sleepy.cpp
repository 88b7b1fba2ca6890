// Test-only plugin whose hooks take as long as a command says, to try the
// host's watchdog on plugin calls:
//   Sleep        {"ms": N} -> decide sleeps N ms, then emits Slept
//   SleepInApply {"ms": N} -> emits Napped; its apply sleeps N ms
//   SlowView     {"ms": N} -> emits ViewSlowed; from then on view sleeps N ms
//   Tick         {}        -> emits Ticked at once
//   Tock         {}        -> emits Ticked at once; only in 1.1.0
// Built twice: "sleepy" 1.0.0, and 1.1.0 with SLEEPY_V2 (a reload target).
#include <aether/sdk.hpp>

#include <chrono>
#include <cstdio>
#include <string>
#include <thread>

namespace {

struct Sleeper {
  int64_t ticks = 0;
  int64_t slept = 0;
  int64_t view_ms = 0;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(Sleeper, ticks, slept, view_ms)

using aether::Decision;
using aether::json;

void touch(const json& payload, const char* key) {
  if (const std::string path = payload.value(key, std::string()); !path.empty()) {
    if (std::FILE* f = std::fopen(path.c_str(), "w")) std::fclose(f);
  }
}

// Says so on stderr (a test can wait for the line in the host's log), and
// creates the files "touch" (before the sleep) and "touch_after" name, if
// any (a test in the host's process can look for them).
void nap(const json& payload, const char* hook) {
  const int64_t ms = payload.value("ms", int64_t{0});
  std::fprintf(stderr, "sleepy: %s sleeps %lld ms\n", hook, static_cast<long long>(ms));
  std::fflush(stderr);
  touch(payload, "touch");
  std::this_thread::sleep_for(std::chrono::milliseconds(ms));
  touch(payload, "touch_after");
}

aether::ActorType<Sleeper> sleepy =
    aether::ActorType<Sleeper>("Sleepy", 1)
        .command("Sleep",
                 [](const Sleeper&, const json& cmd, Decision& d) {
                   nap(cmd, "decide");
                   d.emit("Slept", {{"ms", cmd.value("ms", int64_t{0})}});
                 })
        .command("SleepInApply",
                 [](const Sleeper&, const json& cmd, Decision& d) {
                   d.emit("Napped", {{"ms", cmd.value("ms", int64_t{0})}});
                 })
        .command("SlowView",
                 [](const Sleeper&, const json& cmd, Decision& d) {
                   d.emit("ViewSlowed", {{"ms", cmd.value("ms", int64_t{0})}});
                 })
        .command("Tick", [](const Sleeper&, const json&, Decision& d) { d.emit("Ticked"); })
#ifdef SLEEPY_V2
        // Only in 1.1.0: a test can tell which version serves an actor.
        .command("Tock", [](const Sleeper&, const json&, Decision& d) { d.emit("Ticked"); })
#endif
        .event("Slept", [](Sleeper& s, const json& e) { s.slept += e.value("ms", int64_t{0}); })
        .event("Napped",
               [](Sleeper& s, const json& e) {
                 nap(e, "apply");
                 s.slept += e.value("ms", int64_t{0});
               })
        .event("ViewSlowed", [](Sleeper& s, const json& e) { s.view_ms = e.value("ms", int64_t{0}); })
        .event("Ticked", [](Sleeper& s, const json&) { ++s.ticks; })
        .view_with([](const Sleeper& s) {
          std::this_thread::sleep_for(std::chrono::milliseconds(s.view_ms));
          return json(s);
        });

}  // namespace

#ifdef SLEEPY_V2
AETHER_PLUGIN("sleepy", "1.1.0", sleepy)
#else
AETHER_PLUGIN("sleepy", "1.0.0", sleepy)
#endif
