// The plugin loader: handshake, model validation, registry rules, and every
// error it must explain.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "plugin/plugin.hpp"
#include "support/maps.hpp"

namespace aether {
namespace {

namespace fs = std::filesystem;

fs::path plugin_path(const std::string& name) { return fs::path(AETHER_PLUGIN_DIR) / (name + ".so"); }
fs::path test_plugin(const std::string& name) {
  return fs::path(AETHER_TEST_PLUGIN_DIR) / (name + ".so");
}

// Expects `file` to fail to load with a message naming the file and
// containing every one of `parts`.
void expect_load_error(const fs::path& file, const std::vector<std::string>& parts) {
  auto r = Plugin::open(file);
  ASSERT_FALSE(r.is_ok()) << file;
  const std::string& m = r.status().message();
  EXPECT_NE(m.find(file.string()), std::string::npos) << "message does not name the file: " << m;
  for (const auto& p : parts) EXPECT_NE(m.find(p), std::string::npos) << "missing '" << p << "' in: " << m;
}

TEST(PluginLoader, LoadsTheExamplePluginsAndTheirModels) {
  auto bank = Plugin::open(plugin_path("bank"));
  ASSERT_TRUE(bank.is_ok()) << bank.status().to_string();
  EXPECT_EQ((*bank)->name(), "bank");
  EXPECT_EQ((*bank)->abi_major(), 1u);
  const ActorType* t = (*bank)->find_type("BankAccount");
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->commands(), (std::vector<std::string>{"Open", "Deposit", "Withdraw", "Close"}));
  EXPECT_EQ(t->events(), (std::vector<std::string>{"Opened", "Deposited", "Withdrawn", "Closed"}));
  EXPECT_EQ(t->command_index("Withdraw"), 2);
  EXPECT_EQ(t->command_index("Steal"), -1);

