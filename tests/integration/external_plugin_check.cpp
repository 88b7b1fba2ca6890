// Loads the out-of-tree wallet plugin (examples/external-plugin), built
// by tests/scripts/external_plugin.sh with another compiler against the
// installed SDK, into this g++-built host code and drives it.
// Usage: external_plugin_check PATH/wallet_v1.so
#include <cstdio>
#include <string>

#include "plugin/plugin.hpp"

namespace {
int failures = 0;
void check(bool ok, const std::string& what) {
  std::printf("%s: %s\n", ok ? "ok" : "FAILED", what.c_str());
  if (!ok) ++failures;
}
}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s PLUGIN.so\n", argv[0]);
    return 2;
  }
  aether::PluginRegistry reg;
  auto p = reg.load(argv[1]);
  check(p.is_ok(), "load " + std::string(argv[1]) + (p ? "" : ": " + p.status().message()));
  if (!p) return 1;
  const aether::ActorType* t = (*p)->find_type("Wallet");
  check(t != nullptr, "actor type Wallet is registered");
  if (t == nullptr) return 1;
  auto s = t->create();
  check(s.is_ok(), "create state");
  auto d = t->decide(*s, t->command_index("Deposit"), R"({"amount":30})", "w-1", 0);
  check(d.status.is_ok() && d.events.size() == 1, "Deposit emits one event");
  check(t->apply(*s, d.events[0].index, d.events[0].payload, 1).is_ok(), "apply Deposited");
  d = t->decide(*s, t->command_index("Withdraw"), R"({"amount":40})", "w-1", 1);
  check(d.status.code() == aether::StatusCode::kRejected && d.reject_code == "insufficient_funds" &&
            d.status.message() == "balance 30 is less than 40",
        "Withdraw beyond the balance is rejected with the plugin's message (exception crossed as status)");
  auto v = t->view(*s);
  check(v.is_ok() && *v == R"({"balance":30})", "view: " + (v ? *v : ""));
  t->destroy(*s);
  std::printf("%d failed\n", failures);
  return failures == 0 ? 0 : 1;
}
