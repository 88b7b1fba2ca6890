#include "config/config.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <cerrno>
#include <climits>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <sstream>
#include <string_view>

#include "core/elf_image.hpp"
#include "core/names.hpp"

namespace aether {

Result<std::string> substitute_env(const std::string& value) {
  std::string out;
  size_t i = 0;
  while (i < value.size()) {
    const size_t start = value.find("${", i);
    if (start == std::string::npos) {
      out.append(value, i, std::string::npos);
      break;
    }
    out.append(value, i, start - i);
    const size_t end = value.find('}', start);
    if (end == std::string::npos) {
      return Status::invalid("unterminated ${ in " + quote_for_message(value));
    }
    const std::string ref = value.substr(start + 2, end - start - 2);
    const size_t dflt = ref.find(":-");
    const std::string var = ref.substr(0, dflt);
    if (var.empty()) return Status::invalid("empty variable name in " + quote_for_message(value));
    const char* env = std::getenv(var.c_str());
    if (env != nullptr && (*env != '\0' || dflt == std::string::npos)) {
      out += env;
    } else if (dflt != std::string::npos) {
      out += ref.substr(dflt + 2);
    } else {
      return Status::invalid("environment variable " + var + " is not set (use ${" + var +
                             ":-default} for a default)");
    }
    i = end + 1;
  }
  return out;
}

Result<std::pair<std::string, int>> parse_listen_address(const std::string& value) {
  const size_t colon = value.rfind(':');
  if (colon == std::string::npos || colon == 0) {
    return Status::invalid("expected host:port, got " + quote_for_message(value));
  }
  const std::string host = value.substr(0, colon);
  const std::string port = value.substr(colon + 1);
  char* end = nullptr;
  errno = 0;
  const long p = std::strtol(port.c_str(), &end, 10);
  if (port.empty() || *end != '\0' || errno != 0 || p < 0 || p > 65535) {
    return Status::invalid("port must be a number from 0 to 65535, got " +
                           quote_for_message(port));
  }
  return std::make_pair(host, static_cast<int>(p));
}

bool is_loopback_listen(const std::string& listen) {
  auto a = parse_listen_address(listen);
  if (!a) return false;
  std::string host = a->first;
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  return host == "localhost" || host == "::1" || host.rfind("127.", 0) == 0;
}

std::string HostConfig::data_directory() const {
  if (!node.data_dir.empty()) return node.data_dir;
  if (store.backend != "sqlite") return {};
  const std::string dir = std::filesystem::path(store.sqlite_path).parent_path().string();
  return dir.empty() ? "." : dir;
}

std::vector<std::string> HostConfig::plugin_files() const {
  namespace fs = std::filesystem;
  std::vector<std::string> out;
  if (plugins.list.empty()) {
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(plugins.dir, ec)) {
      if (e.path().extension() == ".so") out.push_back(e.path().string());
    }
    std::sort(out.begin(), out.end());
    return out;
  }
  for (const auto& p : plugins.list) {
    if (p.find('/') != std::string::npos || p.ends_with(".so")) {
      out.push_back(p);
    } else {
      out.push_back((fs::path(plugins.dir) / (p + ".so")).string());
    }
  }
  return out;
}

std::vector<std::string> HostConfig::plugin_load_dirs() const {
  std::vector<std::string> out = {plugins.dir};
  out.insert(out.end(), plugins.allowed_dirs.begin(), plugins.allowed_dirs.end());
  return out;
}

std::string HostConfig::plugin_copy_dir() const {
  const std::string data = data_directory();
  return data.empty() ? std::string() : (std::filesystem::path(data) / "plugins.loaded").string();
}

