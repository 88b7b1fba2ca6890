#include "store/store.hpp"

#include <future>

namespace aether {

AppendResult EventStore::append_sync(const AppendRequest& request) {
  std::promise<AppendResult> p;
  auto f = p.get_future();
  append(request, [&p](AppendResult r) { p.set_value(std::move(r)); });
  return f.get();
}

Result<std::vector<StoredEvent>> EventStore::read_all(const ActorKey& key, uint64_t from_version,
                                                      uint64_t limit) {
  std::vector<StoredEvent> out;
  Status s = read(key, from_version, limit, [&out](const StoredEvent& e) {
    out.push_back(e);
    return Status::ok();
  });
  if (!s) return s;
  return out;
}

}  // namespace aether
