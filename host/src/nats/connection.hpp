// The nats module: one connection to a NATS server (cnats), shared by the
// JetStream store, the NATS bus and the NATS command ingress.
//
// The connection reconnects by itself (forever by default). While it is away,
// connected() is false and the users of the connection fail fast with a
// kUnavailable status instead of waiting.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/status.hpp"

// cnats types, kept opaque here so that nats.h stays out of this header.
typedef struct __natsConnection natsConnection;
typedef struct __jsCtx jsCtx;
typedef struct __natsMsg natsMsg;
typedef struct __kvStore kvStore;

namespace aether {

struct NatsOptions {
  std::vector<std::string> servers = {"nats://127.0.0.1:4222"};
  std::string name = "aether-host";
  std::string user;
  std::string password;
  std::string token;
  std::string credentials_file;  // a .creds file (JWT + nkey seed)
  std::string tls_ca;            // CA certificates (PEM)
  std::string tls_cert;          // client certificate (PEM)
  std::string tls_key;           // client key (PEM)
  int max_reconnect = -1;        // -1 = forever
  int64_t reconnect_wait_ms = 250;
  int64_t connect_timeout_ms = 2000;
  int64_t request_timeout_ms = 500;   // JetStream API calls and publish acks
  int64_t ping_interval_ms = 120000;  // a stalled server is left after max_pings_out
  int max_pings_out = 2;              // unanswered pings
  // The server does not deliver what this connection publishes to its own
  // subscriptions. A host sets it: its commits would otherwise all come
  // back to it; what its own readers need of them it delivers itself
  // (Bus::deliver_local).
  bool no_echo = false;
};

class NatsConnection {
 public:
  // Connects (retrying for up to `connect_timeout_ms` per server). Fails with
  // a message naming the servers and the reason.
  static Result<std::unique_ptr<NatsConnection>> connect(const NatsOptions& options);
  ~NatsConnection();

  natsConnection* nc() const { return nc_; }
  jsCtx* js() const { return js_; }
  bool connected() const;
  const NatsOptions& options() const { return opts_; }

  // "NATS is not connected (nats://127.0.0.1:4222)": for kUnavailable errors.
  std::string not_connected_message() const;

  // Calls `listener(connected())` now and `listener(false)` / `listener(true)`
  // whenever the connection is lost / back (false for good once closed), on
  // cnats' callback thread, until the returned handle is destroyed; its
  // destructor waits for a call in progress. Calls are serialized.
  // REQUIRES: the listener neither calls watch_status nor destroys a handle.
  class StatusWatch {
   public:
    explicit StatusWatch(uint64_t id) : id_(id) {}
    ~StatusWatch();
    StatusWatch(const StatusWatch&) = delete;
    StatusWatch& operator=(const StatusWatch&) = delete;

   private:
    uint64_t id_;
  };
  std::unique_ptr<StatusWatch> watch_status(std::function<void(bool connected)> listener);

 private:
  NatsConnection() = default;
  uint64_t id_ = 0;  // names this connection to the status callbacks
  NatsOptions opts_;
  natsConnection* nc_ = nullptr;
  jsCtx* js_ = nullptr;
};

struct KvBucketOptions {
  std::string name;
  int64_t history = 1;     // values kept per key
  int64_t max_age_ms = 0;  // a value older than this disappears (0 = never)
  int replicas = 1;
  bool memory = false;     // memory storage instead of file
};

// Opens a JetStream key-value bucket, creating it if it does not exist (or
// opening it if another process created it meanwhile). The caller destroys
// it with kvStore_Destroy. Errors name the bucket, prefixed by `who`.
Result<kvStore*> open_kv_bucket(NatsConnection& connection, const KvBucketOptions& options, const std::string& who);

// The value and revision of `key` in key-value bucket `bucket`, asked of the
// bucket stream's leader (the JetStream API) instead of by a direct get,
// which any replica answers, also one that lags: for reads that decide
// correctness. Returns a natsStatus: NATS_OK, NATS_NOT_FOUND (absent or
// deleted), or the failure; `js_error` (if given) gets the JetStream error code.
int kv_get_leader(NatsConnection& connection, const std::string& bucket, const std::string& key, std::string& value,
                  uint64_t& revision, int* js_error = nullptr);

// The same by a direct get, which any replica answers (also one that lags):
// for values that are never changed under one version, where an old one
// only costs another try.
int kv_get_any_replica(NatsConnection& connection, const std::string& bucket, const std::string& key,
                       std::string& value, uint64_t& revision);

// The last message of `subject` in `stream`, asked of the stream's leader
// ($JS.API.STREAM.MSG.GET). Unlike js_GetLastMsg, which takes the first
// answer, it waits (a quarter of the request timeout, at least 50 ms) for
// the leader's answer when another member of the stream's group answers
// first that the group has no leader (a member back from a pause says so
// until it hears from the leader). Returns a natsStatus as js_GetLastMsg
// does: NATS_OK with `msg` (its stream sequence in `seq`; the caller
// destroys it), NATS_NOT_FOUND, NATS_TIMEOUT, NATS_NO_RESPONDERS, or
// NATS_ERR with the JetStream error in `js_error`.
int leader_get_last(NatsConnection& connection, const std::string& stream, const std::string& subject, natsMsg** msg,
                    uint64_t* seq, int* js_error = nullptr);
// The same for the message at stream sequence `seq`.
int leader_get_seq(NatsConnection& connection, const std::string& stream, uint64_t seq, natsMsg** msg,
                   int* js_error = nullptr);
// The same for the first message of `subject` at stream sequence
// `from_seq` or after it ("next by subject"), its sequence in `seq`.
int leader_get_next(NatsConnection& connection, const std::string& stream, const std::string& subject,
                    uint64_t from_seq, natsMsg** msg, uint64_t* seq, int* js_error = nullptr);

// "<text> (<natsStatus text>: <last error>)" for a failed cnats call.
std::string nats_error(int status, const std::string& text);

}  // namespace aether
