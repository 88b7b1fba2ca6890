#include "core/log.hpp"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <cstdio>
#include <memory>
#include <string>

namespace aether::log {
namespace {

std::shared_ptr<spdlog::logger> make_logger() {
  auto logger = spdlog::stderr_color_mt("aether");
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%-5l%$ %v");
  logger->set_level(spdlog::level::info);
  return logger;
}

spdlog::logger& logger() {
  static std::shared_ptr<spdlog::logger> l = make_logger();
  return *l;
}

std::atomic<bool> g_json{false};

// Escapes `m` for the inside of a JSON string.
std::string json_escape(std::string_view m) {
  std::string out;
  out.reserve(m.size() + 8);
  for (unsigned char c : m) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

}  // namespace

void write(Level level, std::string_view message) {
  static constexpr spdlog::level::level_enum kMap[] = {
      spdlog::level::debug, spdlog::level::info, spdlog::level::warn, spdlog::level::err};
  const auto lv = kMap[static_cast<int>(level)];
  if (!logger().should_log(lv)) return;
  if (g_json.load(std::memory_order_relaxed)) {
    logger().log(lv, json_escape(message));
  } else {
    logger().log(lv, message);
  }
}

bool configure(std::string_view level, std::string_view format) {
  spdlog::level::level_enum lv;
  if (level == "debug") lv = spdlog::level::debug;
  else if (level == "info") lv = spdlog::level::info;
  else if (level == "warn") lv = spdlog::level::warn;
  else if (level == "error") lv = spdlog::level::err;
  else if (level == "off") lv = spdlog::level::off;
  else return false;
  if (format == "json") {
    g_json = true;
    logger().set_pattern(
        R"({"time":"%Y-%m-%dT%H:%M:%S.%eZ","level":"%l","msg":"%v"})", spdlog::pattern_time_type::utc);
  } else if (format == "text") {
    g_json = false;
    logger().set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%-5l%$ %v");
  } else {
    return false;
  }
  logger().set_level(lv);
  return true;
}

}  // namespace aether::log
