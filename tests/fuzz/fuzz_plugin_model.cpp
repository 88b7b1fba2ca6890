// The host's checks of a plugin's declared model (plugin/plugin.cpp,
// Plugin::open): a real dlopen of a stub plugin whose entry hands over a
// table built from the input: struct sizes, ABI versions, names (any bytes,
// or NULL), duplicate and missing names, missing hooks. Any table that keeps
// its pointers valid is loaded or refused with a reason, never a crash.
#include <cstdint>
#include <cstdlib>
#include <deque>
#include <string>
#include <vector>

#include "fuzz_input.hpp"
#include "plugin/plugin.hpp"

namespace {

struct Reader : aether::fuzz::Input {
  // Mostly one of `usual`, sometimes any byte.
  uint32_t pick(uint32_t usual) {
    const uint8_t b = byte();
    return b < 224 ? usual : b;
  }
};

// Storage for one input's tables; every pointer handed over points in here.
struct Model {
  std::deque<std::string> strings;
  std::deque<std::vector<const char*>> name_lists;
  std::deque<aether_type_actor_def> actors;
  std::vector<const aether_type_actor_def*> actor_list;
  aether_type_plugin_def plugin{};
  aether_status entry_status = AETHER_OK;
  bool entry_null = false;
};

Model g_model;

void no_hook() {}

// A name: NULL, one of a few shared ones (duplicates), or bytes of the input.
const char* name(Reader& r) {
  static const char* const kCommon[] = {"Deposit", "Withdraw", "Opened", "a", ""};
  const uint8_t b = r.byte();
  if (b < 8) return nullptr;
  if (b < 64) return kCommon[b % 5];
  g_model.strings.emplace_back(r.bytes(b % 80));
  return g_model.strings.back().c_str();
}

const char* const* name_list(Reader& r, uint32_t& count) {
  count = r.byte() % 6;
  if (r.byte() < 8) return nullptr;
  auto& list = g_model.name_lists.emplace_back();
  for (uint32_t i = 0; i < count; ++i) list.push_back(name(r));
  return list.data();
}

const aether_type_actor_def* actor(Reader& r) {
  if (r.byte() < 4) return nullptr;
  aether_type_actor_def& d = g_model.actors.emplace_back();
  d.struct_size = r.pick(sizeof(aether_type_actor_def));
  d.name = name(r);
  d.state_schema_version = r.byte();
  d.command_names = name_list(r, d.command_count);
  d.event_names = name_list(r, d.event_count);
  const uint8_t missing = r.byte();  // a bit set: that hook is NULL (rarely)
  auto hook = [&](int bit) {
    return missing >= 240 && (missing & (1 << bit)) ? nullptr : reinterpret_cast<void*>(&no_hook);
  };
  d.on_create = reinterpret_cast<aether_on_create>(hook(0));
  d.on_destroy = reinterpret_cast<aether_on_destroy>(hook(1));
  d.on_decide = reinterpret_cast<aether_on_decide>(hook(2));
  d.on_apply = reinterpret_cast<aether_on_apply>(hook(3));
  d.on_snapshot = reinterpret_cast<aether_on_snapshot>(hook(4));
  d.on_restore = reinterpret_cast<aether_on_restore>(hook(5));
  d.on_view = reinterpret_cast<aether_on_view>(hook(6));
  d.on_upgrade_state = reinterpret_cast<aether_on_upgrade_state>(hook(7));
  return &d;
}

void build(Reader& r) {
  g_model = Model();
  const uint8_t mode = r.byte();
  g_model.entry_status = mode >= 250 ? AETHER_ERR_FAILED : AETHER_OK;
  g_model.entry_null = mode == 249;
  aether_type_plugin_def& p = g_model.plugin;
  p.struct_size = r.pick(sizeof(aether_type_plugin_def));
  p.abi_major = r.pick(AETHER_ABI_MAJOR);
  p.abi_minor = r.pick(AETHER_ABI_MINOR);
  p.name = name(r);
  p.version = r.byte() < 8 ? nullptr : "1.0";
  p.actor_type_count = r.byte() % 5;
  for (uint32_t i = 0; i < p.actor_type_count; ++i) g_model.actor_list.push_back(actor(r));
  p.actor_types = r.byte() < 4 ? nullptr : g_model.actor_list.data();
}

void check(bool condition) {
  if (!condition) std::abort();
}

}  // namespace

extern "C" __attribute__((visibility("default"))) aether_status aether_fuzz_model(
    const aether_host_api*, const aether_type_plugin_def** out_def) {
  *out_def = g_model.entry_null ? nullptr : &g_model.plugin;
  return g_model.entry_status;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Reader r{{data, size}};
  build(r);
  auto opened = aether::Plugin::open(AETHER_FUZZ_MODEL_PLUGIN);
  if (!opened) {
    check(!opened.status().message().empty());
    return 0;
  }
  const aether::Plugin& plugin = **opened;
  for (const auto& t : plugin.types()) {
    check(plugin.find_type(t->name()) == t.get());
    for (size_t i = 0; i < t->commands().size(); ++i) check(t->command_index(t->commands()[i]) == int(i));
    for (size_t i = 0; i < t->events().size(); ++i) check(t->event_index(t->events()[i]) == int(i));
  }
  check(aether::breaking_changes(plugin, plugin).empty());
  return 0;
}
