// The web console's files (host/src/api/ui/), compiled into aether-host by
// cmake/embed_files.cmake, served under /ui (docs/console.md).
#pragma once

#include <string_view>

namespace aether {

struct ConsoleAsset {
  std::string_view name;  // relative to ui/, e.g. "app.js"
  std::string_view data;
};

// The file `name`, or nullptr.
const ConsoleAsset* find_console_asset(std::string_view name);

}  // namespace aether
