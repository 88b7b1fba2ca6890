#include "runtime/idempotency.hpp"

#include <nlohmann/json.hpp>

#include <array>
#include <charconv>

#include "core/names.hpp"
#include "core/sha256.hpp"
#include "store/store.hpp"

namespace aether {
namespace {

// Deeper payloads are digested as their bytes: canonical JSON needs a tree,
// and building one that deep costs a recursion per level.
constexpr size_t kMaxCanonicalDepth = 256;

size_t nesting_depth(std::string_view json) {
  size_t depth = 0, max = 0;
  bool in_string = false;
  for (size_t i = 0; i < json.size(); ++i) {
    const char c = json[i];
    if (in_string) {
      if (c == '\\') ++i;
      else if (c == '"') in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      max = std::max(max, ++depth);
    } else if ((c == '}' || c == ']') && depth > 0) {
      --depth;
    }
  }
  return max;
}

std::string canonical_json(std::string_view payload) {
  if (payload.empty()) return "{}";
  if (nesting_depth(payload) > kMaxCanonicalDepth) return std::string(payload);
  auto parsed = nlohmann::json::parse(payload.begin(), payload.end(), nullptr, false);
  if (parsed.is_discarded()) return std::string(payload);
  return parsed.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string to_hex(std::string_view s) {
  static const char* d = "0123456789abcdef";
  std::string out;
  out.reserve(s.size() * 2);
  for (unsigned char c : s) {
    out += d[c >> 4];
    out += d[c & 15];
  }
  return out;
}

bool from_hex(std::string_view h, std::string& out) {
  if (h.size() % 2 != 0) return false;
  out.clear();
  auto val = [](char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  for (size_t i = 0; i < h.size(); i += 2) {
    const int hi = val(h[i]), lo = val(h[i + 1]);
    if (hi < 0 || lo < 0) return false;
    out += static_cast<char>(hi * 16 + lo);
  }
  return true;
}

// Splits off the next space-separated field of `line`.
std::string_view next_field(std::string_view& line) {
  const size_t sp = line.find(' ');
  std::string_view f = line.substr(0, sp);
  line = sp == std::string_view::npos ? std::string_view() : line.substr(sp + 1);
  return f;
}

template <class T>
bool parse_number(std::string_view f, T& out) {
  auto [p, ec] = std::from_chars(f.data(), f.data() + f.size(), out);
  return ec == std::errc() && p == f.data() + f.size() && !f.empty();
}

constexpr std::string_view kRecordHeader = "aether-idempotency 1 ";
// The same with "filter" lines after the keys.
constexpr std::string_view kRecordHeader2 = "aether-idempotency 2 ";

constexpr uint32_t kFirstSliceKeys = 128;
constexpr int kProbes = 8;

// The probes of `key` into `bits` (a multiple of 64): double hashing of two
// 64-bit halves of its SHA-256.
template <class Fn>
void probes(std::string_view key, size_t bits, Fn&& fn) {
  const std::array<uint8_t, 32> h = sha256(key);
  uint64_t a = 0, b = 0;
  for (int i = 0; i < 8; ++i) {
    a = a << 8 | h[i];
    b = b << 8 | h[8 + i];
  }
  b |= 1;
  for (int i = 0; i < kProbes; ++i) fn((a + static_cast<uint64_t>(i) * b) % bits);
}

}  // namespace

bool KeyFilter::add(std::string_view key) {
  if (slices_.empty() || slices_.back().count >= slices_.back().capacity) {
    const uint32_t capacity = slices_.empty() ? kFirstSliceKeys : slices_.back().capacity * 2;
    if (bytes() + words_for(capacity) * 8 > kMaxBytes) return false;
    slices_.push_back(Slice{capacity, 0, std::vector<uint64_t>(words_for(capacity))});
  }
  Slice& s = slices_.back();
  probes(key, s.bits.size() * 64, [&](uint64_t bit) { s.bits[bit / 64] |= uint64_t{1} << (bit % 64); });
  ++s.count;
  return true;
}

bool KeyFilter::may_hold(std::string_view key) const {
  for (const Slice& s : slices_) {
    bool all = true;
    probes(key, s.bits.size() * 64, [&](uint64_t bit) { all = all && (s.bits[bit / 64] >> (bit % 64) & 1) != 0; });
    if (all) return true;
  }
  return false;
}

size_t KeyFilter::bytes() const {
  size_t n = 0;
  for (const Slice& s : slices_) n += s.bits.size() * 8;
  return n;
}

void KeyFilter::encode(std::string& out) const {
  for (const Slice& s : slices_) {
    std::string bytes;  // the words, most significant byte first
    bytes.reserve(s.bits.size() * 8);
    for (uint64_t w : s.bits) {
      for (int shift = 56; shift >= 0; shift -= 8) bytes += static_cast<char>((w >> shift) & 0xff);
    }
    out += "filter " + std::to_string(s.capacity) + ' ' + std::to_string(s.count) + ' ' + to_hex(bytes) + '\n';
  }
}

bool KeyFilter::decode_slice(std::string_view line) {
  Slice s;
  if (!parse_number(next_field(line), s.capacity) || !parse_number(next_field(line), s.count)) return false;
  const uint32_t expected = slices_.empty() ? kFirstSliceKeys : slices_.back().capacity * 2;
  if (s.capacity != expected || s.count > s.capacity || bytes() + words_for(s.capacity) * 8 > kMaxBytes) return false;
  const std::string_view hex = next_field(line);
  if (!line.empty() || hex.size() != words_for(s.capacity) * 16) return false;
  std::string bytes;
  if (!from_hex(hex, bytes)) return false;
  s.bits.resize(words_for(s.capacity));
  for (size_t i = 0; i < bytes.size(); ++i) {
    s.bits[i / 8] = s.bits[i / 8] << 8 | static_cast<unsigned char>(bytes[i]);
  }
  slices_.push_back(std::move(s));
  return true;
}

std::string command_digest(std::string_view name, std::string_view payload) {
  std::string input(name);
  input += '\0';
  input += canonical_json(payload);
  return sha256_hex(input).substr(0, 32);
}

bool digests_match(const std::string& first, const std::string& retry) {
  return first.empty() || retry.empty() || first == retry;
}

void IdempotencyWindow::add(std::string key, KeyedCommit commit, const IdempotencyRetention& retention,
                            int64_t now_ms) {
  entries_.emplace_back(std::move(key), std::move(commit));
  trim(retention, now_ms);
}

const KeyedCommit* IdempotencyWindow::find(const std::string& key, const IdempotencyRetention& retention,
                                           int64_t now_ms) {
  trim(retention, now_ms);
  for (const auto& [k, c] : entries_) {
    if (k == key) return &c;
  }
  return nullptr;
}

void IdempotencyWindow::trim(const IdempotencyRetention& retention, int64_t now_ms) {
  const size_t keep = std::max<uint32_t>(1, retention.keys);
  while (entries_.size() > keep ||
         (!entries_.empty() && retention.age_ms > 0 && now_ms - entries_.front().second.timestamp_ms > retention.age_ms)) {
    // A key dropped from a complete window goes to the filter; once the
    // filter is full, the window is no longer complete.
    if (complete_ && !dropped_.add(entries_.front().first)) mark_incomplete();
    entries_.pop_front();
  }
}

// "aether-idempotency 1 complete|partial\n", then one line per key, oldest
// first: "<first> <last> <timestamp> <digest or -> <key in hex>\n".
// Version 2 (written only when the window has dropped keys into its
// filter, so that a record without one stays readable by hosts that know
// version 1 only): the same, then the filter's lines.
std::string IdempotencyWindow::encode() const {
  std::string out(dropped_.empty() ? kRecordHeader : kRecordHeader2);
  out += complete_ ? "complete\n" : "partial\n";
  for (const auto& [k, c] : entries_) {
    out += std::to_string(c.first_version) + ' ' + std::to_string(c.last_version) + ' ' +
           std::to_string(c.timestamp_ms) + ' ' + (c.digest.empty() ? "-" : c.digest) + ' ' + to_hex(k) + '\n';
  }
  dropped_.encode(out);
  return out;
}

Result<IdempotencyWindow> IdempotencyWindow::decode(std::string_view record) {
  auto bad = [](const std::string& why) {
    return Status::corruption("idempotency record of the snapshot: " + why);
  };
  IdempotencyWindow w;
  const size_t eol = record.find('\n');
  const bool v2 = record.substr(0, kRecordHeader2.size()) == kRecordHeader2;
  if (eol == std::string_view::npos || (record.substr(0, kRecordHeader.size()) != kRecordHeader && !v2)) {
    return bad("unknown format");
  }
  const std::string_view state = record.substr(kRecordHeader.size(), eol - kRecordHeader.size());
  if (state != "complete" && state != "partial") return bad("unknown state " + quote_for_message(std::string(state)));
  w.complete_ = state == "complete";
  record.remove_prefix(eol + 1);
  while (!record.empty()) {
    // (A partial record's filter lines are read for their checks, then
    // dropped: an incomplete window looks every key up.)
    const size_t end = record.find('\n');
    if (end == std::string_view::npos) return bad("truncated");
    std::string_view line = record.substr(0, end);
    record.remove_prefix(end + 1);
    if (constexpr std::string_view kFilter = "filter "; v2 && line.substr(0, kFilter.size()) == kFilter) {
      if (!w.dropped_.decode_slice(line.substr(kFilter.size()))) return bad("undecodable filter line");
      continue;
    }
    if (!w.dropped_.empty()) return bad("a key after the filter");
    KeyedCommit c;
    std::string key;
    const std::string_view digest = (parse_number(next_field(line), c.first_version) &&
                                     parse_number(next_field(line), c.last_version) &&
                                     parse_number(next_field(line), c.timestamp_ms))
                                        ? next_field(line)
                                        : std::string_view();
    if (digest.empty() || !from_hex(next_field(line), key) || !line.empty() || key.empty()) {
      return bad("undecodable line");
    }
    if (digest != "-") c.digest = std::string(digest);
    w.entries_.emplace_back(std::move(key), std::move(c));
  }
  if (!w.complete_) w.dropped_.clear();
  return w;
}

Result<std::unique_ptr<IdempotencyWindow>> window_from_snapshot(const Snapshot& snapshot) {
  auto w = std::make_unique<IdempotencyWindow>();
  if (snapshot.host_record.empty()) {
    w->mark_incomplete();
    return w;
  }
  auto decoded = IdempotencyWindow::decode(snapshot.host_record);
  if (!decoded) return decoded.status();
  *w = std::move(decoded).value();
  return w;
}

std::string snapshot_record(const IdempotencyWindow* window) {
  return window != nullptr ? window->encode() : IdempotencyWindow().encode();
}

void remember_key(std::unique_ptr<IdempotencyWindow>& window, const StoredEvent& e,
                  const IdempotencyRetention& retention, int64_t now_ms) {
  if (e.idempotency_key.empty()) return;
  if (!window) window = std::make_unique<IdempotencyWindow>();
  const uint64_t first = e.commit_first_version != 0 ? e.commit_first_version : e.version;
  window->add(e.idempotency_key, KeyedCommit{first, e.version, e.timestamp_ms, e.command_digest}, retention,
              now_ms);
}

Result<KeyCheck> check_key(IdempotencyWindow* window, Journal& store, const ActorKey& actor,
                           const std::string& key, const std::string& digest,
                           const IdempotencyRetention& retention, int64_t now_ms) {
  KeyCheck out;
  if (window != nullptr) {
    if (const KeyedCommit* c = window->find(key, retention, now_ms)) {
      out.first = IdempotentCommit{c->first_version, c->last_version, c->digest};
    } else if (!window->complete() || window->may_have_dropped(key)) {
      // Older than what the actor remembers: the store's cache may know it.
      auto hit = store.find_idempotent(actor, key);
      if (!hit) return hit.status();
      if (hit->has_value()) out.first = **hit;
    }
  }
  if (out.first.last_version == 0) return out;
  out.outcome = digests_match(out.first.digest, digest) ? KeyCheck::Outcome::kDuplicate : KeyCheck::Outcome::kReused;
  return out;
}

Status key_reused(const ActorKey& actor, const std::string& key, const IdempotentCommit& first) {
  return Status(StatusCode::kRejected,
                "idempotency key " + quote_for_message(key) + " of actor " + actor.to_string() +
                    " was first used for a different command (another command name or payload), committed as "
                    "version " + std::to_string(first.first_version) +
                    (first.last_version != first.first_version ? ".." + std::to_string(first.last_version) : "") +
                    "; use a new key for a new command");
}

}  // namespace aether
