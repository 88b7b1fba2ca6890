#include "store/jetstream_doubt.hpp"

#include "core/log.hpp"

namespace aether {

InDoubtCommits::~InDoubtCommits() {
  for (auto& [_, m] : held_) natsMsg_Destroy(m);
}

void InDoubtCommits::hold(natsMsg* msg) {
  const std::string subject = natsMsg_GetSubject(msg);
  std::lock_guard lock(mu_);
  auto it = held_.find(subject);
  if (it != held_.end()) {
    natsMsg_Destroy(it->second);  // not expected: an append settles the earlier one first
    it->second = msg;
    return;
  }
  if (held_.size() >= kMaxHeld) {
    log::warn("jetstream: more than " + std::to_string(kMaxHeld) + " commits in doubt; not keeping the one on " +
              subject);
    natsMsg_Destroy(msg);
    return;
  }
  held_[subject] = msg;
}

InDoubtCommits::Settled InDoubtCommits::settle(const std::string& subject, jsCtx* js, int64_t timeout_ms) {
  natsMsg* m = nullptr;
  {
    std::lock_guard lock(mu_);
    auto it = held_.find(subject);
    if (it == held_.end()) return {};
    m = it->second;
    held_.erase(it);
  }
  jsPubOptions po;
  jsPubOptions_Init(&po);
  po.MaxWait = timeout_ms;
  jsPubAck* pa = nullptr;
  jsErrCode err = static_cast<jsErrCode>(0);
  const natsStatus s = js_PublishMsg(&pa, js, m, &po, &err);
  Settled out;
  out.settled = s == NATS_OK || err == JSStreamWrongLastSequenceErr;
  out.stored = s == NATS_OK;
  out.status = s;
  out.js_code = static_cast<int>(err);
  if (pa != nullptr) {
    out.seq = pa->Sequence;
    out.duplicate = pa->Duplicate;
  }
  jsPubAck_Destroy(pa);
  if (out.stored) {
    out.held = std::shared_ptr<natsMsg>(m, natsMsg_Destroy);
    return out;
  }
  if (out.settled) {
    natsMsg_Destroy(m);
    return out;
  }
  std::lock_guard lock(mu_);
  if (!held_.emplace(subject, m).second) natsMsg_Destroy(m);  // a newer one came meanwhile
  return out;
}

void InDoubtCommits::drop(const std::string& subject) {
  std::lock_guard lock(mu_);
  auto it = held_.find(subject);
  if (it == held_.end()) return;
  natsMsg_Destroy(it->second);
  held_.erase(it);
}

size_t InDoubtCommits::size() const {
  std::lock_guard lock(mu_);
  return held_.size();
}

}  // namespace aether
