// aether C++ SDK: strict reading of JSON values into C++ values.
//
// A domain plugin must never see a value the client did not send, so these
// functions refuse every conversion that would change a value instead of
// converting it:
//   - integer types take JSON integers in their range, and numbers written
//     with a fraction or exponent only when their value is a whole number in
//     range (2.0 -> 2; 2.5, 1e300 refused); unsigned types refuse negatives;
//   - floating-point types take any JSON number that fits;
//   - bool takes only true and false, std::string only strings;
//   - null is refused for all of them.
// A refusal throws aether::BadInput naming the field, the expected type and
// the value: "field 'qty': expected an integer between 0 and 4294967295, got
// -1".
//
// Structs bound with nlohmann's type macros (NLOHMANN_DEFINE_TYPE_*) are read
// with decode<T>(): every member the JSON holds is checked the same way, by
// the type of the member in a default-constructed T, and the struct read back
// must equal what was sent (a member narrower than 64 bits refuses a value
// that does not fit it).
#ifndef AETHER_VALUES_HPP
#define AETHER_VALUES_HPP

#include <cmath>
#include <cstdint>
#include <limits>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>

namespace aether {

using json = nlohmann::json;

// Thrown by plugin code for input it cannot use (a missing or mistyped field).
// Becomes AETHER_ERR_BAD_INPUT with the message.
class BadInput : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

namespace values {

// A value as the message shows it: its JSON text, cut at 64 bytes.
inline std::string show(const json& v) {
  std::string s = v.dump(-1, ' ', false, json::error_handler_t::replace);
  if (s.size() > 64) s = s.substr(0, 61) + "...";
  return s;
}

// `path` is the field ("qty", "items[2].sku"), or empty for the whole payload.
[[noreturn]] inline void refuse(std::string_view path, const std::string& expected,
                                const json& got) {
  const std::string where = path.empty() ? "payload" : "field '" + std::string(path) + "'";
  throw BadInput(where + ": expected " + expected + ", got " + show(got));
}

template <class T>
std::string integer_expected() {
  return std::string(std::is_signed_v<T> ? "an integer" : "an unsigned integer") +
         " between " + std::to_string(std::numeric_limits<T>::min()) + " and " +
         std::to_string(std::numeric_limits<T>::max());
}

// A JSON number whose value is exactly a T, as a T; refuses anything else.
template <class T>
T integer(const json& v, std::string_view path) {
  using L = std::numeric_limits<T>;
  if (v.is_number_unsigned()) {
    const auto u = v.get<uint64_t>();
    if (u <= static_cast<uint64_t>(L::max())) return static_cast<T>(u);
  } else if (v.is_number_integer()) {
    const auto i = v.get<int64_t>();
    const bool fits = std::is_signed_v<T>
                          ? i >= static_cast<int64_t>(L::min()) &&
                                i <= static_cast<int64_t>(L::max())
                          : i >= 0 && static_cast<uint64_t>(i) <= static_cast<uint64_t>(L::max());
    if (fits) return static_cast<T>(i);
  } else if (v.is_number_float()) {
    // Whole numbers in [min, 2^digits) convert exactly; the bounds are
    // powers of two, so the comparisons are exact in double.
    const double d = v.get<double>();
    if (std::trunc(d) == d && d >= static_cast<double>(L::min()) &&
        d < std::ldexp(1.0, L::digits)) {
      return static_cast<T>(d);
    }
  }
  refuse(path, integer_expected<T>(), v);
}

// Reads `v` as T by the rules at the top of this file. T: bool, an integer
// or floating-point type, std::string, or aether::json (taken as is).
template <class T>
T scalar(const json& v, std::string_view path) {
  if constexpr (std::is_same_v<T, bool>) {
    if (!v.is_boolean()) refuse(path, "a boolean", v);
    return v.get<bool>();
  } else if constexpr (std::is_integral_v<T>) {
    return integer<T>(v, path);
  } else if constexpr (std::is_floating_point_v<T>) {
    if (!v.is_number()) refuse(path, "a number", v);
    const double d = v.get<double>();
    if (std::isfinite(d) && std::abs(d) > static_cast<double>(std::numeric_limits<T>::max())) {
      refuse(path, "a number that fits a " + std::to_string(sizeof(T) * 8) + "-bit float", v);
    }
    return static_cast<T>(d);
  } else if constexpr (std::is_same_v<T, std::string>) {
    if (!v.is_string()) refuse(path, "a string", v);
    return v.get<std::string>();
  } else {
    static_assert(std::is_same_v<T, json>, "not a scalar type");
    return v;
  }
}

template <class T>
inline constexpr bool is_scalar_v = std::is_arithmetic_v<T> || std::is_same_v<T, std::string> ||
                                    std::is_same_v<T, json>;

inline std::string join(std::string_view path, std::string_view key) {
  return path.empty() ? std::string(key) : std::string(path) + "." + std::string(key);
}

// Checks `sent` against `shape` (the JSON form of a default T) and returns
// it with whole numbers sent as floats turned into integers where the shape
// holds an integer, so the conversion to T never sees a fraction. Members of
// `sent` the shape does not know are left alone (nlohmann ignores them);
// null in the shape (std::optional, pointers) and empty arrays accept any value.
inline json checked(const json& sent, const json& shape, std::string_view path) {
  switch (shape.type()) {
    case json::value_t::boolean: return scalar<bool>(sent, path);
    case json::value_t::number_integer: return scalar<int64_t>(sent, path);
    case json::value_t::number_unsigned: return scalar<uint64_t>(sent, path);
    case json::value_t::number_float: return scalar<double>(sent, path);
    case json::value_t::string: return scalar<std::string>(sent, path);
    case json::value_t::object: {
      if (!sent.is_object()) refuse(path, "an object", sent);
      json out = sent;
      for (auto it = shape.begin(); it != shape.end(); ++it) {
        auto s = sent.find(it.key());
        if (s != sent.end()) out[it.key()] = checked(*s, it.value(), join(path, it.key()));
      }
      return out;
    }
    case json::value_t::array: {
      if (!sent.is_array()) refuse(path, "an array", sent);
      if (shape.empty()) return sent;
      json out = json::array();
      for (size_t i = 0; i < sent.size(); ++i) {
        out.push_back(checked(sent[i], shape[0], std::string(path) + "[" + std::to_string(i) + "]"));
      }
      return out;
    }
    default: return sent;
  }
}

// Refuses the first integer of `sent` that reads back as another value (a
// member narrower than the 64-bit integer it got).
inline void same_integers(const json& sent, const json& back, std::string_view path) {
  const auto integer = [](const json& v) { return v.is_number_integer() || v.is_number_unsigned(); };
  if (integer(sent) && integer(back)) {
    if (sent.dump() != back.dump()) refuse(path, "an integer that fits the member's type", sent);
  } else if (sent.is_object() && back.is_object()) {
    for (auto it = back.begin(); it != back.end(); ++it) {
      auto s = sent.find(it.key());
      if (s != sent.end()) same_integers(*s, it.value(), join(path, it.key()));
    }
  } else if (sent.is_array() && back.is_array() && sent.size() == back.size()) {
    for (size_t i = 0; i < sent.size(); ++i) {
      same_integers(sent[i], back[i], std::string(path) + "[" + std::to_string(i) + "]");
    }
  }
}

// decode() at `path` (empty: the whole payload).
template <class T>
T read(const json& value, std::string_view path) {
  if constexpr (is_scalar_v<T>) {
    return scalar<T>(value, path);
  } else {
    json sent = value;
    if constexpr (std::is_default_constructible_v<T>) sent = checked(value, json(T{}), path);
    T out;
    try {
      out = sent.template get<T>();
    } catch (const json::exception& e) {
      throw BadInput((path.empty() ? std::string("payload") : "field '" + std::string(path) + "'") +
                     " could not be read: " + e.what());
    }
    same_integers(sent, json(out), path);
    return out;
  }
}

}  // namespace values

// Reads a whole payload as T: scalars by the rules above, structs bound with
// nlohmann's macros member by member.
template <class T>
T decode(const json& payload) {
  return values::read<T>(payload, {});
}

// Reads a required field of a JSON object as T, or throws BadInput naming the
// field and what was wrong (see the rules at the top of this file).
template <class T>
T field(const json& object, std::string_view name) {
  if (!object.is_object()) throw BadInput("payload must be a JSON object");
  auto it = object.find(name);
  if (it == object.end()) {
    throw BadInput("missing field '" + std::string(name) + "'");
  }
  return values::read<T>(*it, name);
}

// Reads an optional field, or returns `fallback` when it is absent or null.
template <class T>
T field_or(const json& object, std::string_view name, T fallback) {
  if (!object.is_object()) throw BadInput("payload must be a JSON object");
  auto it = object.find(name);
  if (it == object.end() || it->is_null()) return fallback;
  return values::read<T>(*it, name);
}

}  // namespace aether

#endif  // AETHER_VALUES_HPP
