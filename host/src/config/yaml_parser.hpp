// The configuration's YAML walk, shared by the section parsers
// (config_sections.cpp) and the file checks (config.cpp). Internal to the
// config module: include only from its .cpp files (it brings in yaml-cpp).
#pragma once

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "config/config.hpp"
#include "core/names.hpp"

namespace aether::config_internal {

// A non-empty string of decimal digits that fits in 64 bits; nothing else
// (no sign, no spaces, no wrap-around).
std::optional<uint64_t> parse_digits(std::string_view s);

// "250ms", "30s", "5m", "1h" or a number of milliseconds, up to 100 years;
// the error says what was wrong.
Result<int64_t> parse_duration_ms(const std::string& v);

// Walks the YAML tree with the schema, collecting the first error.
class Parser {
 public:
  explicit Parser(std::string file) : file_(std::move(file)) {}

  Status status() const { return status_; }
  bool ok() const { return status_.is_ok(); }

  std::string at(const YAML::Node& n, const std::string& path) const {
    std::string where = file_;
    if (n.Mark().line >= 0) where += ":" + std::to_string(n.Mark().line + 1);
    return where + ": " + path + ": ";
  }

  void fail(const YAML::Node& n, const std::string& path, const std::string& what) {
    if (ok()) status_ = Status::invalid(at(n, path) + what);
  }

  using Handler = std::function<void(const YAML::Node&, const std::string& path)>;

  // Visits a mapping; every key must be in `keys`.
  void map(const YAML::Node& n, const std::string& path,
           const std::vector<std::pair<std::string, Handler>>& keys) {
    if (!ok() || !n || n.IsNull()) return;
    if (!n.IsMap()) return fail(n, path.empty() ? "(top level)" : path, "expected a mapping");
    for (const auto& kv : n) {
      if (!ok()) return;
      const std::string key = kv.first.Scalar();
      const std::string child = path.empty() ? key : path + "." + key;
      const Handler* h = nullptr;
      for (const auto& [name, handler] : keys) {
        if (name == key) h = &handler;
      }
      if (h == nullptr) {
        std::string known;
        for (const auto& [name, _] : keys) known += (known.empty() ? "" : ", ") + name;
        return fail(kv.first, child, "unknown key (known here: " + known + ")");
      }
      (*h)(kv.second, child);
    }
  }

  // What the schema walk cannot see: a key given twice in one mapping
  // (yaml-cpp keeps both, and the walk would take the last silently),
  // nesting deeper than kMaxDepth, more than kMaxNodes nodes (an alias
  // counts again at each use). Iterative, so any shape is safe to check.
  void structure(const YAML::Node& root) {
    constexpr size_t kMaxDepth = 32;
    constexpr size_t kMaxNodes = 100000;
    struct Item {
      YAML::Node node;
      std::string path;
      size_t depth;
    };
    std::vector<Item> todo{{root, "", 0}};
    for (size_t visited = 0; !todo.empty() && ok(); ++visited) {
      Item it = std::move(todo.back());
      todo.pop_back();
      const std::string where = it.path.empty() ? "(top level)" : it.path;
      if (visited >= kMaxNodes) return fail(it.node, where, "more than " + std::to_string(kMaxNodes) + " YAML nodes");
      if (it.depth > kMaxDepth) return fail(it.node, where, "nested deeper than " + std::to_string(kMaxDepth) + " levels");
      if (it.node.IsSequence()) {
        for (size_t i = 0; i < it.node.size(); ++i) {
          todo.push_back({it.node[i], where + "[" + std::to_string(i) + "]", it.depth + 1});
        }
      } else if (it.node.IsMap()) {
        std::map<std::string, int, std::less<>> first_line;
        for (const auto& kv : it.node) {
          const std::string key = kv.first.Scalar();
          const std::string child = it.path.empty() ? key : it.path + "." + key;
          const auto [at, fresh] = first_line.emplace(key, kv.first.Mark().line + 1);
          if (!fresh) return fail(kv.first, child, "duplicate key (first given at line " + std::to_string(at->second) + ")");
          todo.push_back({kv.second, child, it.depth + 1});
        }
      }
    }
  }

  // A scalar with ${...} substituted.
  std::optional<std::string> scalar(const YAML::Node& n, const std::string& path) {
    if (!ok()) return std::nullopt;
    if (!n.IsScalar()) {
      fail(n, path, std::string("expected a scalar value, got a ") +
                        (n.IsMap() ? "mapping" : n.IsSequence() ? "sequence" : "null"));
      return std::nullopt;
    }
    auto v = substitute_env(n.Scalar());
    if (!v) {
      fail(n, path, v.status().message());
      return std::nullopt;
    }
    return std::move(v).value();
  }

  void str(const YAML::Node& n, const std::string& path, std::string& out) {
    if (auto v = scalar(n, path)) out = *v;
  }

