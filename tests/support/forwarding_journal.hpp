// A journal that hands every call to a memory store: a test overrides the
// calls it wants to watch or hold up.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "store/store.hpp"

namespace aether::test {

class ForwardingJournal : public Journal {
 public:
  void append(const AppendRequest& r, AppendCallback done) override { inner_->append(r, std::move(done)); }
  Status read(const ActorKey& k, uint64_t from, uint64_t limit, const EventVisitor& v) override {
    return inner_->read(k, from, limit, v);
  }
  Result<uint64_t> latest_version(const ActorKey& k) override { return inner_->latest_version(k); }
  Result<std::optional<IdempotentCommit>> find_idempotent(const ActorKey& k, const std::string& key) override {
    return inner_->find_idempotent(k, key);
  }
  Status flush() override { return inner_->flush(); }
  Status save_snapshot(const ActorKey& k, const Snapshot& s, uint32_t keep) override {
    return inner_->save_snapshot(k, s, keep);
  }
  Result<std::optional<Snapshot>> latest_snapshot(const ActorKey& k) override { return inner_->latest_snapshot(k); }
  Result<std::vector<Snapshot>> list_snapshots(const ActorKey& k) override { return inner_->list_snapshots(k); }

 private:
  std::unique_ptr<Journal> inner_ = make_memory_store();
};

}  // namespace aether::test
