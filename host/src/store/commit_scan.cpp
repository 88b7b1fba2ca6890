#include "store/commit_scan.hpp"

#include "core/json_limits.hpp"

namespace aether {

namespace {

class Scanner {
 public:
  explicit Scanner(std::string_view s) : s_(s) {}

  bool at_end() {
    ws();
    return i_ == s_.size();
  }

  bool eat(char c) {
    ws();
    if (i_ < s_.size() && s_[i_] == c) {
      ++i_;
      return true;
    }
    return false;
  }

  bool peek(char c) {
    ws();
    return i_ < s_.size() && s_[i_] == c;
  }

  // A string without escapes (keys, type names).
  bool plain_string(std::string_view& out) {
    if (!eat('"')) return false;
    const size_t start = i_;
    while (i_ < s_.size() && s_[i_] != '"') {
      if (s_[i_] == '\\' || static_cast<unsigned char>(s_[i_]) < 0x20) return false;
      ++i_;
    }
    if (i_ == s_.size()) return false;
    out = s_.substr(start, i_ - start);
    ++i_;
    return true;
  }

  bool integer(int64_t& out) {
    ws();
    bool neg = false;
    if (i_ < s_.size() && s_[i_] == '-') {
      neg = true;
      ++i_;
    }
    const size_t start = i_;
    int64_t v = 0;
    while (i_ < s_.size() && s_[i_] >= '0' && s_[i_] <= '9') {
      if (v > (INT64_MAX - 9) / 10) return false;
      v = v * 10 + (s_[i_] - '0');
      ++i_;
    }
    if (i_ == start) return false;
    out = neg ? -v : v;
    return true;
  }

  // Skips one JSON value and returns its text.
  bool value(std::string_view& out) {
    ws();
    const size_t start = i_;
    if (!skip(0)) return false;
    out = s_.substr(start, i_ - start);
    return true;
  }

 private:
  void ws() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\n' || s_[i_] == '\r' || s_[i_] == '\t')) ++i_;
  }

  bool skip_string() {
    ++i_;  // the opening quote
    while (i_ < s_.size()) {
      const char c = s_[i_++];
      if (c == '"') return true;
      if (c == '\\') {
        if (i_ == s_.size()) return false;
        ++i_;
      } else if (static_cast<unsigned char>(c) < 0x20) {
        return false;
      }
    }
    return false;
  }

  // Recursive, one level per nesting level: bounded by kMaxStoredJsonDepth
  // (deeper text is left to the full decoder, which refuses it).
  bool skip(size_t depth) {
    if (i_ == s_.size()) return false;
    const char c = s_[i_];
    if (c == '"') return skip_string();
    if (c == '{' || c == '[') {
      if (depth >= kMaxStoredJsonDepth) return false;
      const char close = c == '{' ? '}' : ']';
      ++i_;
      if (eat(close)) return true;
      for (;;) {
        if (close == '}') {
          ws();
          if (i_ == s_.size() || s_[i_] != '"' || !skip_string() || !eat(':')) return false;
        }
        ws();
        if (!skip(depth + 1)) return false;
        if (eat(',')) continue;
        return eat(close);
      }
    }
    // A number or a literal: up to the next delimiter.
    const size_t start = i_;
    while (i_ < s_.size()) {
      const char d = s_[i_];
      if (d == ',' || d == '}' || d == ']' || d == ' ' || d == '\n' || d == '\r' || d == '\t') break;
      ++i_;
    }
    return i_ > start;
  }

  std::string_view s_;
  size_t i_ = 0;
};

// Walks the members of a JSON object: `member(key)` reads each value
// (false: the text is not of the shape wanted).
template <class Member>
bool each_member(Scanner& sc, Member&& member) {
  if (!sc.eat('{')) return false;
  if (sc.eat('}')) return true;
  for (;;) {
    std::string_view key;
    if (!sc.plain_string(key) || !sc.eat(':') || !member(key)) return false;
    if (sc.eat(',')) continue;
    return sc.eat('}');
  }
}

bool skip_value(Scanner& sc) {
  std::string_view v;
  return sc.value(v);
}

bool scan_event(Scanner& sc, ScannedEvent& e) {
  bool type = false, payload = false;
  const bool read = each_member(sc, [&](std::string_view key) {
    if (key == "type") return type = sc.plain_string(e.type);
    if (key != "payload") return skip_value(sc);
    return payload = sc.value(e.payload);
  });
  return read && type && payload;
}

}  // namespace

bool scan_commit(std::string_view body, ScannedCommit& out) {
  out.timestamp = 0;
  out.events.clear();
  Scanner sc(body);
  bool events = false;
  const bool read = each_member(sc, [&](std::string_view key) {
    if (key == "events") {
      if (!sc.eat('[')) return false;
      if (!sc.eat(']')) {
        for (;;) {
          ScannedEvent e;
          if (!scan_event(sc, e)) return false;
          out.events.push_back(e);
          if (sc.eat(',')) continue;
          if (!sc.eat(']')) return false;
          break;
        }
      }
      return events = true;
    }
    if (key == "timestamp" && !sc.peek('"')) return sc.integer(out.timestamp);
    return skip_value(sc);
  });
  return read && events && sc.at_end();
}

bool scan_commit_head(std::string_view body, ScannedHead& out) {
  out = ScannedHead{};
  Scanner sc(body);
  bool first = false, last = false, id = false;
  const bool read = each_member(sc, [&](std::string_view key) {
    if (key == "first_version" || key == "version") {
      int64_t v = 0;
      if (sc.peek('"') || !sc.integer(v) || v < 0) return false;
      (key == "version" ? out.version : out.first_version) = static_cast<uint64_t>(v);
      (key == "version" ? last : first) = true;
      return true;
    }
    if (key == "commit_id") return id = sc.plain_string(out.commit_id);
    if (key == "idempotency_key") return sc.plain_string(out.idempotency_key);
    if (key == "command_digest") return sc.plain_string(out.command_digest);
    return skip_value(sc);
  });
  return read && first && last && id && sc.at_end();
}

}  // namespace aether
