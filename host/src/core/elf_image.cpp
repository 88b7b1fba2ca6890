#include "core/elf_image.hpp"

#include <elf.h>
#include <fcntl.h>
#include <link.h>  // ElfW(): this host's ELF word size
#include <sys/auxv.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <vector>

namespace aether {

namespace {

// The ELF flavour this host loads: its own word size, byte order and machine.
using Ehdr = ElfW(Ehdr);
using Phdr = ElfW(Phdr);
using Shdr = ElfW(Shdr);
constexpr bool k64 = sizeof(void*) == 8;
constexpr unsigned char kClass = k64 ? ELFCLASS64 : ELFCLASS32;
constexpr const char* kClassName = k64 ? "64-bit" : "32-bit";
constexpr unsigned char kData = __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__ ? ELFDATA2LSB : ELFDATA2MSB;

// This host's machine, from the ELF header of the vDSO the kernel maps into
// every process (EM_NONE, and then not checked, where there is none).
uint16_t host_machine() {
  static const uint16_t machine = [] {
    const auto* vdso = reinterpret_cast<const Ehdr*>(getauxval(AT_SYSINFO_EHDR));
    return vdso != nullptr ? vdso->e_machine : uint16_t{EM_NONE};
  }();
  return machine;
}

constexpr const char* kIncomplete = "incomplete ELF image (truncated or still being written): ";

}  // namespace

const char* file_type_name(unsigned int mode) {
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISSOCK(mode)) return "a socket";
  return "a special file";
}

namespace {

// Reads exactly `n` bytes at `offset`; false on a short read or an error.
bool read_at(int fd, void* buf, size_t n, uint64_t offset) {
  auto* p = static_cast<char*>(buf);
  while (n > 0) {
    const ssize_t got = pread(fd, p, n, static_cast<off_t>(offset));
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) return false;
    p += got;
    n -= static_cast<size_t>(got);
    offset += static_cast<uint64_t>(got);
  }
  return true;
}

// offset + length, saturated (for messages about ranges past the end).
uint64_t end_of(uint64_t offset, uint64_t length) {
  return offset > UINT64_MAX - length ? UINT64_MAX : offset + length;
}

std::string past_end(const std::string& what, uint64_t end, uint64_t size) {
  return std::string(kIncomplete) + what + " ends at byte " + std::to_string(end) +
         ", but the file has " + std::to_string(size) + " bytes";
}

const char* segment_type(uint32_t type) {
  switch (type) {
    case PT_LOAD: return "PT_LOAD";
    case PT_DYNAMIC: return "PT_DYNAMIC";
    case PT_INTERP: return "PT_INTERP";
    case PT_NOTE: return "PT_NOTE";
    case PT_TLS: return "PT_TLS";
    case PT_GNU_EH_FRAME: return "PT_GNU_EH_FRAME";
    default: return "other";
  }
}

// The header fields that say which host the image is for.
std::string check_identity(const Ehdr& h) {
  if (h.e_ident[EI_CLASS] != kClass) {
    return std::string("not a shared library for this host: a ") +
           (h.e_ident[EI_CLASS] == ELFCLASS32 ? "32-bit" : "64-bit") +
           " ELF image, this host is " + kClassName;
  }
  if (h.e_ident[EI_DATA] != kData) {
    return "not a shared library for this host: ELF image of the other byte order";
  }
  if (h.e_type != ET_DYN) {
    return "not a shared library: ELF type " + std::to_string(h.e_type) +
           (h.e_type == ET_EXEC ? " (an executable)" : h.e_type == ET_REL ? " (an object file)" : "");
  }
  if (host_machine() != EM_NONE && h.e_machine != host_machine()) {
    return "not a shared library for this host: built for ELF machine " +
           std::to_string(h.e_machine) + ", this host is machine " + std::to_string(host_machine());
  }
  return {};
}

std::string check_segments(int fd, const Ehdr& h, uint64_t size) {
  if (h.e_phnum == 0 || h.e_phentsize != sizeof(Phdr)) {
    return "damaged ELF header: " + std::to_string(h.e_phnum) + " program headers of " +
           std::to_string(h.e_phentsize) + " bytes (expected at least one of " +
           std::to_string(sizeof(Phdr)) + ")";
  }
  const uint64_t table = uint64_t{h.e_phnum} * sizeof(Phdr);
  if (end_of(h.e_phoff, table) > size) {
    return past_end("the program header table", end_of(h.e_phoff, table), size);
  }
  std::vector<Phdr> ph(h.e_phnum);
  if (!read_at(fd, ph.data(), table, h.e_phoff)) {
    return std::string(kIncomplete) + "cannot read the program headers";
  }
  for (size_t i = 0; i < ph.size(); ++i) {
    if (ph[i].p_type == PT_NULL) continue;
    const uint64_t end = end_of(ph[i].p_offset, ph[i].p_filesz);
    if (end > size) {
      return past_end("segment #" + std::to_string(i + 1) + " (" + segment_type(ph[i].p_type) + ")",
                      end, size);
    }
  }
  return {};
}

