// A plugin whose reducer is bench_reducer.hpp's apply_deposited.
#include <aether/sdk.hpp>

#include "bench_reducer.hpp"

namespace aether::bench {
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(Account, balance, deposits, last_ref)
}

namespace {

aether::ActorType<aether::bench::Account> bench_account =
    aether::ActorType<aether::bench::Account>("BenchAccount", 1)
        .command("Deposit",
                 [](const aether::bench::Account&, const aether::json& c, aether::Decision& d) {
                   d.emit("Deposited", c);
                 })
        .event("Deposited", &aether::bench::apply_deposited);

}  // namespace

AETHER_PLUGIN("bench_account", "1.0.0", bench_account)
