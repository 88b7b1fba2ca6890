// Test support: plugin files as a hostile or careless operator leaves them
// (truncated images, files rewritten in place).
#pragma once

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <string_view>

namespace aether::test {

// A plugin of the test plugin directory (tests/plugins) by name.
inline std::string test_plugin(const std::string& name) {
  return std::string(AETHER_TEST_PLUGIN_DIR) + "/" + name + ".so";
}

inline std::string bytes_of(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// Writes into the existing file (same inode, as a build or `cp` over it
// does): truncate, then the bytes.
inline void write_in_place(const std::filesystem::path& file, std::string_view bytes) {
  std::ofstream out(file, std::ios::binary | std::ios::in | std::ios::out | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// The first 64 KiB of a plugin file (at most half of it): the file ends
// inside a PT_LOAD segment, so dlopen of it maps pages past the end of the
// file and the first touch is a SIGBUS.
inline std::string truncated_image(const std::filesystem::path& plugin) {
  const std::string whole = bytes_of(plugin);
  return whole.substr(0, std::min<size_t>(64 * 1024, whole.size() / 2));
}

}  // namespace aether::test
