// KvWatch over a JetStream KV bucket with a push consumer of its own.
//
// Not the NATS C client's KV watcher: that one rides on an "ordered
// consumer", which the client recreates on a thread of its own after every
// reconnect, and libnats 3.4.1 (Debian's) crashes the process when the first
// write of that thread fails (natsThread_Detach(NULL) in
// _recreateOrderedCons; fixed upstream in 3.10). A plain consumer is only
// re-subscribed on a reconnect; this watch makes it again itself, on the
// caller's thread, from the last sequence it delivered:
// - after the connection reconnected (the server that held the consumer
//   may have restarted without it);
// - after a gap in the consumer's delivery sequence;
// - when the server no longer answers for the consumer (asked after a
//   quiet spell; two unanswered lookups in a row).
#include <nats/nats.h>

#include <chrono>
#include <thread>

#include "cluster/kv_bucket.hpp"
#include "core/clock.hpp"
#include "nats/connection.hpp"

namespace aether::cluster {

namespace {

// After this long without a message the consumer is looked up.
constexpr int64_t kQuietCheckMs = 5000;
// The server removes a consumer nobody listens to after this long.
constexpr int64_t kInactiveThresholdMs = 60000;

uint64_t reconnects(natsConnection* nc) {
  natsStatistics* st = nullptr;
  uint64_t n = 0;
  if (natsStatistics_Create(&st) == NATS_OK && natsConnection_GetStats(nc, st) == NATS_OK) {
    natsStatistics_GetCounts(st, nullptr, nullptr, nullptr, nullptr, &n);
  }
  natsStatistics_Destroy(st);
  return n;
}

int64_t steady_ms() { return SystemClock::instance().mono_ms(); }

class ConsumerWatch final : public KvWatch {
 public:
  ConsumerWatch(NatsConnection& conn, std::string bucket)
      : conn_(conn), bucket_(std::move(bucket)), stream_("KV_" + bucket_), prefix_("$KV." + bucket_ + ".") {}
  ~ConsumerWatch() override { drop(); }

  // Makes the consumer: the last value of every key first (then the marker),
  // or, once that was delivered, every change after last_seq_.
  Status subscribe() {
    drop();
    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Stream = stream_.c_str();
    so.Config.AckPolicy = js_AckNone;
    so.Config.MemoryStorage = true;
    so.Config.InactiveThreshold = kInactiveThresholdMs * 1000 * 1000;
    if (initial_done_) {
      so.Config.DeliverPolicy = js_DeliverByStartSequence;
      so.Config.OptStartSeq = last_seq_ + 1;
    } else {
      so.Config.DeliverPolicy = js_DeliverLastPerSubject;
    }
    const std::string filter = prefix_ + ">";
    reconnects_ = reconnects(conn_.nc());
    jsErrCode err = static_cast<jsErrCode>(0);
    natsStatus s = js_SubscribeSync(&sub_, conn_.js(), filter.c_str(), nullptr, &so, &err);
    if (s == NATS_OK) s = natsSubscription_SetPendingLimits(sub_, -1, -1);
    if (s != NATS_OK) {
      drop();
      return Status::unavailable(nats_error(s, "watching bucket " + bucket_));
    }
    delivered_ = 0;
    heard_ms_ = steady_ms();
    if (!initial_done_) check_empty();
    return Status::ok();
  }