  auto counter = Plugin::open(plugin_path("counter"));
  ASSERT_TRUE(counter.is_ok()) << counter.status().to_string();
  EXPECT_NE((*counter)->find_type("Counter"), nullptr);
  auto order = Plugin::open(plugin_path("order"));
  ASSERT_TRUE(order.is_ok()) << order.status().to_string();
  EXPECT_NE((*order)->find_type("Order"), nullptr);
}

TEST(PluginLoader, DrivesHooksThroughTheAbi) {
  auto bank = Plugin::open(plugin_path("bank"));
  ASSERT_TRUE(bank.is_ok());
  const ActorType& t = *(*bank)->find_type("BankAccount");
  auto state = t.create();
  ASSERT_TRUE(state.is_ok());
  const std::string id = "acc-1";

  Decision d = t.decide(*state, t.command_index("Open"), R"({"owner":"ann"})", id, 0);
  ASSERT_TRUE(d.status.is_ok()) << d.status.to_string();
  ASSERT_EQ(d.events.size(), 1u);
  EXPECT_EQ(t.events()[d.events[0].index], "Opened");
  ASSERT_TRUE(t.apply(*state, d.events[0].index, d.events[0].payload, 1).is_ok());

  d = t.decide(*state, t.command_index("Withdraw"), R"({"amount":5})", id, 1);
  EXPECT_EQ(d.status.code(), StatusCode::kRejected);
  EXPECT_EQ(d.reject_code, "insufficient_funds");
  EXPECT_NE(d.status.message().find("insufficient funds"), std::string::npos);
  EXPECT_TRUE(d.events.empty());

  d = t.decide(*state, t.command_index("Deposit"), R"({"amount":"lots"})", id, 1);
  EXPECT_EQ(d.status.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(d.status.message().find("amount"), std::string::npos) << d.status.message();

  d = t.decide(*state, t.command_index("Deposit"), R"({"amount":)", id, 1);
  EXPECT_EQ(d.status.code(), StatusCode::kInvalidArgument) << d.status.to_string();

  auto snap = t.snapshot(*state);
  ASSERT_TRUE(snap.is_ok());
  auto other = t.create();
  ASSERT_TRUE(t.restore(*other, *snap).is_ok());
  auto v = t.view(*other);
  ASSERT_TRUE(v.is_ok());
  EXPECT_NE(v->find("\"owner\":\"ann\""), std::string::npos) << *v;
  EXPECT_EQ(t.restore(*other, "not json").code(), StatusCode::kPluginError);
  t.destroy(*state);
  t.destroy(*other);
}

TEST(PluginLoader, MissingFile) {
  expect_load_error(test_plugin("does_not_exist"), {"no such file"});
}

TEST(PluginLoader, NotASharedLibrary) {
  const fs::path text = fs::temp_directory_path() / "aether_not_a_library.so";
  std::ofstream(text) << "this is text, not code\n";
  expect_load_error(text, {"not a shared library"});
  fs::remove(text);
}

TEST(PluginLoader, ATruncatedLibraryIsNotLoadable) {
  // An ELF header that dlopen refuses: the message carries the loader's reason.
  const fs::path cut = fs::temp_directory_path() / "aether_truncated.so";
  std::ifstream in(plugin_path("bank"), std::ios::binary);
  std::string head(200, '\0');
  in.read(head.data(), static_cast<std::streamsize>(head.size()));
  std::ofstream(cut, std::ios::binary) << head;
  expect_load_error(cut, {"not a loadable shared library"});
  fs::remove(cut);
}

TEST(PluginLoader, EntrySymbolMissing) {
  expect_load_error(test_plugin("no_entry"), {"entry symbol 'aether_plugin_entry' is missing"});
}

TEST(PluginLoader, AbiMajorMismatchNamesBothVersions) {
  expect_load_error(test_plugin("abi_major2"), {"ABI 2.0", "ABI 1.0", "major versions must match"});
}

TEST(PluginLoader, OlderMinorWithSmallerTablesIsAccepted) {
  auto p = Plugin::open(test_plugin("old_minor"));
  ASSERT_TRUE(p.is_ok()) << p.status().to_string();
  const ActorType* t = (*p)->find_type("Probe");
  ASSERT_NE(t, nullptr);
  // The members past the plugin's struct_size hold garbage; they must be
  // treated as absent, never read.
  EXPECT_FALSE(t->has_upgrade());
  auto s = t->create();
  ASSERT_TRUE(s.is_ok());
  Decision d = t->decide(*s, 0, "{}", "x", 0);
  ASSERT_TRUE(d.status.is_ok()) << d.status.to_string();
  EXPECT_TRUE(t->apply(*s, d.events[0].index, d.events[0].payload, 1).is_ok());
  t->destroy(*s);
}

TEST(PluginLoader, NewerMinorIsAcceptedAndExtraMembersIgnored) {
  auto p = Plugin::open(test_plugin("newer_minor"));
  ASSERT_TRUE(p.is_ok()) << p.status().to_string();
  EXPECT_EQ((*p)->abi_minor(), static_cast<uint32_t>(AETHER_ABI_MINOR + 3));
}

TEST(PluginLoader, MalformedModels) {
  expect_load_error(test_plugin("empty_name"), {"malformed model", "event name #2", "is empty"});
  expect_load_error(test_plugin("dup_command"), {"malformed model", "duplicate", "command name 'Hit'"});
  expect_load_error(test_plugin("non_utf8"), {"malformed model", "not valid UTF-8"});
  expect_load_error(test_plugin("unsafe_name"),
                    {"malformed model", "'bad.name'", "contains '.'", "NATS subject"});
  expect_load_error(test_plugin("no_hook"), {"malformed model", "no on_apply hook"});
}

TEST(PluginRegistry, ActorTypeAlreadyRegisteredByAnotherPlugin) {
  PluginRegistry reg;
  ASSERT_TRUE(reg.load(plugin_path("bank")).is_ok());
  auto r = reg.load(test_plugin("dup_type"));
  ASSERT_FALSE(r.is_ok());
  const std::string& m = r.status().message();
  EXPECT_NE(m.find(test_plugin("dup_type").string()), std::string::npos) << m;
  EXPECT_NE(m.find("actor type BankAccount is already registered by plugin bank"), std::string::npos) << m;
  // Nothing of the refused plugin stays registered.
  EXPECT_EQ(reg.find_plugin("impostor"), nullptr);
  EXPECT_EQ(reg.plugin_for_type("BankAccount")->name(), "bank");
}

TEST(PluginRegistry, SamePluginNameTwice) {
  PluginRegistry reg;
  ASSERT_TRUE(reg.load(plugin_path("counter")).is_ok());
  auto r = reg.load(plugin_path("counter"));
  ASSERT_FALSE(r.is_ok());
  EXPECT_NE(r.status().message().find("a plugin named counter is already loaded"), std::string::npos);
}

TEST(PluginRegistry, LoadUnloadHundredTimesLeavesNoMapping) {
  const fs::path file = fs::canonical(plugin_path("bank"));
  for (int i = 0; i < 100; ++i) {
    PluginRegistry reg;
    {
      auto p = reg.load(file);
      ASSERT_TRUE(p.is_ok()) << p.status().to_string();
      if (i == 0) {
        ASSERT_TRUE(test::is_mapped(file)) << "the loaded plugin should be mapped";
      }
      // Exercise the image so that lazily initialised statics exist too.
      const ActorType* t = (*p)->find_type("BankAccount");
      auto s = t->create();
      Decision d = t->decide(*s, 0, R"({"owner":"x"})", "id", 0);
      ASSERT_TRUE(d.status.is_ok());
      t->destroy(*s);
    }
    ASSERT_TRUE(reg.unload("bank").is_ok());
    ASSERT_FALSE(test::is_mapped(file)) << "still mapped after unload #" << i + 1;
  }
  EXPECT_FALSE(test::is_mapped(file)) << "bank.so is still mapped after 100 load/unload cycles";
}

}  // namespace
}  // namespace aether
