// Test-only plugin "tally" in several versions, chosen by compile definition,
// for the hot-swap tests:
//   TALLY_V1              1.0.0, state schema 1: {"count"}; Add accepts any n > 0
//   TALLY_V2              2.0.0, state schema 2: {"total","ops"}; Add refuses n > 1000
//                         (too_large); upgrade_state from schema 1
//   TALLY_V2_NO_UPGRADE   as V2 without upgrade_state (the host replays events)
//   TALLY_V1_1            1.1.0, state schema 1 like V1; Add refuses n > 500
//   TALLY_RESTORE_THROWS  schema 1 like V1, but restore throws
//   TALLY_UPGRADE_FAILS   as V2, but upgrade_state throws
//   TALLY_MISSING_TYPE    serves "Tally2" instead of "Tally"
// and for the shadow check of a reload:
//   TALLY_V1_FOLD         1.2.0-fold, schema 1 like V1, but apply folds Subtracted
//                         as an addition (the same history, another count)
//   TALLY_V2_EXACT        2.1.0-exact, state schema 2: {"total"}; upgrade_state
//                         carries count over as total (a correct upgrade)
//   TALLY_V2_DROPS        2.1.0-drops, as V2_EXACT, but upgrade_state drops total
#include <aether/sdk.hpp>

#include <stdexcept>

namespace {

using aether::Decision;
using aether::json;

#if defined(TALLY_V1) || defined(TALLY_V1_1) || defined(TALLY_RESTORE_THROWS) || defined(TALLY_V1_FOLD)
struct State {
  int64_t count = 0;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(State, count)
constexpr uint32_t kSchema = 1;
int64_t& total(State& s) { return s.count; }
int64_t total(const State& s) { return s.count; }
void note_op(State&) {}
#ifdef TALLY_V1_1
constexpr int64_t kMaxAdd = 500;
#else
constexpr int64_t kMaxAdd = INT64_MAX;
#endif
json view(const State& s) { return {{"count", s.count}}; }
#elif defined(TALLY_V2_EXACT) || defined(TALLY_V2_DROPS)
struct State {
  int64_t total = 0;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(State, total)
constexpr uint32_t kSchema = 2;
int64_t& total(State& s) { return s.total; }
int64_t total(const State& s) { return s.total; }
void note_op(State&) {}
constexpr int64_t kMaxAdd = INT64_MAX;
json view(const State& s) { return {{"total", s.total}}; }
#else
struct State {
  int64_t total = 0;
  int64_t ops = 0;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(State, total, ops)
constexpr uint32_t kSchema = 2;
int64_t& total(State& s) { return s.total; }
int64_t total(const State& s) { return s.total; }
void note_op(State& s) { ++s.ops; }
constexpr int64_t kMaxAdd = 1000;
json view(const State& s) { return {{"total", s.total}, {"ops", s.ops}, {"v", 2}}; }
#endif

#if defined(TALLY_V1)
#define TALLY_VERSION "1.0.0"
#elif defined(TALLY_V1_1)
#define TALLY_VERSION "1.1.0"
#elif defined(TALLY_RESTORE_THROWS)
#define TALLY_VERSION "1.1.0-restore-throws"
#elif defined(TALLY_UPGRADE_FAILS)
#define TALLY_VERSION "2.0.0-upgrade-fails"
#elif defined(TALLY_MISSING_TYPE)
#define TALLY_VERSION "2.0.0-missing-type"
#elif defined(TALLY_V1_FOLD)
#define TALLY_VERSION "1.2.0-fold"
#elif defined(TALLY_V2_EXACT)
#define TALLY_VERSION "2.1.0-exact"
#elif defined(TALLY_V2_DROPS)
#define TALLY_VERSION "2.1.0-drops"
#elif defined(TALLY_V2_NO_UPGRADE)
#define TALLY_VERSION "2.0.0-no-upgrade"
#else
#define TALLY_VERSION "2.0.0"
#endif

#ifdef TALLY_MISSING_TYPE
#define TALLY_TYPE "Tally2"
#else
#define TALLY_TYPE "Tally"
#endif

aether::ActorType<State> make_type() {
  auto t =
      aether::ActorType<State>(TALLY_TYPE, kSchema)
          .command("Add",
                   [](const State&, const json& c, Decision& d) {
                     const auto n = aether::field<int64_t>(c, "n");
                     if (n <= 0) throw aether::BadInput("field 'n' must be positive");
                     if (n > kMaxAdd) throw aether::Rejected("too_large", "at most " + std::to_string(kMaxAdd) + " at a time");
                     d.emit("Added", {{"n", n}});
                   })
          .command("Sub",
                   [](const State& s, const json& c, Decision& d) {
                     const auto n = aether::field<int64_t>(c, "n");
                     if (n > total(s)) throw aether::Rejected("below_zero", "tally cannot go below zero");
                     d.emit("Subtracted", {{"n", n}});
                   })
          .event("Added",
                 [](State& s, const json& e) {
                   total(s) += e.at("n").get<int64_t>();
                   note_op(s);
                 })
          .event("Subtracted",
                 [](State& s, const json& e) {
#ifdef TALLY_V1_FOLD
                   total(s) += e.at("n").get<int64_t>();
#else
                   total(s) -= e.at("n").get<int64_t>();
#endif
                   note_op(s);
                 })
          .view_with(&view);
#if defined(TALLY_RESTORE_THROWS)
  return std::move(t).snapshot_with([](const State& s) { return json(s).dump(); },
                                    [](State&, std::string_view) -> void {
                                      throw std::runtime_error("restore refuses this snapshot");
                                    });
#elif defined(TALLY_UPGRADE_FAILS)
  return std::move(t).upgrade_with([](uint32_t, const json&) -> std::optional<json> {
    throw std::runtime_error("upgrade_state cannot read schema 1");
  });
#elif defined(TALLY_V1) || defined(TALLY_V1_1) || defined(TALLY_V2_NO_UPGRADE) || defined(TALLY_V1_FOLD)
  return t;
#elif defined(TALLY_V2_EXACT) || defined(TALLY_V2_DROPS)
  return std::move(t).upgrade_with([](uint32_t from, const json& old) -> std::optional<json> {
    if (from != 1) return std::nullopt;
#ifdef TALLY_V2_DROPS
    (void)old;
    return json::object();  // forgets the count
#else
    return json{{"total", old.at("count").get<int64_t>()}};
#endif
  });
#else
  return std::move(t).upgrade_with([](uint32_t from, const json& old) -> std::optional<json> {
    if (from != 1) return std::nullopt;
    return json{{"total", old.at("count").get<int64_t>()}, {"ops", 0}};
  });
#endif
}

aether::ActorType<State> tally = make_type();

}  // namespace

AETHER_PLUGIN("tally", TALLY_VERSION, tally)