namespace {

// The longest duration a key takes: larger values would overflow the clocks
// they are added to (nanoseconds since an epoch). 0 already means never.
constexpr int64_t kMaxDurationHours = 876000;  // 100 years
constexpr int64_t kMaxDurationMs = kMaxDurationHours * 3600000;

// A non-empty string of decimal digits that fits in 64 bits; nothing else
// (no sign, no spaces, no wrap-around).
std::optional<uint64_t> parse_digits(std::string_view s) {
  if (s.empty()) return std::nullopt;
  uint64_t x = 0;
  for (const char ch : s) {
    if (ch < '0' || ch > '9') return std::nullopt;
    const auto d = static_cast<uint64_t>(ch - '0');
    if (x > (UINT64_MAX - d) / 10) return std::nullopt;
    x = x * 10 + d;
  }
  return x;
}

// "250ms", "30s", "5m", "1h" or a number of milliseconds, up to
// kMaxDurationMs; the error says what was wrong.
Result<int64_t> parse_duration_ms(const std::string& v) {
  const size_t unit_at = v.find_first_not_of("0123456789");
  const std::string_view number = std::string_view(v).substr(0, unit_at);
  const std::string unit = unit_at == std::string::npos ? "" : v.substr(unit_at);
  int64_t mul = 0;
  if (unit.empty() || unit == "ms") mul = 1;
  else if (unit == "s") mul = 1000;
  else if (unit == "m") mul = 60000;
  else if (unit == "h") mul = 3600000;
  if (number.empty() || mul == 0) {
    return Status::invalid("expected a duration like 250ms, 30s, 5m or 1h, got " + quote_for_message(v));
  }
  const auto x = parse_digits(number);
  if (!x.has_value() || *x > static_cast<uint64_t>(kMaxDurationMs / mul)) {
    return Status::invalid("duration " + quote_for_message(v) + " is too long (at most " +
                           std::to_string(kMaxDurationHours) + "h, 100 years; 0 means never)");
  }
  return static_cast<int64_t>(*x) * mul;
}

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

}  // namespace

namespace {

// "FILE:LINE" of `n`, or of its item `i`; "FILE" when the node is not there.
std::string where_in(const std::string& file, const YAML::Node& n, size_t i = SIZE_MAX) {
  if (!n) return file;
  if (i == SIZE_MAX) return n.Mark().line >= 0 ? file + ":" + std::to_string(n.Mark().line + 1) : file;
  if (!n.IsSequence() || i >= n.size()) return file;
  return file + ":" + std::to_string(n[i].Mark().line + 1);
}

// Every plugin file must be a regular file holding a complete ELF image for
// this host (nothing else is opened: a FIFO or a device is refused after
// stat), and every allowed directory must exist. Errors name the line.
Status check_plugin_files(const HostConfig& c, const std::string& name, const YAML::Node& list,
                          const YAML::Node& dir, const YAML::Node& allowed) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (c.plugins.list.empty() && !fs::is_directory(c.plugins.dir, ec)) {
    return Status::invalid(name + ": plugins.dir: directory " + quote_for_message(c.plugins.dir) +
                           " does not exist");
  }
  for (size_t i = 0; i < c.plugins.allowed_dirs.size(); ++i) {
    if (!fs::is_directory(c.plugins.allowed_dirs[i], ec)) {
      return Status::invalid(where_in(name, allowed, i) + ": plugins.allowed_dirs[" + std::to_string(i) +
                             "]: directory " + quote_for_message(c.plugins.allowed_dirs[i]) +
                             " does not exist");
    }
  }
  const bool listed = !c.plugins.list.empty();
  const auto files = c.plugin_files();
  for (size_t i = 0; i < files.size(); ++i) {
    const std::string why = check_elf_file(files[i]);
    if (why.empty()) continue;
    const std::string key = listed ? "plugins.list[" + std::to_string(i) + "]" : "plugins.dir";
    return Status::invalid((listed ? where_in(name, list, i) : where_in(name, dir)) + ": " + key +
                           ": plugin file " + files[i] +
                           (why == "no such file" ? " does not exist" : ": " + why));
  }
  return Status::ok();
}

