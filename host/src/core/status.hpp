// Status and Result<T>: how expected failures travel through the host.
// Exceptions are for programming errors and the outermost layer only.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace aether {

enum class StatusCode : uint8_t {
  kOk = 0,
  kInvalidArgument,  // bad input from a caller: malformed JSON, unsafe id (400)
  kNotFound,         // unknown actor type, command, plugin (404)
  kConflict,         // expected version did not match (409)
  kRejected,         // the domain refused the command (422)
  kPayloadTooLarge,  // (413)
  kUnauthorized,     // (401)
  kUnavailable,      // a dependency is away or the host is stopping (503)
  kCorruption,       // a stored record could not be read or decoded
  kPluginError,      // a plugin failed (threw, broke the model, bad output)
  kPluginTimeout,    // a plugin call passed its time limit; its actor is quarantined (503)
  kInternal,         // anything else (500)
};

// Returns a stable lower-case name for `code`, e.g. "conflict".
const char* status_code_name(StatusCode code);

// Whether a command that failed may still have taken effect: unknown (not
// said), certainly not, or perhaps (the failure came after it was sent on).
enum class Applied : uint8_t { kUnknown = 0, kNo, kMaybe };

class Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message)
      : code_(code), message_(std::move(message)) {}

  static Status ok() { return {}; }
  static Status invalid(std::string m) { return {StatusCode::kInvalidArgument, std::move(m)}; }
  static Status not_found(std::string m) { return {StatusCode::kNotFound, std::move(m)}; }
  static Status conflict(std::string m) { return {StatusCode::kConflict, std::move(m)}; }
  static Status unavailable(std::string m) { return {StatusCode::kUnavailable, std::move(m)}; }
  static Status corruption(std::string m) { return {StatusCode::kCorruption, std::move(m)}; }
  static Status plugin_error(std::string m) { return {StatusCode::kPluginError, std::move(m)}; }
  static Status internal(std::string m) { return {StatusCode::kInternal, std::move(m)}; }

  bool is_ok() const { return code_ == StatusCode::kOk; }
  explicit operator bool() const { return is_ok(); }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }

  // "conflict: expected version 3, current 4"
  std::string to_string() const;

  // A precise cause within the code, e.g. "publish_not_acknowledged" for an
  // unavailable store: the API error's `code` when set (docs/api.md), with
  // whether the command may have been applied.
  Status with_cause(std::string cause, Applied applied) const {
    Status s = *this;
    s.cause_ = std::move(cause);
    s.applied_ = applied;
    return s;
  }
  const std::string& cause() const { return cause_; }
  Applied applied() const { return applied_; }

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
  std::string cause_;
  Applied applied_ = Applied::kUnknown;
};

// A value or the Status that explains why there is none.
template <class T>
class Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT(google-explicit-constructor)
  Result(Status status) : v_(std::move(status)) {}  // NOLINT(google-explicit-constructor)

  bool is_ok() const { return v_.index() == 0; }
  explicit operator bool() const { return is_ok(); }

  // REQUIRES: is_ok()
  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

  // The failure; an OK status when is_ok().
  const Status& status() const {
    static const Status kOk;
    return is_ok() ? kOk : std::get<1>(v_);
  }

 private:
  std::variant<T, Status> v_;
};

}  // namespace aether
