// A plugin that reads one value of each SDK type strictly, and a typed
// command and event (structs bound with nlohmann's macros): the values and
// the payloads it refuses must reach the client as 400 invalid_argument.
#include <aether/sdk.hpp>

#include <cstdint>
#include <string>

namespace {

struct Values {
  int64_t i64 = 0;
  uint64_t u64 = 0;
  uint32_t u32 = 0;
  double real = 0;
  std::string text;
  bool flag = false;
  int64_t deposited = 0;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(Values, i64, u64, u32, real, text, flag, deposited)

struct Deposit {
  int64_t amount = 0;
  uint32_t units = 0;
  std::string memo;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(Deposit, amount, units, memo)

struct Deposited {
  int64_t amount = 0;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(Deposited, amount)

// A command reading field "v" as T and emitting "Set" {"field": member, "v": v}.
template <class T>
auto setter(const char* member) {
  return [member](const Values&, const aether::json& cmd, aether::Decision& d) {
    d.emit("Set", {{"field", member}, {"v", aether::field<T>(cmd, "v")}});
  };
}

aether::ActorType<Values> values =
    aether::ActorType<Values>("Strict", 1)
        .command("SetI64", setter<int64_t>("i64"))
        .command("SetU64", setter<uint64_t>("u64"))
        .command("SetU32", setter<uint32_t>("u32"))
        .command("SetReal", setter<double>("real"))
        .command("SetText", setter<std::string>("text"))
        .command("SetFlag", setter<bool>("flag"))
        .command<Deposit>("Deposit",
                          [](const Values&, const Deposit& c, aether::Decision& d) {
                            if (c.amount <= 0) throw aether::Rejected("not_positive", "amount must be positive");
                            d.emit("Deposited", Deposited{c.amount});
                          })
        .event("Set",
               [](Values& s, const aether::json& e) {
                 const std::string f = e.at("field").get<std::string>();
                 aether::json j = s;
                 j[f] = e.at("v");
                 s = j.get<Values>();
               })
        .event<Deposited>("Deposited",
                          [](Values& s, const Deposited& e) { s.deposited += e.amount; });

}  // namespace

AETHER_PLUGIN("strict", "1.0.0", values)
