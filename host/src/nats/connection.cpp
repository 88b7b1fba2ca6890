#include "nats/connection.hpp"

#include <nats/nats.h>

#include <cstdint>
#include <map>
#include <mutex>

#include "core/log.hpp"

namespace aether {

std::string nats_error(int status, const std::string& text) {
  // The connection keeps no reconnect buffer (natsOptions_SetReconnectBufSize
  // 0, below): what is published while it reconnects fails at once, and
  // cnats calls that "Insufficient Buffer".
  if (status == NATS_INSUFFICIENT_BUFFER) {
    return text + " (the NATS connection is reconnecting; nothing is sent or buffered until it is back)";
  }
  std::string m = text + " (" + natsStatus_GetText(static_cast<natsStatus>(status));
  const char* last = nats_GetLastError(nullptr);
  if (last != nullptr && *last != '\0') m += std::string(": ") + last;
  return m + ")";
}

int kv_get_leader(NatsConnection& connection, const std::string& bucket, const std::string& key, std::string& value,
                  uint64_t& revision, int* js_error) {
  natsMsg* m = nullptr;
  uint64_t seq = 0;
  const std::string stream = "KV_" + bucket;
  const std::string subject = "$KV." + bucket + "." + key;
  const int s = leader_get_last(connection, stream, subject, &m, &seq, js_error);
  if (s != NATS_OK) return s;
  const char* op = nullptr;
  const bool gone = natsMsgHeader_Get(m, "KV-Operation", &op) == NATS_OK && op != nullptr;  // DEL or PURGE
  if (!gone) {
    value.assign(natsMsg_GetData(m), static_cast<size_t>(natsMsg_GetDataLength(m)));
    revision = seq;
  }
  natsMsg_Destroy(m);
  return gone ? NATS_NOT_FOUND : NATS_OK;
}

int kv_get_any_replica(NatsConnection& connection, const std::string& bucket, const std::string& key,
                       std::string& value, uint64_t& revision) {
  jsDirectGetMsgOptions o;
  jsDirectGetMsgOptions_Init(&o);
  const std::string subject = "$KV." + bucket + "." + key;
  o.LastBySubject = subject.c_str();
  natsMsg* m = nullptr;
  natsStatus s = js_DirectGetMsg(&m, connection.js(), ("KV_" + bucket).c_str(), nullptr, &o);
  if (s != NATS_OK) return s;
  const char* op = nullptr;
  const bool gone = natsMsgHeader_Get(m, "KV-Operation", &op) == NATS_OK && op != nullptr;
  if (!gone) {
    value.assign(natsMsg_GetData(m), static_cast<size_t>(natsMsg_GetDataLength(m)));
    revision = natsMsg_GetSequence(m);
  }
  natsMsg_Destroy(m);
  return gone ? NATS_NOT_FOUND : NATS_OK;
}

namespace {

// The status listeners of every connection, by watch id. cnats calls back on
// its own thread, possibly after ~NatsConnection began, with the
// connection's id as closure: the callbacks look listeners up here and never
// touch a NatsConnection.
struct StatusListener {
  uint64_t connection;
  std::function<void(bool)> fn;
};
std::mutex& listeners_mu() {
  static std::mutex mu;
  return mu;
}
std::map<uint64_t, StatusListener>& listeners() {
  static std::map<uint64_t, StatusListener> m;
  return m;
}
std::atomic<uint64_t> next_id{0};

void tell(void* closure, bool connected) {
  const auto connection = static_cast<uint64_t>(reinterpret_cast<uintptr_t>(closure));
  std::lock_guard lock(listeners_mu());
  for (auto& [_, l] : listeners()) {
    if (l.connection == connection) l.fn(connected);
  }
}

void on_disconnected(natsConnection* nc, void* closure) {
  if (natsConnection_IsClosed(nc)) return;  // our own close
  log::warn("nats: disconnected; reconnecting");
  tell(closure, false);
}
void on_reconnected(natsConnection* nc, void* closure) {
  char url[256] = "";
  if (natsConnection_GetConnectedUrl(nc, url, sizeof url) != NATS_OK) url[0] = '\0';
  log::info(std::string("nats: reconnected to ") + (url[0] != '\0' ? url : "a server"));
  tell(closure, true);
}
void on_closed(natsConnection*, void* closure) { tell(closure, false); }

}  // namespace

std::unique_ptr<NatsConnection::StatusWatch> NatsConnection::watch_status(std::function<void(bool)> listener) {
  const uint64_t id = ++next_id;
  std::lock_guard lock(listeners_mu());
  listener(connected());
  listeners().emplace(id, StatusListener{id_, std::move(listener)});
  return std::make_unique<StatusWatch>(id);
}

NatsConnection::StatusWatch::~StatusWatch() {
  std::lock_guard lock(listeners_mu());
  listeners().erase(id_);
}

Result<std::unique_ptr<NatsConnection>> NatsConnection::connect(const NatsOptions& o) {
  std::unique_ptr<NatsConnection> c(new NatsConnection());
  c->opts_ = o;
  c->id_ = ++next_id;
  void* const closure = reinterpret_cast<void*>(static_cast<uintptr_t>(c->id_));
  natsOptions* opts = nullptr;
  natsStatus s = natsOptions_Create(&opts);
  std::vector<const char*> servers;
  for (const auto& srv : o.servers) servers.push_back(srv.c_str());
  std::string all;
  for (const auto& srv : o.servers) all += (all.empty() ? "" : ", ") + srv;
  if (s == NATS_OK) s = natsOptions_SetServers(opts, servers.data(), static_cast<int>(servers.size()));
  if (s == NATS_OK) s = natsOptions_SetName(opts, o.name.c_str());
  if (s == NATS_OK && !o.user.empty()) s = natsOptions_SetUserInfo(opts, o.user.c_str(), o.password.c_str());
  if (s == NATS_OK && !o.token.empty()) s = natsOptions_SetToken(opts, o.token.c_str());
  if (s == NATS_OK && !o.credentials_file.empty()) {
    s = natsOptions_SetUserCredentialsFromFiles(opts, o.credentials_file.c_str(), nullptr);
  }
  if (s == NATS_OK && (!o.tls_ca.empty() || !o.tls_cert.empty())) s = natsOptions_SetSecure(opts, true);
  if (s == NATS_OK && !o.tls_ca.empty()) s = natsOptions_LoadCATrustedCertificates(opts, o.tls_ca.c_str());
  if (s == NATS_OK && !o.tls_cert.empty()) {
    s = natsOptions_LoadCertificatesChain(opts, o.tls_cert.c_str(), o.tls_key.c_str());
  }
  if (s == NATS_OK) s = natsOptions_SetAllowReconnect(opts, true);
  if (s == NATS_OK) s = natsOptions_SetMaxReconnect(opts, o.max_reconnect);
  if (s == NATS_OK) s = natsOptions_SetReconnectWait(opts, o.reconnect_wait_ms);
  if (s == NATS_OK) s = natsOptions_SetTimeout(opts, o.connect_timeout_ms);
  // A server that stops answering without closing the connection (a paused
  // or hung process) is left for another server of the cluster after
  // max_pings_out unanswered pings (docs/configuration.md: the trade-off).
  if (s == NATS_OK && o.ping_interval_ms > 0) s = natsOptions_SetPingInterval(opts, o.ping_interval_ms);
  if (s == NATS_OK) s = natsOptions_SetMaxPingsOut(opts, o.max_pings_out);
  // Requests in flight fail at once on a disconnect instead of timing out.
  if (s == NATS_OK) s = natsOptions_SetFailRequestsOnDisconnect(opts, true);
  // Keep little in the reconnect buffer: a publish while disconnected should
  // fail, not wait for a server that may not come back.
  if (s == NATS_OK) s = natsOptions_SetReconnectBufSize(opts, 0);
  // Replies and publishes go out at once instead of waiting for the
  // library's flusher: a request/reply command is latency-bound.
  if (s == NATS_OK) s = natsOptions_SetSendAsap(opts, true);
  if (s == NATS_OK && o.no_echo) s = natsOptions_SetNoEcho(opts, true);
  if (s == NATS_OK) s = natsOptions_SetDisconnectedCB(opts, on_disconnected, closure);
  if (s == NATS_OK) s = natsOptions_SetReconnectedCB(opts, on_reconnected, closure);
  if (s == NATS_OK) s = natsOptions_SetClosedCB(opts, on_closed, closure);
  if (s != NATS_OK) {
    natsOptions_Destroy(opts);
    return Status::invalid(nats_error(s, "nats: bad connection settings"));
  }
  s = natsConnection_Connect(&c->nc_, opts);
  natsOptions_Destroy(opts);
  if (s != NATS_OK) return Status::unavailable(nats_error(s, "nats: cannot connect to " + all));
  jsOptions jo;
  jsOptions_Init(&jo);
  jo.Wait = o.request_timeout_ms;
  s = natsConnection_JetStream(&c->js_, c->nc_, &jo);
  if (s != NATS_OK) return Status::unavailable(nats_error(s, "nats: JetStream context"));
  return c;
}

NatsConnection::~NatsConnection() {
  if (js_ != nullptr) jsCtx_Destroy(js_);
  if (nc_ != nullptr) {
    natsConnection_Close(nc_);
    natsConnection_Destroy(nc_);
  }
}

Result<kvStore*> open_kv_bucket(NatsConnection& c, const KvBucketOptions& o, const std::string& who) {
  kvStore* kv = nullptr;
  natsStatus s = js_KeyValue(&kv, c.js(), o.name.c_str());
  if (s == NATS_NOT_FOUND) {
    kvConfig cfg;
    kvConfig_Init(&cfg);
    cfg.Bucket = o.name.c_str();
    cfg.History = o.history;
    cfg.TTL = o.max_age_ms * 1000000;
    cfg.Replicas = o.replicas;
    cfg.StorageType = o.memory ? js_MemoryStorage : js_FileStorage;
    s = js_CreateKeyValue(&kv, c.js(), &cfg);
    if (s != NATS_OK) s = js_KeyValue(&kv, c.js(), o.name.c_str());  // created by another process meanwhile
  }
  if (s != NATS_OK) return Status::unavailable(nats_error(s, who + ": key-value bucket " + o.name));
  return kv;
}

bool NatsConnection::connected() const {
  return nc_ != nullptr && natsConnection_Status(nc_) == NATS_CONN_STATUS_CONNECTED;
}

std::string NatsConnection::not_connected_message() const {
  std::string all;
  for (const auto& srv : opts_.servers) all += (all.empty() ? "" : ", ") + srv;
  return "NATS is not connected (" + all + "); the host reconnects by itself";
}

}  // namespace aether
