// Loads the out-of-tree guestbook plugin (examples/external-plugin), built
// by tests/scripts/external_plugin.sh with another compiler against the
// installed SDK, into this g++-built host code and drives it.
// Usage: external_plugin_check PATH/guestbook.so
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
  const aether::ActorType* t = (*p)->find_type("GuestBook");
  check(t != nullptr, "actor type GuestBook is registered");
  if (t == nullptr) return 1;
  auto s = t->create();
  check(s.is_ok(), "create state");
  auto d = t->decide(*s, t->command_index("Sign"), R"({"name":"ada"})", "book-1", 0);
  check(d.status.is_ok() && d.events.size() == 1, "Sign emits one event");
  check(t->apply(*s, d.events[0].index, d.events[0].payload, 1).is_ok(), "apply Signed");
  d = t->decide(*s, t->command_index("Lock"), "{}", "book-1", 1);
  check(t->apply(*s, d.events[0].index, d.events[0].payload, 2).is_ok(), "apply Locked");
  d = t->decide(*s, t->command_index("Sign"), R"({"name":"bob"})", "book-1", 2);
  check(d.status.code() == aether::StatusCode::kRejected && d.reject_code == "locked" &&
            d.status.message() == "the guest book is locked",
        "Sign on a locked book is rejected with the plugin's message (exception crossed as status)");
  auto v = t->view(*s);
  check(v.is_ok() && *v == R"({"locked":true,"signatures":["ada"]})", "view: " + (v ? *v : ""));
  t->destroy(*s);
  std::printf("%d failed\n", failures);
  return failures == 0 ? 0 : 1;
}
