// ELF images: is a file a complete shared object this host could map?
//
// The dynamic loader maps a plugin's segments straight from its file: a
// segment that reaches past the end of a truncated or half-written file maps
// pages that do not exist, and touching them kills the process with SIGBUS.
// These checks read the file with read(2), never mmap(2), so a file that
// changes while it is checked cannot hurt the caller; they find what the
// loader would trip over before it is called.
#pragma once

#include <string>

namespace aether {

// Why the file at `path` is not a complete ELF shared object for this host,
// or "" when it is. Anything but a regular file (a directory, a FIFO, a
// device) is refused after stat(2), without opening it for reading.
// The reason reads after "plugin FILE: ", e.g. "not a regular file (a FIFO)"
// or "incomplete ELF image (truncated or still being written): segment #3
// (PT_LOAD) ends at byte 20480, but the file has 16384 bytes".
std::string check_elf_file(const std::string& path);

// What a file of `mode` (st_mode) is, for messages: "a directory", "a FIFO",
// "a character device", "a block device", "a socket", else "a special file".
const char* file_type_name(unsigned int mode);

// "" iff `path` (symlinks followed) is a regular file; else why not: "no such
// file", "not a regular file (a FIFO)". Uses stat(2) only.
std::string check_regular_file(const std::string& path);

// The same check for an open file descriptor (anything but a regular file
// is refused).
std::string check_elf_fd(int fd);

}  // namespace aether
