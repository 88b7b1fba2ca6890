// Commits whose publish ended without an answer (no acknowledgement in
// time, the connection lost meanwhile): each may still be stored, and may
// still be in the stream leader's pipeline. nats-server 2.9 checks
// Nats-Expected-Last-Subject-Sequence only against what it has applied
// (its issue 4320), so the actor's next commit, carrying the same expected
// sequence, could be stored as well: two commits of one version. Before an
// actor's next commit, its commit in doubt is published again, unchanged:
// the server's deduplication by its Nats-Msg-Id (which covers messages
// still in the pipeline) or its expected sequence settles it.
#pragma once

#include <nats/nats.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

namespace aether {

class InDoubtCommits {
 public:
  InDoubtCommits() = default;
  InDoubtCommits(const InDoubtCommits&) = delete;
  InDoubtCommits& operator=(const InDoubtCommits&) = delete;
  ~InDoubtCommits();

  // Keeps `msg` as the commit in doubt of its subject.
  // OWNERSHIP: takes `msg`. Thread-safe.
  void hold(natsMsg* msg);

  struct Settled {
    bool settled = true;  // false: still in doubt (the server did not answer)
    bool stored = false;  // settled as stored (now or before): the actor's next version exists
    natsStatus status = NATS_OK;
    int js_code = 0;
    // stored: the ack's stream sequence; `duplicate` when the server already
    // had a message of that id (this commit, or another writer's commit of
    // its version); `held` the commit that was in doubt (owned; read its
    // headers to know which commit it was).
    uint64_t seq = 0;
    bool duplicate = false;
    std::shared_ptr<natsMsg> held;
  };
  // Publishes the commit in doubt of `subject` again (if there is one) and
  // waits up to `timeout_ms` for the server's answer. Stored (now or
  // before) and refused for a wrong expected sequence both settle it.
  // REQUIRES: not on a cnats callback thread; one caller per subject at a time.
  Settled settle(const std::string& subject, jsCtx* js, int64_t timeout_ms);

  // Forgets the commit in doubt of `subject`, if any (an operator repair
  // removed the history it would follow). Thread-safe.
  void drop(const std::string& subject);

  size_t size() const;

 private:
  static constexpr size_t kMaxHeld = 100000;
  mutable std::mutex mu_;
  std::unordered_map<std::string, natsMsg*> held_;  // subject -> owned message
};

}  // namespace aether
