// The SDK's FakeHost and aether-host's plugin module judge a plugin alike:
// both run the rules of aether/host_rules.hpp. tests/plugins/rule_breaker.c
// breaks them one way per command (invalid, too deep or non-UTF-8 JSON, an
// event outside the model, reject-then-OK, emit-then-reject, bad input, a
// failure, write() in decide); each command goes through the host's
// ActorType::decide and through FakeActor::send, and the two answers must be
// the same error code, message and events.
#include <aether/testing.hpp>
#include <dlfcn.h>
#include <gtest/gtest.h>

#include <map>
#include <string>

#include "plugin/plugin.hpp"

namespace aether {
namespace {

const std::string kBreaker = std::string(AETHER_TEST_PLUGIN_DIR) + "/breaker.so";

// The host's error code for a decide, as the HTTP API names it ("" for OK).
std::string host_error(const Decision& d) {
  return d.status ? "" : status_code_name(d.status.code());
}

class FakeHostRulesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto opened = Plugin::open(kBreaker);
    ASSERT_TRUE(opened) << opened.status().to_string();
    plugin_ = *opened;
    image_ = dlopen(kBreaker.c_str(), RTLD_NOW | RTLD_LOCAL);
    ASSERT_NE(image_, nullptr) << dlerror();
    entry_ = reinterpret_cast<aether_type_entry_fn>(dlsym(image_, AETHER_ENTRY_SYMBOL));
    ASSERT_NE(entry_, nullptr);
  }
  void TearDown() override {
    if (image_ != nullptr) dlclose(image_);
  }

  std::shared_ptr<Plugin> plugin_;
  void* image_ = nullptr;
  aether_type_entry_fn entry_ = nullptr;
};

TEST_F(FakeHostRulesTest, EveryDecideIsJudgedAsTheHostJudgesIt) {
  const ActorType& type = *plugin_->find_type("Breaker");
  testing::FakeHost fake(entry_);
  const std::map<std::string, std::string> expected_error = {
      {"Ok", ""},
      {"EmitBadJson", "plugin_error"},
      {"EmitUnknown", "plugin_error"},
      {"EmitNonUtf8", "plugin_error"},
      {"EmitDeep", "plugin_error"},
      {"RejectThenOk", "rejected"},
      {"EmitThenReject", "rejected"},
      {"BadInput", "invalid_argument"},
      {"Fails", "plugin_error"},
      {"WriteInDecide", "plugin_error"}};
  ASSERT_EQ(type.commands().size(), expected_error.size());
  for (uint32_t i = 0; i < type.commands().size(); ++i) {
    const std::string& name = type.commands()[i];
    auto state = type.create();
    ASSERT_TRUE(state);
    const Decision d = type.decide(*state, i, "{}", "b1", 0);
    type.destroy(*state);
    auto actor = fake.actor("Breaker", "b1");
    const testing::Outcome o = actor.send(name);
    EXPECT_EQ(o.error, expected_error.at(name)) << name << ": " << o.message;
    EXPECT_EQ(o.error, host_error(d)) << name << ": host says " << d.status.to_string();
    EXPECT_EQ(o.events.size(), d.events.size()) << name;
    EXPECT_EQ(o.code, d.reject_code) << name;
    // The host puts where the call ran in front of a plugin error.
    const std::string prefix = d.status.code() == StatusCode::kPluginError
                                   ? "plugin breaker, Breaker.decide: " : "";
    EXPECT_EQ(prefix + o.message, d.status.message()) << name;
    EXPECT_EQ(o.ok(), static_cast<bool>(d.status)) << name;
    EXPECT_EQ(actor.version(), d.status ? 1u : 0u) << name;
  }
}

TEST_F(FakeHostRulesTest, UnknownCommandsAndBadViewsGetTheHostsAnswer) {
  testing::FakeHost fake(entry_);
  auto actor = fake.actor("Breaker", "b2");
  const testing::Outcome o = actor.send("Explode");
  EXPECT_FALSE(o.ok());
  EXPECT_EQ(o.error, "not_found");
  EXPECT_EQ(o.message, "unknown command 'Explode' for actor type Breaker");
  EXPECT_EQ(actor.version(), 0u);

  // The view turns invalid after three events; the host refuses it too.
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(actor.send("Ok").ok());
  const testing::Outcome v = actor.view();
  EXPECT_EQ(v.error, "plugin_error");
  const ActorType& type = *plugin_->find_type("Breaker");
  auto state = type.create();
  ASSERT_TRUE(state);
  for (uint64_t n = 1; n <= 3; ++n) ASSERT_TRUE(type.apply(*state, 0, "{}", n));
  auto host_view = type.view(*state);
  type.destroy(*state);
  ASSERT_FALSE(host_view);
  EXPECT_EQ("plugin breaker, Breaker.view: " + v.message, host_view.status().message());
}

}  // namespace
}  // namespace aether
