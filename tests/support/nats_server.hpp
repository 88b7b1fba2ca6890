// Test support: a real nats-server with JetStream on a free loopback port and
// a temporary store directory, stopped when the object goes.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "support/temp_dir.hpp"

#include "support/child_process.hpp"

#include <nats/nats.h>

#include <mutex>

namespace aether::test {

// 127.0.0.1:port.
inline sockaddr_in loopback(int port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<uint16_t>(port));
  return a;
}

// A loopback port that was free a moment ago.
inline int free_port() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a = loopback(0);
  bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  const int port = ntohs(a.sin_port);
  close(fd);
  return port;
}

// Something accepts connections on the port.
inline bool port_open(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  const sockaddr_in a = loopback(port);
  const bool ok = connect(fd, reinterpret_cast<const sockaddr*>(&a), sizeof a) == 0;
  close(fd);
  return ok;
}

// Nothing holds the port: a listener could bind it now.
inline bool port_bindable(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  const sockaddr_in a = loopback(port);
  const bool ok = bind(fd, reinterpret_cast<const sockaddr*>(&a), sizeof a) == 0;
  close(fd);
  return ok;
}

class NatsServer {
 public:
  // `config`: extra nats-server configuration text (accounts, users), or "".
  // `jetstream`: false only for a test that answers the JetStream API itself.
  // A port free_port() found can be taken by another test running at the
  // same time before the server binds it: the server then tries another.
  // up() says whether it came up.
  explicit NatsServer(std::string config = "", bool jetstream = true)
      : config_(std::move(config)), jetstream_(jetstream), port_(free_port()) {
    up_ = start();
    for (int i = 0; !up_ && i < 4 && log().find("Error listening on port") != std::string::npos; ++i) {
      port_ = free_port();
      up_ = start();
    }
  }
  ~NatsServer() { stop(); }

  // Starts (again) on the same port and store directory; waits until this
  // server (not another process that took its port) is ready: its own log
  // says so and, with a `cluster` block in its configuration, that it
  // listens for routes too (nats-server opens that listener after the
  // client's and exits if the port is taken). False if it exited or was not
  // ready within 10 s.
  bool start() {
    const std::string conf = dir_.file("nats.conf");
    {
      std::ofstream c(conf);
      c << "listen: 127.0.0.1:" << port_ << "\n";
      if (jetstream_) c << "jetstream { store_dir: \"" << dir_.file("js") << "\" }\n";
      c << config_ << "\n";
    }
    const size_t log_from = log().size();
    const bool routes = config_.find("cluster {") != std::string::npos;
    const pid_t parent = getpid();
    pid_ = fork();
    if (pid_ == 0) {
      die_with_parent(parent);
      const int fd = open(dir_.file("nats.log").c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      dup2(fd, STDOUT_FILENO);
      dup2(fd, STDERR_FILENO);
      execlp("nats-server", "nats-server", "-c", conf.c_str(), nullptr);
      _exit(127);
    }
    for (int i = 0; i < 1000; ++i) {
      if (!alive()) return false;
      const std::string all = log();
      const std::string now = all.substr(std::min(log_from, all.size()));
      if (now.find("Server is ready") != std::string::npos &&
          (!routes || now.find("Listening for route connections") != std::string::npos))
        return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  }

  // The process is running (reaps it if it exited).
  bool alive() {
    if (pid_ <= 0) return false;
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) != pid_) return true;
    pid_ = -1;
    return false;
  }
  // The first start (in the constructor) succeeded.
  bool up() const { return up_; }

  void stop() { signal_and_wait(SIGTERM); }
  void kill9() { signal_and_wait(SIGKILL); }

  int port() const { return port_; }
  std::string url() const { return "nats://127.0.0.1:" + std::to_string(port_); }
  std::string log() const {
    std::ifstream in(dir_.file("nats.log"));
    return std::string(std::istreambuf_iterator<char>(in), {});
  }
  bool running() const { return pid_ > 0; }
  pid_t pid() const { return pid_; }

 private:
  void signal_and_wait(int sig) {
    if (pid_ <= 0) return;
    kill(pid_, sig);
    reap_child(pid_, 10000);
    pid_ = -1;
  }