// The line (1-based) where a second YAML document starts in `text`, or 0:
// content after a document marker ("---" or "...") at column 0 that follows
// content. (yaml-cpp's LoadAll can loop forever on some short inputs with
// several documents, so documents are counted here and only the first is
// parsed.)
size_t second_document_line(const std::string& text) {
  bool content = false, after_marker = false;
  size_t line_no = 0;
  for (size_t start = 0; start <= text.size();) {
    const size_t end = std::min(text.find('\n', start), text.size());
    const std::string_view line(text.data() + start, end - start);
    ++line_no;
    const bool marker = (line.substr(0, 3) == "---" || line.substr(0, 3) == "...") &&
                        (line.size() == 3 || line[3] == ' ' || line[3] == '\t' || line[3] == '\r');
    const size_t first = line.find_first_not_of(" \t\r");
    const bool blank = first == std::string_view::npos || line[first] == '#';
    if (marker) {
      if (content) after_marker = true;
      const size_t rest = line.find_first_not_of(" \t\r", 3);
      if (after_marker && rest != std::string_view::npos && line[rest] != '#') return line_no;
    } else if (!blank) {
      if (after_marker) return line_no;
      content = true;
    }
    start = end + 1;
  }
  return 0;
}

// The one YAML document of `text` (a null node for an empty text); a second
// document is an error naming its line.
Result<YAML::Node> load_document(const std::string& text, const std::string& name) {
  if (const size_t line = second_document_line(text); line > 0) {
    return Status::invalid(name + ":" + std::to_string(line) +
                           ": a second YAML document (after '---'); a configuration is one document");
  }
  try {
    return YAML::Load(text);
  } catch (const YAML::Exception& e) {
    std::string where = name;
    if (e.mark.line >= 0) where += ":" + std::to_string(e.mark.line + 1);
    return Status::invalid(where + ": invalid YAML: " + e.msg);
  }
}

}  // namespace