  Result<std::optional<KvEntry>> next(int64_t timeout_ms) override {
    if (marker_due_) {
      marker_due_ = false;
      initial_done_ = true;
      return std::optional<KvEntry>();
    }
    if (sub_ == nullptr || reconnects(conn_.nc()) != reconnects_) {
      if (Status s = subscribe(); !s) return pause(s);
    }
    natsMsg* m = nullptr;
    const natsStatus s = natsSubscription_NextMsg(&m, sub_, timeout_ms);
    if (s == NATS_TIMEOUT) {
      if (!initial_done_ && !marker_due_ && delivered_ == 0 && steady_ms() - empty_checked_ms_ >= 1000) check_empty();
      if (marker_due_) return next(0);
      if (steady_ms() - heard_ms_ >= kQuietCheckMs) check_consumer();
      return Status::unavailable("watching bucket " + bucket_ + ": no change within " + std::to_string(timeout_ms) +
                                 " ms");
    }
    if (s != NATS_OK) {
      drop();
      return pause(Status::unavailable(nats_error(s, "watching bucket " + bucket_)));
    }
    heard_ms_ = steady_ms();
    jsMsgMetaData* meta = nullptr;
    if (natsMsg_GetMetaData(&meta, m) != NATS_OK) {  // not a consumer's message
      natsMsg_Destroy(m);
      return Status::unavailable("watching bucket " + bucket_ + ": a message without JetStream metadata");
    }
    const uint64_t seq = meta->Sequence.Stream;
    const uint64_t dseq = meta->Sequence.Consumer;
    const uint64_t pending = meta->NumPending;
    jsMsgMetaData_Destroy(meta);
    if (dseq != delivered_ + 1) {  // a gap: made again from the last one delivered
      natsMsg_Destroy(m);
      drop();
      return Status::unavailable("watching bucket " + bucket_ + ": a gap in the consumer's delivery; watching anew");
    }
    delivered_ = dseq;
    KvEntry e;
    const char* subject = natsMsg_GetSubject(m);
    e.key = subject != nullptr && std::string_view(subject).rfind(prefix_, 0) == 0 ? subject + prefix_.size() : "";
    const char* op = nullptr;
    e.deleted = natsMsgHeader_Get(m, "KV-Operation", &op) == NATS_OK && op != nullptr;
    if (!e.deleted) e.value.assign(natsMsg_GetData(m), static_cast<size_t>(natsMsg_GetDataLength(m)));
    e.revision = seq;
    natsMsg_Destroy(m);
    if (seq > last_seq_) last_seq_ = seq;
    if (!initial_done_ && pending == 0) marker_due_ = true;
    return std::optional<KvEntry>(std::move(e));
  }

 private:
  // An empty bucket delivers nothing: then the marker is due at once. (A
  // consumer that has delivered nothing and has nothing pending.)
  void check_empty() {
    empty_checked_ms_ = steady_ms();
    if (!conn_.connected()) return;
    jsConsumerInfo* ci = nullptr;
    if (natsSubscription_GetConsumerInfo(&ci, sub_, nullptr, nullptr) == NATS_OK) {
      marker_due_ = ci->NumPending == 0 && ci->Delivered.Consumer == 0;
    }
    jsConsumerInfo_Destroy(ci);
  }

  // Whether the server still serves the consumer; if it does not answer
  // twice in a row (gone, or offline: nats-server keeps such a consumer on
  // one server, which may be down while this connection is to another), it
  // is made again (lossless: from the last change delivered). Twice: a
  // single slow answer on a loaded machine is no reason to make it again.
  void check_consumer() {
    heard_ms_ = steady_ms();
    if (sub_ == nullptr || !conn_.connected()) return;
    jsConsumerInfo* ci = nullptr;
    const natsStatus s = natsSubscription_GetConsumerInfo(&ci, sub_, nullptr, nullptr);
    jsConsumerInfo_Destroy(ci);
    failed_checks_ = s == NATS_OK ? 0 : failed_checks_ + 1;
    if (failed_checks_ >= 2) drop();
  }

  Status pause(Status s) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    return s;
  }

  // Without deleting the consumer on the server (a request, which waits
  // while NATS does not answer): the server removes it once nobody has
  // listened for kInactiveThresholdMs.
  void drop() {
    natsSubscription_Destroy(sub_);
    sub_ = nullptr;
    failed_checks_ = 0;
  }

  NatsConnection& conn_;
  const std::string bucket_;
  const std::string stream_;
  const std::string prefix_;
  natsSubscription* sub_ = nullptr;
  uint64_t reconnects_ = 0;
  uint64_t delivered_ = 0;  // the consumer's delivery sequence so far
  uint64_t last_seq_ = 0;   // the last stream sequence delivered
  bool initial_done_ = false;
  bool marker_due_ = false;
  int64_t heard_ms_ = 0;
  int64_t empty_checked_ms_ = 0;
  int failed_checks_ = 0;  // consumer lookups in a row that got no answer
};

}  // namespace

Result<std::unique_ptr<KvWatch>> watch_nats_bucket(NatsConnection& connection, const std::string& bucket) {
  auto w = std::make_unique<ConsumerWatch>(connection, bucket);
  if (Status s = w->subscribe(); !s) return s;
  return std::unique_ptr<KvWatch>(std::move(w));
}

}  // namespace aether::cluster
