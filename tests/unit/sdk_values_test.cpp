// Strict values in the SDK: aether::field<T> and typed commands refuse every
// value they would have to change (a fraction, an out-of-range number, a
// string for a number, a number for a boolean, null), naming the field, the
// expected type and the value.
#include <aether/sdk.hpp>
#include <aether/testing.hpp>
#include <gtest/gtest.h>

#include <cstdint>
#include <string>

extern "C" aether_status aether_plugin_entry(const aether_host_api*, const aether_type_plugin_def**);

namespace {

using aether::json;

// The message field<T> throws for {"v": <text>}, or "" if it accepts it.
template <class T>
std::string refusal(const std::string& text) {
  try {
    (void)aether::field<T>(json::parse(R"({"v":)" + text + "}"), "v");
    return "";
  } catch (const aether::BadInput& e) {
    return e.what();
  }
}

TEST(SdkValues, IntegersRefuseWhatTheyWouldChange) {
  EXPECT_EQ(refusal<int64_t>("2.5"),
            "field 'v': expected an integer between -9223372036854775808 and "
            "9223372036854775807, got 2.5");
  EXPECT_NE(refusal<int64_t>("1e300").find("got 1e+300"), std::string::npos);
  EXPECT_NE(refusal<int64_t>("18446744073709551615").find("got 18446744073709551615"),
            std::string::npos);
  EXPECT_NE(refusal<int64_t>(R"("7")").find(R"(got "7")"), std::string::npos);
  EXPECT_NE(refusal<int64_t>("true").find("got true"), std::string::npos);
  EXPECT_NE(refusal<int64_t>("null").find("got null"), std::string::npos);
  EXPECT_EQ(refusal<uint64_t>("-1"),
            "field 'v': expected an unsigned integer between 0 and 18446744073709551615, got -1");
  EXPECT_NE(refusal<uint32_t>("4294967296").find("4294967295"), std::string::npos);
  EXPECT_NE(refusal<int32_t>("-2147483649").find("got -2147483649"), std::string::npos);
  EXPECT_NE(refusal<int64_t>("9223372036854775808.0").find("expected an integer"), std::string::npos);
}

TEST(SdkValues, IntegersTakeExactValues) {
  const json j = json::parse(
      R"({"a":-9223372036854775808,"b":18446744073709551615,"c":2.0,"d":4294967295,"e":-3})");
  EXPECT_EQ(aether::field<int64_t>(j, "a"), INT64_MIN);
  EXPECT_EQ(aether::field<uint64_t>(j, "b"), UINT64_MAX);
  EXPECT_EQ(aether::field<int64_t>(j, "c"), 2);
  EXPECT_EQ(aether::field<uint32_t>(j, "d"), 4294967295u);
  EXPECT_EQ(aether::field<int>(j, "e"), -3);
  EXPECT_EQ(aether::field_or<int64_t>(j, "missing", 7), 7);
}

TEST(SdkValues, StringsBooleansAndRealsAreNotConverted) {
  EXPECT_EQ(refusal<std::string>("7"), "field 'v': expected a string, got 7");
  EXPECT_EQ(refusal<std::string>("null"), "field 'v': expected a string, got null");
  EXPECT_EQ(refusal<bool>("1"), "field 'v': expected a boolean, got 1");
  EXPECT_EQ(refusal<bool>("null"), "field 'v': expected a boolean, got null");
  EXPECT_EQ(refusal<double>(R"("2.5")"), R"(field 'v': expected a number, got "2.5")");
  EXPECT_EQ(refusal<double>("null"), "field 'v': expected a number, got null");
  EXPECT_NE(refusal<float>("1e300").find("32-bit float"), std::string::npos);
  EXPECT_EQ(refusal<double>("1e300"), "");
  EXPECT_EQ(refusal<bool>("false"), "");
}

struct Line {
  std::string sku;
  uint32_t qty = 0;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(Line, sku, qty)
struct Order {
  int64_t id = 0;
  std::vector<Line> lines = {Line{}};
  bool rush = false;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(Order, id, lines, rush)

std::string decode_refusal(const std::string& text) {
  try {
    (void)aether::decode<Order>(json::parse(text));
    return "";
  } catch (const aether::BadInput& e) {
    return e.what();
  }
}

TEST(SdkValues, StructsAreReadMemberByMember) {
  const Order o = aether::decode<Order>(
      json::parse(R"({"id":3.0,"lines":[{"sku":"a","qty":2}],"rush":true})"));
  EXPECT_EQ(o.id, 3);
  EXPECT_EQ(o.lines.at(0).qty, 2u);
  EXPECT_NE(decode_refusal(R"({"id":2.5,"lines":[],"rush":false})").find("field 'id'"),
            std::string::npos);
  EXPECT_EQ(decode_refusal(R"({"id":1,"lines":[{"sku":"a","qty":4294967296}],"rush":false})"),
            "field 'lines[0].qty': expected an integer that fits the member's type, got 4294967296");
  EXPECT_EQ(decode_refusal(R"({"id":1,"lines":[{"sku":"a","qty":-1}],"rush":false})"),
            "field 'lines[0].qty': expected an unsigned integer between 0 and "
            "18446744073709551615, got -1");
  EXPECT_EQ(decode_refusal(R"({"id":1,"lines":[],"rush":1})"),
            "field 'rush': expected a boolean, got 1");
  EXPECT_NE(decode_refusal(R"({"id":1,"lines":[]})").find("payload could not be read"),
            std::string::npos);
  EXPECT_EQ(decode_refusal("[1]"), "payload: expected an object, got [1]");
}

// Through the plugin (tests/plugins/strict_values.cpp): refusals are
// AETHER_ERR_BAD_INPUT with the message; typed commands and events work.
TEST(SdkValues, PluginRefusesAndTypedCommandsWork) {
  aether::testing::FakeHost host(aether_plugin_entry);
  auto a = host.actor("Strict", "s1");
  for (const char* bad : {R"({"v":2.5})", R"({"v":1e300})", R"({"v":18446744073709551615})",
                          R"({"v":"7"})", R"({"v":true})", R"({"v":null})"}) {
    auto r = a.send("SetI64", bad);
    EXPECT_EQ(r.status, AETHER_ERR_BAD_INPUT) << bad;
    EXPECT_NE(r.message.find("field 'v': expected an integer"), std::string::npos) << r.message;
  }
  EXPECT_EQ(a.send("SetU64", R"({"v":-1})").status, AETHER_ERR_BAD_INPUT);
  EXPECT_EQ(a.send("SetFlag", R"({"v":0})").status, AETHER_ERR_BAD_INPUT);
  ASSERT_TRUE(a.send("SetI64", R"({"v":-5})").ok());
  auto r = a.send("Deposit", R"({"amount":30,"units":1,"memo":"x"})");
  ASSERT_TRUE(r.ok()) << r.message;
  EXPECT_EQ(r.events.at(0).payload, R"({"amount":30})");
  r = a.send("Deposit", R"({"amount":2.5,"units":1,"memo":"x"})");
  EXPECT_EQ(r.status, AETHER_ERR_BAD_INPUT);
  EXPECT_NE(r.message.find("field 'amount'"), std::string::npos) << r.message;
  const json view = json::parse(a.view().output);
  EXPECT_EQ(view["i64"], -5);
  EXPECT_EQ(view["deposited"], 30);
}

}  // namespace