Result<HostConfig> parse_config(const std::string& text, const std::string& name) {
  auto doc = load_document(text, name);
  if (!doc) return doc.status();
  const YAML::Node root = *doc;
  HostConfig c;
  c.source = name;
  Parser p(name);
  p.structure(root);
  YAML::Node plugin_list_node;
  YAML::Node plugin_dir_node;
  YAML::Node allowed_dirs_node;
  YAML::Node backend_node;
  YAML::Node cluster_node;
  YAML::Node listen_node;
  p.map(root, "",
        {{"node",
          [&](auto& n, auto& path) {
            p.map(n, path,
                  {{"id", [&](auto& v, auto& k) { p.str(v, k, c.node.id); }},
                   {"namespace",
                    [&](auto& v, auto& k) {
                      std::string ns;
                      p.str(v, k, ns);
                      c.node.namespaces = {ns};
                    }},
                   {"namespaces", [&](auto& v, auto& k) { p.str_list(v, k, c.node.namespaces); }},
                   {"data_dir", [&](auto& v, auto& k) { p.str(v, k, c.node.data_dir); }}});
            if (!p.ok()) return;
            if (std::string why = check_name(c.node.id); !why.empty()) {
              p.fail(n, path + ".id", "node id " + quote_for_message(c.node.id) + " " + why);
            }
            if (c.node.namespaces.empty()) p.fail(n, path, "at least one namespace is needed");
            for (const auto& ns : c.node.namespaces) {
              if (std::string why = check_name(ns); !why.empty() && p.ok()) {
                p.fail(n, path + ".namespaces", "namespace " + quote_for_message(ns) + " " + why);
              }
            }
          }},
         {"store",
          [&](auto& n, auto& path) {
            p.map(n, path,
                  {{"backend",
                    [&](auto& v, auto& k) {
                      backend_node = v;
                      p.one_of(v, k, c.store.backend, {"memory", "sqlite", "jetstream"});
                    }},
                   {"jetstream",
                    [&](auto& v, auto& k) {
                      YAML::Node dup_window_node;
                      p.map(v, k,
                            {{"stream_prefix",
                              [&](auto& x, auto& kk) {
                                p.str(x, kk, c.store.js_stream_prefix);
                                if (p.ok() && !check_name(c.store.js_stream_prefix).empty()) {
                                  p.fail(x, kk, "stream prefix " + check_name(c.store.js_stream_prefix));
                                }
                              }},
                             {"replicas", [&](auto& x, auto& kk) { p.uint(x, kk, c.store.js_replicas, 1, 5); }},
                             {"storage",
                              [&](auto& x, auto& kk) { p.one_of(x, kk, c.store.js_storage, {"file", "memory"}); }},
                             {"max_age", [&](auto& x, auto& kk) { p.duration(x, kk, c.store.js_max_age_ms); }},
                             {"max_bytes",
                              [&](auto& x, auto& kk) {
                                uint64_t b = 0;
                                p.uint(x, kk, b, 0, INT64_MAX);
                                c.store.js_max_bytes = b == 0 ? -1 : static_cast<int64_t>(b);
                              }},
                             {"duplicate_window",
                              [&](auto& x, auto& kk) {
                                dup_window_node = x;
                                p.duration(x, kk, c.store.js_duplicate_window_ms);
                              }},
                             {"publishers", [&](auto& x, auto& kk) {
                                p.uint(x, kk, c.store.js_publishers, 1, 1024);
                              }}});
                      if (p.ok() && c.store.js_max_age_ms > 0 && c.store.js_duplicate_window_ms > c.store.js_max_age_ms) {
                        p.fail(dup_window_node, k + ".duplicate_window", "must not be longer than max_age");
                      }
                    }},
                   {"sqlite", [&](auto& v, auto& k) {
                      p.map(v, k,
                            {{"path", [&](auto& x, auto& kk) { p.str(x, kk, c.store.sqlite_path); }},
                             {"synchronous",
                              [&](auto& x, auto& kk) {
                                p.one_of(x, kk, c.store.sqlite_synchronous,
                                         {"off", "normal", "full", "extra"});
                              }},
                             {"max_batch", [&](auto& x, auto& kk) {
                                p.uint(x, kk, c.store.sqlite_max_batch, 1, 100000);
                              }}});
                    }}});
          }},
         {"plugins",
          [&](auto& n, auto& path) {
            p.map(n, path,
                  {{"dir",
                    [&](auto& v, auto& k) {
                      plugin_dir_node = v;
                      p.str(v, k, c.plugins.dir);
                    }},
                   {"list",
                    [&](auto& v, auto& k) {
                      plugin_list_node = v;
                      p.str_list(v, k, c.plugins.list);
                    }},
                   {"allowed_dirs",
                    [&](auto& v, auto& k) {
                      allowed_dirs_node = v;
                      p.str_list(v, k, c.plugins.allowed_dirs);
                    }},
                   {"watch", [&](auto& v, auto& k) { p.boolean(v, k, c.plugins.watch); }},
                   {"watch_interval",
                    [&](auto& v, auto& k) { p.duration(v, k, c.plugins.watch_interval_ms); }},
                   {"allow_breaking_reload",
                    [&](auto& v, auto& k) { p.boolean(v, k, c.plugins.allow_breaking_reload); }},
                   {"swap_pause_timeout", [&](auto& v, auto& k) {
                      p.duration(v, k, c.plugins.swap_pause_timeout_ms);
                    }},
                   {"shadow_check", [&](auto& v, auto& k) { p.shadow_check(v, k, c.plugins.shadow_check); }}});
          }},
         {"actors",
          [&](auto& n, auto& path) {
            p.map(n, path,
                  {{"workers", [&](auto& v, auto& k) { p.uint(v, k, c.actors.workers, 0, 1024); }},
                   {"io_threads", [&](auto& v, auto& k) { p.uint(v, k, c.actors.io_threads, 1, 1024); }},
                   {"max_active",
                    [&](auto& v, auto& k) { p.uint(v, k, c.actors.max_active, 1); }},
                   {"idle_timeout",
                    [&](auto& v, auto& k) { p.duration(v, k, c.actors.idle_timeout_ms); }},
                   {"mailbox_size",
                    [&](auto& v, auto& k) { p.uint(v, k, c.actors.mailbox_size, 1, 1000000); }},
                   {"conflict_retries",
                    [&](auto& v, auto& k) { p.uint(v, k, c.actors.conflict_retries, 0, 100); }},
                   {"call_timeout",
                    [&](auto& v, auto& k) { p.duration(v, k, c.actors.call_timeout_ms); }},
                   {"max_stuck_calls",
                    [&](auto& v, auto& k) { p.uint(v, k, c.actors.max_stuck_calls, 1, 1024); }},
                   {"snapshot", [&](auto& v, auto& k) { p.snapshot(v, k, c.actors.snapshot); }},
                   {"idempotency", [&](auto& v, auto& k) { p.idempotency(v, k, c.actors.idempotency); }},
                   {"types", [&](auto& v, auto& k) {
                      if (!p.ok() || v.IsNull()) return;
                      if (!v.IsMap()) return p.fail(v, k, "expected a mapping of actor types");
                      for (const auto& kv : v) {
                        const std::string type = kv.first.Scalar();
                        const std::string tp = k + "." + type;
                        if (std::string why = check_name(type); !why.empty()) {
                          return p.fail(kv.first, tp, "actor type name " + why);
                        }
                        ActorTypeConfig& tc = c.actors.types[type];
                        p.map(kv.second, tp,
                              {{"snapshot",
                                [&](auto& x, auto& kk) {
                                  SnapshotConfig s = c.actors.snapshot;
                                  p.snapshot(x, kk, s);
                                  tc.snapshot = s;
                                }},
                               {"idle_timeout",
                                [&](auto& x, auto& kk) {
                                  int64_t ms = 0;
                                  p.duration(x, kk, ms);
                                  tc.idle_timeout_ms = ms;
                                }},
                               {"mailbox_size",
                                [&](auto& x, auto& kk) {
                                  uint32_t m = 0;
                                  p.uint(x, kk, m, 1, 1000000);
                                  tc.mailbox_size = m;
                                }},
                               {"call_timeout", [&](auto& x, auto& kk) {
                                  int64_t ms = 0;
                                  p.duration(x, kk, ms);
                                  tc.call_timeout_ms = ms;
                                }}});
                      }
                    }}});
          }},
         {"api",
          [&](auto& n, auto& path) {
            p.map(n, path,
                  {{"http", [&](auto& v, auto& k) {
                      p.map(v, k,
                            {{"enabled",
                              [&](auto& x, auto& kk) { p.boolean(x, kk, c.api.http_enabled); }},
                             {"listen",
                              [&](auto& x, auto& kk) {
                                listen_node = x;
                                p.str(x, kk, c.api.http_listen);
                                if (!p.ok()) return;
                                if (auto a = parse_listen_address(c.api.http_listen); !a) {
                                  p.fail(x, kk, a.status().message());
                                }
                              }},
                             {"max_body_bytes",
                              [&](auto& x, auto& kk) {
                                p.uint(x, kk, c.api.max_body_bytes, 64, 1ull << 30);
                              }},
                             {"bearer_token",
                              [&](auto& x, auto& kk) { p.str(x, kk, c.api.bearer_token); }},
                             {"threads", [&](auto& x, auto& kk) {
                                p.uint(x, kk, c.api.http_threads, 0, 1024);
                              }},
                             {"header_timeout",
                              [&](auto& x, auto& kk) { p.duration(x, kk, c.api.header_timeout_ms); }},
                             {"idle_timeout",
                              [&](auto& x, auto& kk) { p.duration(x, kk, c.api.idle_timeout_ms); }},
                             {"request_timeout",
                              [&](auto& x, auto& kk) { p.duration(x, kk, c.api.request_timeout_ms); }},
                             {"max_connections",
                              [&](auto& x, auto& kk) { p.uint(x, kk, c.api.max_connections, 1, 1000000); }},
                             {"max_header_bytes",
                              [&](auto& x, auto& kk) {
                                p.uint(x, kk, c.api.max_header_bytes, 1024, 1ull << 20);
                              }},
                             {"max_header_count",
                              [&](auto& x, auto& kk) { p.uint(x, kk, c.api.max_header_count, 1, 10000); }},
                             {"allowed_origins",
                              [&](auto& x, auto& kk) { p.str_list(x, kk, c.api.allowed_origins); }},
                             {"allow_unauthenticated_remote", [&](auto& x, auto& kk) {
                                p.boolean(x, kk, c.api.allow_unauthenticated_remote);
                              }}});
                    }},
                   {"max_json_depth", [&](auto& v, auto& k) {
                      p.uint(v, k, c.api.max_json_depth, 2, kMaxConfigurableJsonDepth);
                    }}});
            if (p.ok() && c.api.http_enabled && c.api.bearer_token.empty() &&
                !c.api.allow_unauthenticated_remote && !is_loopback_listen(c.api.http_listen)) {
              p.fail(listen_node ? listen_node : n, path + ".http.listen",
                     quote_for_message(c.api.http_listen) +
                         " is not a loopback address and api.http.bearer_token is not set: set a "
                         "token, or api.http.allow_unauthenticated_remote: true to serve "
                         "without one");
            }
          }},
         {"log",
          [&](auto& n, auto& path) {
            p.map(n, path,
                  {{"level",
                    [&](auto& v, auto& k) {
                      p.one_of(v, k, c.log.level, {"debug", "info", "warn", "error", "off"});
                    }},
                   {"format",
                    [&](auto& v, auto& k) { p.one_of(v, k, c.log.format, {"text", "json"}); }}});
          }},
         {"bus",
          [&](auto& n, auto& path) {
            p.map(n, path, {{"subscriber_queue", [&](auto& v, auto& k) {
                               p.uint(v, k, c.bus.subscriber_queue, 1, 100000000);
                             }}});
          }},
         {"nats",
          [&](auto& n, auto& path) {
            auto& x = c.nats;
            p.map(n, path,
                  {{"enabled", [&](auto& v, auto& k) { p.boolean(v, k, x.enabled); }},
                   {"servers", [&](auto& v, auto& k) { p.str_list(v, k, x.servers); }},
                   {"name", [&](auto& v, auto& k) { p.str(v, k, x.name); }},
                   {"user", [&](auto& v, auto& k) { p.str(v, k, x.user); }},
                   {"password", [&](auto& v, auto& k) { p.str(v, k, x.password); }},
                   {"token", [&](auto& v, auto& k) { p.str(v, k, x.token); }},
                   {"credentials", [&](auto& v, auto& k) { p.str(v, k, x.credentials); }},
                   {"tls",
                    [&](auto& v, auto& k) {
                      p.map(v, k,
                            {{"ca", [&](auto& y, auto& kk) { p.str(y, kk, x.tls_ca); }},
                             {"cert", [&](auto& y, auto& kk) { p.str(y, kk, x.tls_cert); }},
                             {"key", [&](auto& y, auto& kk) { p.str(y, kk, x.tls_key); }}});
                    }},
                   {"reconnect",
                    [&](auto& v, auto& k) {
                      p.map(v, k,
                            {{"max_attempts",
                              [&](auto& y, auto& kk) {
                                auto s = p.scalar(y, kk);
                                if (!s) return;
                                if (*s == "-1" || *s == "forever") {
                                  x.max_reconnect = -1;
                                } else {
                                  uint64_t m = 0;
                                  p.uint(y, kk, m, 0, 1000000);
                                  x.max_reconnect = static_cast<int64_t>(m);
                                }
                              }},
                             {"wait", [&](auto& y, auto& kk) { p.duration(y, kk, x.reconnect_wait_ms); }}});
                    }},
                   {"connect_timeout", [&](auto& v, auto& k) { p.duration(v, k, x.connect_timeout_ms); }},
                   {"request_timeout", [&](auto& v, auto& k) { p.duration(v, k, x.request_timeout_ms); }},
                   {"startup_wait", [&](auto& v, auto& k) { p.duration(v, k, x.startup_wait_ms); }},
                   {"ingress", [&](auto& v, auto& k) { p.boolean(v, k, x.ingress); }}});
            if (p.ok() && x.enabled && x.servers.empty()) p.fail(n, path + ".servers", "at least one server is needed");
          }},
         {"cluster", [&](auto& n, auto& path) {
            auto& x = c.cluster;
            cluster_node = n;
            p.map(n, path,
                  {{"enabled", [&](auto& v, auto& k) { p.boolean(v, k, x.enabled); }},
                   {"shards", [&](auto& v, auto& k) { p.uint(v, k, x.shards, 1, 1u << 20); }},
                   {"vnodes", [&](auto& v, auto& k) { p.uint(v, k, x.vnodes, 1, 4096); }},
                   {"node_ttl", [&](auto& v, auto& k) { p.duration(v, k, x.node_ttl_ms); }},
                   {"heartbeat", [&](auto& v, auto& k) { p.duration(v, k, x.heartbeat_ms); }},
                   {"rebalance_max_moves", [&](auto& v, auto& k) { p.uint(v, k, x.max_moves, 1, 1u << 20); }},
                   {"handoff_timeout", [&](auto& v, auto& k) { p.duration(v, k, x.handoff_timeout_ms); }},
                   {"route_wait", [&](auto& v, auto& k) { p.duration(v, k, x.route_wait_ms); }},
                   {"forward_timeout", [&](auto& v, auto& k) { p.duration(v, k, x.forward_timeout_ms); }},
                   {"leave_timeout", [&](auto& v, auto& k) { p.duration(v, k, x.leave_timeout_ms); }},
                   {"bucket_prefix", [&](auto& v, auto& k) { p.str(v, k, x.bucket_prefix); }},
                   {"replicas", [&](auto& v, auto& k) { p.uint(v, k, x.replicas, 1, 5); }}});
            if (p.ok() && x.heartbeat_ms >= x.node_ttl_ms) {
              p.fail(n, path + ".heartbeat", "must be shorter than cluster.node_ttl (" +
                                                 std::to_string(x.node_ttl_ms) + " ms)");
            }
            if (p.ok() && x.heartbeat_ms < 50) p.fail(n, path + ".heartbeat", "must be at least 50ms");
          }}});
  if (p.ok() && c.cluster.enabled && !c.nats.enabled) {
    p.fail(cluster_node, "cluster.enabled", "a cluster needs nats.enabled: true");
  }
  if (p.ok() && c.cluster.enabled && c.store.backend != "jetstream") {
    p.fail(cluster_node, "cluster.enabled", "a cluster needs store.backend: jetstream (one store for all nodes)");
  }
  if (p.ok() && c.store.backend == "jetstream" && !c.nats.enabled) {
    p.fail(backend_node, "store.backend", "the jetstream store needs nats.enabled: true");
  }
  if (!p.ok()) return p.status();

  if (Status s = check_plugin_files(c, name, plugin_list_node, plugin_dir_node, allowed_dirs_node); !s) {
    return s;
  }
  return c;
}

