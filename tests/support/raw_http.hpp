// Test support: a raw HTTP/1.1 client socket (for requests no well-behaved
// client library would send: partial headers, chunked floods, hundreds of
// header fields), the requests it sends, and a process's resident set.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "support/host_process.hpp"
#include "support/wait.hpp"

namespace aether::test {

class Socket {
 public:
  // `rcvbuf` > 0: a small receive buffer (a client that reads slowly fills up soon).
  explicit Socket(int port, int timeout_s = 20, int rcvbuf = 0) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    if (rcvbuf > 0) setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    timeval tv{timeout_s, 0};
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  }
  ~Socket() {
    if (fd_ >= 0) ::close(fd_);
  }
  Socket(const Socket&) = delete;
  Socket& operator=(const Socket&) = delete;

  bool connected() const { return connected_; }
  int fd() const { return fd_; }

  bool send(const std::string& data) {
    size_t off = 0;
    while (off < data.size()) {
      const ssize_t n = ::send(fd_, data.data() + off, data.size() - off, MSG_NOSIGNAL);
      if (n <= 0) return false;
      off += static_cast<size_t>(n);
    }
    return true;
  }

  struct Reply {
    int status = 0;
    std::string head;
    std::string body;
    bool has(const std::string& header_line) const { return head.find(header_line) != std::string::npos; }
  };

  // Reads one reply (Content-Length framed); false if the connection ended first.
  bool read_reply(Reply& r) {
    for (;;) {
      const size_t end = pending_.find("\r\n\r\n");
      if (end != std::string::npos) {
        r.head = pending_.substr(0, end + 4);
        r.status = std::atoi(r.head.c_str() + 9);
        size_t length = 0;
        std::string lower = r.head;
        for (auto& ch : lower) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
        if (auto p = lower.find("content-length:"); p != std::string::npos) {
          length = std::strtoull(lower.c_str() + p + 15, nullptr, 10);
        }
        while (pending_.size() < end + 4 + length) {
          if (!receive()) return false;
        }
        r.body = pending_.substr(end + 4, length);
        pending_.erase(0, end + 4 + length);
        return true;
      }
      if (!receive()) return false;
    }
  }

  Reply request(const std::string& raw) {
    Reply r;
    if (send(raw)) read_reply(r);
    return r;
  }

  // Waits (bounded) until the server closes the connection, dropping what it sends.
  bool closed_within(int seconds) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
    while (std::chrono::steady_clock::now() < deadline) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 100) <= 0) continue;
      char buf[4096];
      const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) return true;
      pending_.append(buf, static_cast<size_t>(n));
    }
    return false;
  }
  const std::string& received() const { return pending_; }

  // Waits up to `ms` for data and appends it to received(); false if none
  // came (eof() tells whether the connection ended).
  bool receive_some(int ms) {
    pollfd p{fd_, POLLIN, 0};
    if (eof_ || ::poll(&p, 1, ms) <= 0) return false;
    char buf[65536];
    const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    if (n <= 0) {
      eof_ = true;
      return false;
    }
    pending_.append(buf, static_cast<size_t>(n));
    return true;
  }
  bool eof() const { return eof_; }

 private:
  bool receive() {
    char buf[65536];
    const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    if (n <= 0) return false;
    pending_.append(buf, static_cast<size_t>(n));
    return true;
  }

  int fd_ = -1;
  bool connected_ = false;
  bool eof_ = false;
  std::string pending_;
};

inline std::string raw_get(const std::string& path, const std::string& extra = "") {
  return "GET " + path + " HTTP/1.1\r\nHost: t\r\n" + extra + "\r\n";
}

inline std::string raw_post(const std::string& path, const std::string& body,
                            const std::string& headers = "Content-Type: application/json\r\n") {
  return "POST " + path + " HTTP/1.1\r\nHost: t\r\n" + headers +
         "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
}

// Sends a chunked JSON POST to `path` in 1 MiB chunks, at most `mib` of
// them, stopping as soon as the server answers; returns the MiB sent. The
// reply is then read with s.read_reply.
inline int send_chunked_body(Socket& s, const std::string& path, int mib) {
  if (!s.send("POST " + path + " HTTP/1.1\r\nHost: t\r\n"
              "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")) {
    return 0;
  }
  const std::string chunk = "100000\r\n" + std::string(1 << 20, 'x') + "\r\n";
  int sent = 0;
  for (; sent < mib; ++sent) {
    pollfd p{s.fd(), POLLIN, 0};
    if (::poll(&p, 1, 0) > 0 || !s.send(chunk)) break;
  }
  s.send("0\r\n\r\n");
  return sent;
}

// Whether this build runs under AddressSanitizer (make check-asan): its
// quarantine keeps freed memory resident (256 MiB by default) and its shadow
// grows with the heap, so resident-set bounds are asserted in the plain
// build only; the sanitized run checks the same paths for memory errors.
inline constexpr bool kRssBoundsApply = !kAddressSanitized;

// The resident set of `pid` in KiB, from /proc (0 if it is gone).
inline uint64_t rss_kib(pid_t pid) {
  const std::string status = read_file("/proc/" + std::to_string(pid) + "/status");
  const size_t p = status.find("VmRSS:");
  return p == std::string::npos ? 0 : std::strtoull(status.c_str() + p + 6, nullptr, 10);
}

inline void raise_descriptor_limit() {
  rlimit lim{};
  getrlimit(RLIMIT_NOFILE, &lim);
  lim.rlim_cur = lim.rlim_max;
  setrlimit(RLIMIT_NOFILE, &lim);
}

}  // namespace aether::test
