// The JetStream commit scanner (store/commit_scan.hpp), the fast path of every
// replay from JetStream: any stored body is scanned or refused, never a crash,
// and what it reads agrees with the full JSON parser the store falls back on.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include <nlohmann/json.hpp>

#include "store/commit_scan.hpp"

namespace {

using json = nlohmann::json;

void check(bool condition) {
  if (!condition) std::abort();
}

// When the body is valid JSON, the scanner's events are the parser's events.
void compare_with_parser(std::string_view body, const aether::ScannedCommit& scanned) {
  const json j = json::parse(body.begin(), body.end(), nullptr, false);
  if (j.is_discarded() || !j.is_object()) return;
  const auto events = j.find("events");
  check(events != j.end() && events->is_array());
  // A repeated "events" member: the scanner reads them all, the parser the
  // last; the store then finds the count off and refuses the commit.
  if (events->size() != scanned.events.size()) return;
  for (size_t i = 0; i < scanned.events.size(); ++i) {
    const json& e = (*events)[i];
    check(e.is_object() && e.contains("type") && e["type"].is_string() && e.contains("payload"));
    check(e["type"].get<std::string>() == scanned.events[i].type);
    check(json::parse(scanned.events[i].payload.begin(), scanned.events[i].payload.end()) == e["payload"]);
  }
  if (auto ts = j.find("timestamp"); ts != j.end() && ts->is_number_integer()) {
    check(ts->get<int64_t>() == scanned.timestamp);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  aether::ScannedCommit scanned;
  if (!aether::scan_commit(body, scanned)) return 0;
  for (const auto& e : scanned.events) {
    // Views into the body.
    check(e.type.data() >= body.data() && e.type.data() + e.type.size() <= body.data() + size);
    check(e.payload.data() >= body.data() && e.payload.data() + e.payload.size() <= body.data() + size);
    check(!e.payload.empty());
  }
  compare_with_parser(body, scanned);
  return 0;
}
