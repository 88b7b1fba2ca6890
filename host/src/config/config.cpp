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

#include "config/yaml_parser.hpp"
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

namespace {

// A plugins entry: a name (dir/NAME.so) or a path.
std::string plugin_entry_file(const std::string& dir, const std::string& entry) {
  if (entry.find('/') != std::string::npos || entry.ends_with(".so")) return entry;
  return (std::filesystem::path(dir) / (entry + ".so")).string();
}

}  // namespace

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
  for (const auto& p : plugins.list) out.push_back(plugin_entry_file(plugins.dir, p));
  return out;
}

std::vector<std::string> HostConfig::namespace_plugin_files(const std::string& ns) const {
  std::vector<std::string> out;
  if (auto it = plugins.namespaces.find(ns); it != plugins.namespaces.end()) {
    for (const auto& p : it->second) out.push_back(plugin_entry_file(plugins.dir, p));
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

// "FILE:LINE" of `n`, or of its item `i`; "FILE" when the node is not there.
std::string where_in(const std::string& file, const YAML::Node& n, size_t i = SIZE_MAX) {
  if (!n) return file;
  if (i == SIZE_MAX) return n.Mark().line >= 0 ? file + ":" + std::to_string(n.Mark().line + 1) : file;
  if (!n.IsSequence() || i >= n.size()) return file;
  return file + ":" + std::to_string(n[i].Mark().line + 1);
}

}  // namespace

namespace config_internal {

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

// Every plugin file must be a regular file holding a complete ELF image for
// this host (nothing else is opened: a FIFO or a device is refused after
// stat), and every allowed directory must exist. Errors name the line.
Status check_plugin_files(const HostConfig& c, const std::string& name, const Marks& marks) {
  const YAML::Node& list = marks.plugin_list;
  const YAML::Node& dir = marks.plugin_dir;
  const YAML::Node& allowed = marks.allowed_dirs;
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
  return check_namespace_plugin_files(c, name, marks);
}

// plugins.namespaces: served namespaces only, complete images inside the
// allowed directories.
Status check_namespace_plugin_files(const HostConfig& c, const std::string& name, const Marks& marks) {
  namespace fs = std::filesystem;
  const auto& served = c.node.namespaces;
  for (const auto& [ns, entries] : c.plugins.namespaces) {
    const YAML::Node list = marks.namespace_versions ? marks.namespace_versions[ns] : YAML::Node();
    const std::string key = "plugins.namespaces." + ns;
    if (std::find(served.begin(), served.end(), ns) == served.end()) {
      return Status::invalid(where_in(name, list) + ": " + key + ": namespace " + quote_for_message(ns) +
                             " is not one of node.namespaces");
    }
    const auto files = c.namespace_plugin_files(ns);
    for (size_t i = 0; i < files.size(); ++i) {
      const std::string at = where_in(name, list, i) + ": " + key + "[" + std::to_string(i) + "]: plugin file " + files[i];
      std::string why = check_elf_file(files[i]);
      if (!why.empty()) return Status::invalid(at + (why == "no such file" ? " does not exist" : ": " + why));
      std::error_code ec;
      const fs::path real = fs::weakly_canonical(files[i], ec);
      bool inside = false;
      for (const auto& d : c.plugin_load_dirs()) {
        const fs::path dir = fs::weakly_canonical(d, ec);
        const auto rel = real.lexically_relative(dir);
        inside = inside || (!rel.empty() && *rel.begin() != "..");
      }
      if (!inside) return Status::invalid(at + " is outside plugins.dir and plugins.allowed_dirs");
    }
  }
  return Status::ok();
}

namespace {

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

}  // namespace

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

}  // namespace config_internal

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