// The section header table and every section with bytes in the file.
std::string check_sections(int fd, const Ehdr& h, uint64_t size) {
  if (h.e_shoff == 0) return {};  // no section headers (the loader needs none)
  if (h.e_shentsize != sizeof(Shdr)) {
    return "damaged ELF header: section headers of " + std::to_string(h.e_shentsize) +
           " bytes (expected " + std::to_string(sizeof(Shdr)) + ")";
  }
  uint64_t count = h.e_shnum;
  if (count == 0) {  // extended numbering: the count is in section 0
    Shdr first{};
    if (end_of(h.e_shoff, sizeof(Shdr)) > size || !read_at(fd, &first, sizeof first, h.e_shoff)) {
      return past_end("the section header table", end_of(h.e_shoff, sizeof(Shdr)), size);
    }
    count = first.sh_size;
  }
  const uint64_t table = count > UINT64_MAX / sizeof(Shdr) ? UINT64_MAX : count * sizeof(Shdr);
  if (end_of(h.e_shoff, table) > size) {
    return past_end("the section header table", end_of(h.e_shoff, table), size);
  }
  constexpr uint64_t kChunk = 512;
  std::vector<Shdr> sh;
  for (uint64_t first = 0; first < count; first += kChunk) {
    sh.resize(std::min(kChunk, count - first));
    if (!read_at(fd, sh.data(), sh.size() * sizeof(Shdr), h.e_shoff + first * sizeof(Shdr))) {
      return std::string(kIncomplete) + "cannot read the section headers";
    }
    for (size_t i = 0; i < sh.size(); ++i) {
      if (sh[i].sh_type == SHT_NOBITS || sh[i].sh_type == SHT_NULL) continue;
      const uint64_t end = end_of(sh[i].sh_offset, sh[i].sh_size);
      if (end > size) return past_end("section #" + std::to_string(first + i), end, size);
    }
  }
  return {};
}

}  // namespace

std::string check_elf_fd(int fd) {
  struct stat st {};
  if (fstat(fd, &st) != 0) return std::string("cannot stat: ") + std::strerror(errno);
  if (!S_ISREG(st.st_mode)) return std::string("not a regular file (") + file_type_name(st.st_mode) + ")";
  const auto size = static_cast<uint64_t>(st.st_size);
  Ehdr h{};
  const bool whole_header = size >= sizeof h && read_at(fd, &h, sizeof h, 0);
  if (!whole_header) {
    unsigned char magic[SELFMAG] = {};
    if (size >= SELFMAG && read_at(fd, magic, SELFMAG, 0) && std::memcmp(magic, ELFMAG, SELFMAG) == 0) {
      return past_end("the ELF header", sizeof h, size);
    }
    return size == 0 ? "not a shared library (an empty file, no ELF header)"
                     : "not a shared library (no ELF header)";
  }
  if (std::memcmp(h.e_ident, ELFMAG, SELFMAG) != 0) return "not a shared library (no ELF header)";
  std::string why = check_identity(h);
  if (why.empty()) why = check_segments(fd, h, size);
  if (why.empty()) why = check_sections(fd, h, size);
  return why;
}

std::string check_regular_file(const std::string& path) {
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) {
    return errno == ENOENT ? "no such file" : std::string("cannot stat: ") + std::strerror(errno);
  }
  if (!S_ISREG(st.st_mode)) return std::string("not a regular file (") + file_type_name(st.st_mode) + ")";
  return {};
}

std::string check_elf_file(const std::string& path) {
  // Type first: a FIFO opened for reading would block, a device could be endless.
  if (std::string why = check_regular_file(path); !why.empty()) return why;
  const int fd = open(path.c_str(), O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
  if (fd < 0) return std::string("cannot open: ") + std::strerror(errno);
  std::string why = check_elf_fd(fd);  // fstat again: the file may have been replaced
  close(fd);
  return why;
}

}  // namespace aether
