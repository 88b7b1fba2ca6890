// Test-only plugin that breaks the rules on command: the host must fail just
// that command, with a clear error, and leave the actor as it was.
//   Good      -> emits Ok
//   Throw     -> throws std::runtime_error("boom: the plugin threw")
//   BadEvent  -> emits an event that is not in the model
//   BadJson   -> emits Ok with a payload that is not JSON
//   DeepJson  -> emits Ok with a payload nested 100,000 deep
//   Reject    -> rejects with code "nope"
//   Nothing   -> emits nothing
#include <aether/sdk.hpp>

#include <stdexcept>
#include <string>

namespace {

struct Tally {
  int64_t ok = 0;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(Tally, ok)

using aether::Decision;
using aether::json;

aether::ActorType<Tally> faulty =
    aether::ActorType<Tally>("Faulty", 1)
        .command("Good", [](const Tally&, const json&, Decision& d) { d.emit("Ok"); })
        .command("Throw",
                 [](const Tally&, const json&, Decision&) {
                   throw std::runtime_error("boom: the plugin threw");
                 })
        .command("BadEvent", [](const Tally&, const json&, Decision& d) { d.emit("NotDeclared"); })
        .command("BadJson", [](const Tally&, const json&, Decision& d) { d.emit_raw("Ok", "{not json"); })
        .command("DeepJson",
                 [](const Tally&, const json&, Decision& d) {
                   d.emit_raw("Ok", std::string(100000, '[') + std::string(100000, ']'));
                 })
        .command("Reject",
                 [](const Tally&, const json&, Decision& d) { d.reject("nope", "not today"); })
        .command("Nothing", [](const Tally&, const json&, Decision&) {})
        .event("Ok", [](Tally& t, const json&) { ++t.ok; });

}  // namespace

AETHER_PLUGIN("faulty", "1.0.0", faulty)
