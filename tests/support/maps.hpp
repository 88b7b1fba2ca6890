// Test support: what the process has mapped.
#pragma once

#include <filesystem>
#include <fstream>
#include <string>

namespace aether::test {

// True iff a line of /proc/self/maps names `file`.
inline bool is_mapped(const std::filesystem::path& file) {
  std::ifstream maps("/proc/self/maps");
  const std::string name = file.string();
  for (std::string line; std::getline(maps, line);) {
    if (line.size() >= name.size() && line.compare(line.size() - name.size(), name.size(), name) == 0) {
      return true;
    }
  }
  return false;
}

// Lines of /proc/self/maps that name a file whose path contains `part`.
inline int count_mappings_containing(const std::string& part) {
  std::ifstream maps("/proc/self/maps");
  int n = 0;
  for (std::string line; std::getline(maps, line);) {
    if (line.find(part) != std::string::npos) ++n;
  }
  return n;
}

}  // namespace aether::test
