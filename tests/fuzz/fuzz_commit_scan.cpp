// The JetStream commit scanner (store/commit_scan.hpp), the fast path of every
// replay from JetStream: any stored body is scanned or refused, never a crash,
// and what it reads agrees with the full JSON parser the store falls back on.
#include <cstdint>
#include <cstdlib>
#include <string>
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

// The head reader (scan_commit_head) reads what the parser reads, when
// both take the body (a repeated member: the last one, for both).
void check_head(std::string_view body) {
  aether::ScannedHead head;
  if (!aether::scan_commit_head(body, head)) return;
  for (std::string_view v : {head.commit_id, head.idempotency_key, head.command_digest}) {
    check(v.empty() || (v.data() >= body.data() && v.data() + v.size() <= body.data() + body.size()));
  }
  const json j = json::parse(body.begin(), body.end(), nullptr, false);
  if (j.is_discarded()) return;
  check(j.is_object());
  const auto number = [&](const char* k, uint64_t scanned) {
    auto it = j.find(k);
    check(it != j.end() && it->is_number_integer() && it->get<int64_t>() >= 0 &&
          static_cast<uint64_t>(it->get<int64_t>()) == scanned);
  };
  const auto text = [&](const char* k, std::string_view scanned, bool required) {
    auto it = j.find(k);
    if (it == j.end()) return check(!required && scanned.empty());
    check(it->is_string() && it->get<std::string>() == scanned);
  };
  number("first_version", head.first_version);
  number("version", head.version);
  text("commit_id", head.commit_id, true);
  text("idempotency_key", head.idempotency_key, false);
  text("command_digest", head.command_digest, false);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  check_head(body);
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