namespace {

// The text of FILE, which must be a regular file of at most
// kMaxConfigFileBytes (read no further than that, even if it grows).
Result<std::string> read_config_text(const std::string& file) {
  // O_NONBLOCK: opening a FIFO must not wait for a writer; fstat refuses it.
  const int fd = open(file.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) {
    return Status::not_found(file + ": cannot read the configuration file (" + std::strerror(errno) + ")");
  }
  struct Closer {
    int fd;
    ~Closer() { close(fd); }
  } closer{fd};
  struct stat st {};
  if (fstat(fd, &st) != 0) {
    return Status::not_found(file + ": cannot read the configuration file (" + std::strerror(errno) + ")");
  }
  if (!S_ISREG(st.st_mode)) {
    return Status::invalid(file + ": " + file_type_name(st.st_mode) + ", not a configuration file (a regular YAML file)");
  }
  const std::string too_large = file + ": larger than " + std::to_string(kMaxConfigFileBytes) +
                                " bytes (1 MiB), the most a configuration file may hold";
  if (st.st_size > static_cast<off_t>(kMaxConfigFileBytes)) return Status::invalid(too_large);
  std::string text(kMaxConfigFileBytes + 1, '\0');
  size_t got = 0;
  while (got < text.size()) {
    const ssize_t n = read(fd, text.data() + got, text.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Status::not_found(file + ": cannot read the configuration file (" + std::strerror(errno) + ")");
    if (n == 0) break;
    got += static_cast<size_t>(n);
  }
  if (got > kMaxConfigFileBytes) return Status::invalid(too_large);
  text.resize(got);
  return text;
}

}  // namespace

Result<HostConfig> load_config_file(const std::string& file) {
  auto text = read_config_text(file);
  if (!text) return text.status();
  return parse_config(*text, file);
}

}  // namespace aether