  TempDir dir_;
  std::string config_;
  bool jetstream_ = true;
  int port_;
  bool up_ = false;
  pid_t pid_ = -1;
};

// The text of a nats-server configuration file of the repository (for
// NatsServer's `config`): the test runs the file that ships.
inline std::string nats_config_file(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// config/nats-tenants.conf of the tree at `source_dir` as it ships, with these test passwords put in
// this process's environment, where nats-server (a child) reads them:
// aether-host/host-secret, aether-client/client-secret, tenant-a/a-secret,
// tenant-b/b-secret.
inline std::string nats_tenants_config(const std::string& source_dir) {
  setenv("AETHER_NATS_HOST_PASSWORD", "host-secret", 1);
  setenv("AETHER_NATS_CLIENT_PASSWORD", "client-secret", 1);
  setenv("AETHER_NATS_TENANT_A_PASSWORD", "a-secret", 1);
  setenv("AETHER_NATS_TENANT_B_PASSWORD", "b-secret", 1);
  return nats_config_file(source_dir + "/config/nats-tenants.conf");
}

// Creates stream `name` capturing `subject` (a test's own stream).
inline natsStatus add_test_stream(jsCtx* js, const char* name, const char* subject, int replicas = 1,
                                  int64_t max_msgs = -1) {
  jsStreamConfig cfg;
  jsStreamConfig_Init(&cfg);
  cfg.Name = name;
  const char* subjects[] = {subject};
  cfg.Subjects = subjects;
  cfg.SubjectsLen = 1;
  cfg.Replicas = replicas;
  cfg.MaxMsgs = max_msgs;
  return js_AddStream(nullptr, js, &cfg, nullptr, nullptr);
}

// A raw cnats connection (no aether code involved) that records the
// server's asynchronous errors, such as permission violations. The handler
// reads the connection's last error: provoke one error at a time.
class NatsClient {
 public:
  struct Login {
    std::string user;
    std::string password;
    std::string inbox_prefix;  // "" = _INBOX
  };
  explicit NatsClient(const std::string& url, const Login& login = {}) {
    natsOptions* o = nullptr;
    natsOptions_Create(&o);
    natsOptions_SetURL(o, url.c_str());
    natsOptions_SetMaxReconnect(o, 0);
    if (!login.user.empty()) natsOptions_SetUserInfo(o, login.user.c_str(), login.password.c_str());
    if (!login.inbox_prefix.empty()) natsOptions_SetCustomInboxPrefix(o, login.inbox_prefix.c_str());
    natsOptions_SetErrorHandler(o, &NatsClient::on_error, this);
    status_ = natsConnection_Connect(&nc_, o);
    natsOptions_Destroy(o);
  }
  ~NatsClient() { natsConnection_Destroy(nc_); }
  NatsClient(const NatsClient&) = delete;
  NatsClient& operator=(const NatsClient&) = delete;

  natsConnection* nc() const { return nc_; }
  natsStatus connect_status() const { return status_; }

  // Waits (bounded) until the server reported an error containing `text`.
  bool wait_error(const std::string& text, int timeout_seconds = kWaitSeconds) {
    return eventually(
        [&] {
          std::lock_guard lock(mu_);
          for (const auto& e : errors_) {
            if (e.find(text) != std::string::npos) return true;
          }
          return false;
        },
        timeout_seconds);
  }
  std::string errors() {
    std::lock_guard lock(mu_);
    std::string all;
    for (const auto& e : errors_) all += e + "\n";
    return all;
  }

 private:
  static void on_error(natsConnection* nc, natsSubscription*, natsStatus, void* closure) {
    auto* self = static_cast<NatsClient*>(closure);
    const char* text = nullptr;
    natsConnection_GetLastError(nc, &text);
    std::lock_guard lock(self->mu_);
    self->errors_.push_back(text != nullptr ? text : "");
  }

  natsConnection* nc_ = nullptr;
  natsStatus status_ = NATS_OK;
  std::mutex mu_;
  std::vector<std::string> errors_;
};

}  // namespace aether::test
