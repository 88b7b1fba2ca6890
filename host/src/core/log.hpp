// Host logging, kept free of spdlog so that widely included headers stay
// light. The sink is spdlog (see log.cpp); format in the caller.
#pragma once

#include <string_view>

namespace aether::log {

enum class Level { kDebug, kInfo, kWarn, kError };

void write(Level level, std::string_view message);
inline void debug(std::string_view m) { write(Level::kDebug, m); }
inline void info(std::string_view m) { write(Level::kInfo, m); }
inline void warn(std::string_view m) { write(Level::kWarn, m); }
inline void error(std::string_view m) { write(Level::kError, m); }

// Configures the process-wide logger: level "debug", "info", "warn", "error"
// or "off"; format "text" or "json" (one JSON object per line). Returns false
// for an unknown level or format.
bool configure(std::string_view level, std::string_view format);

}  // namespace aether::log
