// JetStreamStore: the idempotency key cache and repair (truncate_after).
#include "store/jetstream_journal.hpp"

namespace aether::store_detail {

Result<std::optional<IdempotentCommit>> JetStreamStore::find_idempotent(const ActorKey& key,
                                                                        const std::string& k) {
  kvStore* kv = idem_kv(key.ns);
  if (kv == nullptr) return Status::not_found("namespace " + key.ns + " has no store");
  std::string v;
  int js_code = 0;
  natsStatus s = get_idempotent(key.ns, kv, idem_key(key, k), v, js_code);
  if (s == NATS_NOT_FOUND) return std::optional<IdempotentCommit>();
  if (s != NATS_OK) {
    return request_failed(s, js_code, "idempotency key lookup of actor " + key.to_string(), "lookup_timeout",
                          Applied::kNo);
  }
  // "first,last" or "first,last,digest".
  IdempotentCommit c;
  unsigned long long a = 0, b = 0;
  int used = 0;
  if (std::sscanf(v.c_str(), "%llu,%llu%n", &a, &b, &used) != 2 ||
      (static_cast<size_t>(used) != v.size() && v[static_cast<size_t>(used)] != ',')) {
    return Status::corruption("jetstream: idempotency record of " + key.to_string() + " is undecodable");
  }
  c.first_version = a;
  c.last_version = b;
  if (static_cast<size_t>(used) < v.size()) c.digest = v.substr(static_cast<size_t>(used) + 1);
  return std::optional<IdempotentCommit>(c);
}

Result<TruncateResult> JetStreamStore::truncate_after(const ActorKey& key, uint64_t version, bool dry_run) {
  if (!conn_.connected()) return disconnected();
  const std::string stream = events_stream(key.ns);
  auto plan = plan_truncate(key, version);
  if (!plan) return plan.status();
  TruncateResult r{plan->doomed.size(), plan->last_version};
  if (dry_run) return r;
  forget_actor(key);
  // Newest first: an interrupted repair leaves a prefix of the history,
  // and running it again finishes it.
  std::vector<std::string> keys;
  for (auto it = plan->doomed.rbegin(); it != plan->doomed.rend(); ++it) {
    if (Status st = delete_message(stream, it->seq); !st) return st;
    if (!it->idempotency_key.empty()) keys.push_back(idem_key(key, it->idempotency_key));
  }
  forget_keys(key.ns, std::move(keys));
  forget_actor(key);
  if (version > 0 && r.records > 0) {
    if (Status st = publish_repair_marker(key, version); !st) return st;
  }
  return r;
}

Status JetStreamStore::publish_repair_marker(const ActorKey& key, uint64_t version) {
  const std::string subject = subjects::events(key);
  const std::string body = json{{"ns", key.ns}, {"type", key.type}, {"actor_id", key.id}, {"version", version},
                                {"repair", "truncated after version " + std::to_string(version)},
                                {"events", json::array()}}.dump();
  natsMsg* m = nullptr;
  natsMsg_Create(&m, subject.c_str(), nullptr, body.data(), static_cast<int>(body.size()));
  MsgPtr owner{m};
  natsMsgHeader_Set(m, kHdrLast, std::to_string(version).c_str());
  natsMsgHeader_Set(m, kHdrRepair, ("truncated-after-" + std::to_string(version)).c_str());
  natsMsgHeader_Set(m, kHdrNode, opts_.node_id.c_str());
  natsMsgHeader_Set(m, "Nats-Msg-Id", (key.ns + "." + key.type + "." + key.id + repaired_suffix(subject)).c_str());
  jsPubAck* pa = nullptr;
  jsErrCode err = static_cast<jsErrCode>(0);
  natsStatus s = js_PublishMsg(&pa, conn_.js(), m, nullptr, &err);
  jsPubAck_Destroy(pa);
  if (s != NATS_OK) return Status::unavailable(nats_error(s, "jetstream: repair marker on " + subject));
  echo_commit(subject, body);  // this host's own event streams see it too
  return Status::ok();
}

Status JetStreamStore::forget_idempotent(const ActorKey& key, const std::string& k) {
  kvStore* kv = idem_kv(key.ns);
  if (kv == nullptr) return Status::not_found("namespace " + key.ns + " has no store");
  natsStatus s = kvStore_Purge(kv, idem_key(key, k).c_str(), nullptr);
  if (s != NATS_OK) return Status::unavailable(nats_error(s, "jetstream: forget idempotency key"));
  return Status::ok();
}

natsStatus JetStreamStore::get_idempotent(const std::string& ns, kvStore* kv, const std::string& name,
                                          std::string& value, int& js_code) {
  if (opts_.replicas > 1) {
    uint64_t rev = 0;
    return static_cast<natsStatus>(kv_get_leader(conn_, opts_.stream_prefix + ns + "_IDEM", name, value, rev,
                                                 &js_code));
  }
  kvEntry* e = nullptr;
  natsStatus s = kvStore_Get(&e, kv, name.c_str());
  if (s == NATS_OK) {
    value = kvEntry_ValueString(e);
    kvEntry_Destroy(e);
  }
  return s;
}

void JetStreamStore::forget_keys(const std::string& ns, std::vector<std::string> keys) {
  kvStore* kv = idem_kv(ns);
  if (kv == nullptr || keys.empty()) return;
  auto done = std::make_shared<std::promise<void>>();
  auto finished = done->get_future();
  cache_pool_.post([kv, keys = std::move(keys), done] {
    for (const auto& k : keys) kvStore_Delete(kv, k.c_str());
    done->set_value();
  });
  if (finished.wait_for(std::chrono::seconds(10)) != std::future_status::ready) {
    log::warn("jetstream: the idempotency keys of a repair are still being deleted");
  }
}

void JetStreamStore::record_idempotent(const ActorKey& key, const std::string& idempotency_key,
                                       const IdempotentCommit& c) {
  kvStore* kv = idem_kv(key.ns);
  if (kv == nullptr) return;
  if (cache_writes_.fetch_add(1) >= kMaxCacheWrites) {
    cache_writes_.fetch_sub(1);
    return;
  }
  std::string name = idem_key(key, idempotency_key);
  std::string val = std::to_string(c.first_version) + "," + std::to_string(c.last_version) + "," + c.digest;
  cache_pool_.post([this, kv, name = std::move(name), val = std::move(val)] {
    if (!closing_.load()) kvStore_PutString(nullptr, kv, name.c_str(), val.c_str());
    cache_writes_.fetch_sub(1);
  });
}

Result<JetStreamStore::TruncatePlan> JetStreamStore::plan_truncate(const ActorKey& key, uint64_t version) {
  TruncatePlan plan;
  bool found = version == 0;
  uint64_t reached = 0;       // the last version of the commits kept so far
  uint64_t undecodable = 0;   // the sequence of a kept commit that says no versions
  Status walked = walk_subject(events_stream(key.ns), subjects::events(key), [&](natsMsg* m, uint64_t seq) {
    const std::optional<CommitHead> head = commit_head(m);
    const std::optional<uint64_t> last = head ? std::optional<uint64_t>(head->last) : std::nullopt;
    if (found) {
      plan.doomed.push_back({seq, head ? head->tag.key : std::string()});
      if (last) plan.last_version = std::max(plan.last_version, *last);
      return true;
    }
    if (!last) {
      undecodable = undecodable == 0 ? seq : undecodable;
    } else if (*last == version) {
      found = true;
    } else if (*last < version) {
      reached = *last;
    }
    return true;
  });
  if (!walked) return walked;
  const std::string who = "actor " + key.to_string();
  if (!found) {
    return Status::invalid("no commit of " + who + " ends at version " + std::to_string(version) +
                           " (the commits before it end at version " + std::to_string(reached) +
                           "): truncate after a version a commit ends at");
  }
  if (undecodable != 0) {
    return Status::invalid(who + ": the record at stream sequence " + std::to_string(undecodable) +
                           " comes before version " + std::to_string(version) +
                           " and does not decode: truncate after an earlier version");
  }
  return plan;
}

Status JetStreamStore::delete_message(const std::string& stream, uint64_t seq) {
  jsErrCode err = static_cast<jsErrCode>(0);
  natsStatus s = js_DeleteMsg(conn_.js(), stream.c_str(), seq, nullptr, &err);
  if (s == NATS_OK || err == JSSequenceNotFoundErr || err == JSNoMessageFoundErr) return Status::ok();
  return Status::unavailable(nats_error(s, "jetstream: delete message " + std::to_string(seq) + " of " +
                                               stream + " (error code " + std::to_string(err) + ")"));
}

void JetStreamStore::forget_actor(const ActorKey& key) {
  const std::string subject = subjects::events(key);
  const auto now = std::chrono::steady_clock::now();
  std::lock_guard lock(mu_);
  tips_.erase(subject);
  points_.erase(subject);
  recent_.erase(subject);
  std::erase_if(repaired_, [&](const auto& r) { return r.second.until < now; });
  repaired_[subject] = Repaired{now + repaired_window(), "repair-" + commit_prefix_ + std::to_string(++repairs_)};
  any_repaired_.store(true);
  in_doubt_.drop(subject);  // a commit in doubt of the removed history is not published again
}

std::string JetStreamStore::repaired_suffix(const std::string& subject) {
  if (!any_repaired_.load(std::memory_order_relaxed)) return {};
  std::lock_guard lock(mu_);
  auto it = repaired_.find(subject);
  if (it == repaired_.end() || it->second.until < std::chrono::steady_clock::now()) return {};
  return "." + it->second.tag;
}

}  // namespace aether::store_detail
