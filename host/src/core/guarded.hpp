// The last-resort catch of a callback or thread body that a third-party
// library (cnats) or a host thread runs: no exception may escape it, since
// one that did would end the process. Expected failures are Status values;
// this only keeps an unexpected one (a bug, std::bad_alloc) to one message.
#pragma once

#include <exception>
#include <string_view>

namespace aether {

// Logs an exception that reached a last-resort catch in `where`.
void log_escaped(std::string_view where, const std::exception_ptr& e) noexcept;

// Runs f(); returns true iff it returned normally. An exception is logged
// as having escaped `where` and swallowed.
template <class F>
bool run_guarded(std::string_view where, F&& f) noexcept {
  try {
    f();
    return true;
  } catch (...) {
    log_escaped(where, std::current_exception());
    return false;
  }
}

}  // namespace aether