  template <class T>
  void uint(const YAML::Node& n, const std::string& path, T& out, uint64_t min = 0,
            uint64_t max = UINT32_MAX) {
    auto v = scalar(n, path);
    if (!v) return;
    max = std::min<uint64_t>(max, std::numeric_limits<T>::max());  // never truncate into `out`
    const auto digits = parse_digits(*v);
    const bool all_digits = !v->empty() && v->find_first_not_of("0123456789") == std::string::npos;
    if (!digits.has_value() && !all_digits) {
      return fail(n, path, "expected an unsigned integer, got " + quote_for_message(*v));
    }
    if (!digits.has_value() || *digits < min || *digits > max) {
      return fail(n, path, "must be between " + std::to_string(min) + " and " +
                               std::to_string(max) + ", got " + v->substr(0, 40) +
                               (v->size() > 40 ? "..." : ""));
    }
    out = static_cast<T>(*digits);
  }

  void boolean(const YAML::Node& n, const std::string& path, bool& out) {
    auto v = scalar(n, path);
    if (!v) return;
    if (*v == "true" || *v == "yes" || *v == "on") {
      out = true;
    } else if (*v == "false" || *v == "no" || *v == "off") {
      out = false;
    } else {
      fail(n, path, "expected true or false, got " + quote_for_message(*v));
    }
  }

  // "250ms", "30s", "5m", "1h", or a number of milliseconds; 0 = never.
  void duration(const YAML::Node& n, const std::string& path, int64_t& out) {
    auto v = scalar(n, path);
    if (!v) return;
    auto ms = parse_duration_ms(*v);
    if (!ms) return fail(n, path, ms.status().message());
    out = *ms;
  }

  void one_of(const YAML::Node& n, const std::string& path, std::string& out,
              const std::vector<std::string>& allowed) {
    auto v = scalar(n, path);
    if (!v) return;
    for (const auto& a : allowed) {
      if (*v == a) {
        out = *v;
        return;
      }
    }
    std::string list;
    for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
    fail(n, path, "must be one of " + list + ", got " + quote_for_message(*v));
  }

  void str_list(const YAML::Node& n, const std::string& path, std::vector<std::string>& out) {
    if (!ok()) return;
    if (n.IsNull()) {
      out.clear();
      return;
    }
    if (!n.IsSequence()) return fail(n, path, "expected a list");
    out.clear();
    for (size_t i = 0; i < n.size(); ++i) {
      auto v = scalar(n[i], path + "[" + std::to_string(i) + "]");
      if (!v) return;
      out.push_back(*v);
    }
  }

  void snapshot(const YAML::Node& n, const std::string& path, SnapshotConfig& out) {
    map(n, path,
        {{"every", [&](auto& v, auto& p) { uint(v, p, out.every); }},
         {"keep", [&](auto& v, auto& p) { uint(v, p, out.keep, 1, 1000); }}});
  }

  void shadow_check(const YAML::Node& n, const std::string& path, ShadowOptions& out) {
    map(n, path,
        {{"enabled", [&](auto& v, auto& p) { boolean(v, p, out.enabled); }},
         {"sample", [&](auto& v, auto& p) { uint(v, p, out.sample, 0, 100000000); }},
         {"sample_percent", [&](auto& v, auto& p) { uint(v, p, out.sample_percent, 0, 100); }},
         {"max_active", [&](auto& v, auto& p) { uint(v, p, out.max_active, 0, 100000000); }},
         {"time_limit", [&](auto& v, auto& p) { duration(v, p, out.time_limit_ms); }},
         {"cpu_percent", [&](auto& v, auto& p) { uint(v, p, out.cpu_percent, 1, 100); }},
         {"memory_limit", [&](auto& v, auto& p) { uint(v, p, out.memory_limit_bytes, 1024, INT64_MAX); }},
         {"max_differences", [&](auto& v, auto& p) { uint(v, p, out.max_differences, 1, 1000); }}});
  }

  void idempotency(const YAML::Node& n, const std::string& path, IdempotencyConfig& out) {
    map(n, path, {{"retention", [&](auto& v, auto& p) {
                    map(v, p,
                        {{"keys", [&](auto& x, auto& q) { uint(x, q, out.retention_keys, 1, 100000); }},
                         {"age", [&](auto& x, auto& q) { duration(x, q, out.retention_age_ms); }}});
                  }}});
  }

 private:
  std::string file_;
  Status status_;
};

// The nodes that checks spanning sections (and the plugin file checks) point
// at in their errors.
struct Marks {
  YAML::Node plugin_list, plugin_dir, allowed_dirs, backend, cluster, listen;
  YAML::Node namespace_versions;  // plugins.namespaces
};

// Every plugin file must be a regular file holding a complete ELF image for
// this host, and every allowed directory must exist. Errors name the line.
Status check_plugin_files(const HostConfig& c, const std::string& name, const Marks& marks);
// The same for plugins.namespaces, whose namespaces must be served.
Status check_namespace_plugin_files(const HostConfig& c, const std::string& name, const Marks& marks);

// The one YAML document of `text` (a null node for an empty text); a second
// document is an error naming its line.
Result<YAML::Node> load_document(const std::string& text, const std::string& name);

}  // namespace aether::config_internal
