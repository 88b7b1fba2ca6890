#include "core/guarded.hpp"

#include <string>

#include "core/log.hpp"

namespace aether {

void log_escaped(std::string_view where, const std::exception_ptr& e) noexcept {
  try {
    std::string what = "an unknown exception";
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& x) {
      what = x.what();
    } catch (...) {
    }
    log::error(std::string(where) + ": unexpected failure, handled as an internal error: " + what);
  } catch (...) {
    // Logging itself failed (out of memory): nothing more to do.
  }
}

}  // namespace aether
