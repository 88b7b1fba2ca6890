// core/json_limits: the depth and UTF-8 checks made before any JSON is parsed.
#include "core/json_limits.hpp"

#include <gtest/gtest.h>

#include <string>

namespace aether {
namespace {

std::string nested(size_t depth, char open = '[', char close = ']') {
  return std::string(depth, open) + std::string(depth, close);
}

TEST(JsonDepth, CountsBracketsAndBraces) {
  EXPECT_EQ(json_depth("", 64), 0u);
  EXPECT_EQ(json_depth("42", 64), 0u);
  EXPECT_EQ(json_depth("{}", 64), 1u);
  EXPECT_EQ(json_depth(R"({"a":[1,{"b":[]}],"c":{}})", 64), 4u);
  EXPECT_EQ(json_depth(nested(64), 64), 64u);
  EXPECT_EQ(json_depth(R"([[1],[[2]],[3]])", 64), 3u);
}

TEST(JsonDepth, IgnoresBracketsInStringsAndHonoursEscapes) {
  EXPECT_EQ(json_depth(R"({"a":"[[[[{{{{"})", 2), 1u);
  EXPECT_EQ(json_depth(R"({"a":"\"[[[["})", 2), 1u);
  EXPECT_EQ(json_depth(R"({"a":"\\",  "b":[[]]})", 8), 3u);
  EXPECT_EQ(json_depth(R"(["\\\"[[[[", [1]])", 8), 2u);
}

TEST(JsonDepth, StopsPastTheLimit) {
  // 70,000 deep: the scan stops at the limit, without recursion.
  EXPECT_EQ(json_depth(nested(70000), 64), 65u);
  EXPECT_EQ(json_depth(nested(65, '{', '}'), 64), 65u);
  EXPECT_EQ(json_depth(std::string(1'000'000, '['), 1000), 1001u);
  // Unbalanced closers do not make the depth negative.
  EXPECT_EQ(json_depth("]]]]}}[[", 64), 2u);
}

TEST(Utf8, FindsTheFirstInvalidByte) {
  EXPECT_EQ(invalid_utf8_at("plain ascii"), std::string_view::npos);
  EXPECT_EQ(invalid_utf8_at("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"), std::string_view::npos);
  EXPECT_EQ(invalid_utf8_at("ab\xff"), 2u);
  EXPECT_EQ(invalid_utf8_at("\xc3"), 0u);                  // truncated
  EXPECT_EQ(invalid_utf8_at("x\xc0\xaf"), 1u);             // overlong '/'
  EXPECT_EQ(invalid_utf8_at("\xed\xa0\x80"), 0u);          // a surrogate
  EXPECT_EQ(invalid_utf8_at("\xf4\x90\x80\x80"), 0u);      // above U+10FFFF
  EXPECT_EQ(invalid_utf8_at("\xe2\x28\xa1"), 0u);          // bad continuation
  EXPECT_EQ(invalid_utf8_at(std::string("a\0b", 3)), std::string_view::npos);
}

TEST(CheckJsonText, NamesWhatAndTheLimit) {
  EXPECT_TRUE(check_json_text(R"({"command":"X"})", 64, "request body").is_ok());
  Status s = check_json_text(nested(70000), 64, "request body", "api.max_json_depth");
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "request body nests deeper than 64 levels (api.max_json_depth)");
  s = check_json_text(nested(3), 2, "event payload");
  EXPECT_EQ(s.message(), "event payload nests deeper than 2 levels");
  s = check_json_text("{\"a\":\"\xff\"}", 64, "request body");
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "request body is not valid UTF-8 (byte 6)");
}

}  // namespace
}  // namespace aether
