// A stored message asked of its stream's leader ($JS.API.STREAM.MSG.GET),
// taking the leader's answer over another member's claim that the stream
// has no leader. cnats' js_GetMsg and js_GetLastMsg take the first answer:
// every server of the stream's group may answer the request, and a member
// that was paused or cut off (longer than an election timeout) answers
// "JetStream system temporarily unavailable" (10008) at once, until it hears
// from the leader again, which took seconds in our fault tests. As the
// server a client is connected to, its answer is the first one.
#include <nats/nats.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "nats/connection.hpp"

namespace aether {
namespace {

// Standard base64 with padding (Go's encoding/json for []byte).
// nullopt on anything else.
std::optional<std::string> base64_decode(std::string_view in) {
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  if (in.size() % 4 != 0) return std::nullopt;
  std::string out;
  out.reserve(in.size() / 4 * 3);
  for (size_t i = 0; i < in.size(); i += 4) {
    int v[4];
    int pad = 0;
    for (int k = 0; k < 4; ++k) {
      const char c = in[i + static_cast<size_t>(k)];
      if (c == '=' && i + 4 == in.size() && k >= 2) {
        v[k] = 0;
        ++pad;
      } else if (pad > 0 || (v[k] = value(c)) < 0) {
        return std::nullopt;
      }
    }
    const unsigned n = (static_cast<unsigned>(v[0]) << 18) | (static_cast<unsigned>(v[1]) << 12) |
                       (static_cast<unsigned>(v[2]) << 6) | static_cast<unsigned>(v[3]);
    out += static_cast<char>((n >> 16) & 0xff);
    if (pad < 2) out += static_cast<char>((n >> 8) & 0xff);
    if (pad < 1) out += static_cast<char>(n & 0xff);
  }
  return out;
}

// Sets the headers of a NATS header block ("NATS/1.0\r\nKey: Value\r\n...")
// on `m`. False if the block is malformed.
bool set_headers(natsMsg* m, std::string_view block) {
  size_t eol = block.find("\r\n");
  if (eol == std::string_view::npos || block.substr(0, 8) != "NATS/1.0") return false;
  size_t pos = eol + 2;
  while (pos < block.size()) {
    eol = block.find("\r\n", pos);
    if (eol == std::string_view::npos) return false;
    const std::string_view line = block.substr(pos, eol - pos);
    pos = eol + 2;
    if (line.empty()) break;
    const size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) return false;
    std::string_view value = line.substr(colon + 1);
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
    const std::string k(line.substr(0, colon)), v(value);
    if (natsMsgHeader_Add(m, k.c_str(), v.c_str()) != NATS_OK) return false;
  }
  return true;
}

// One answer to the request: the message, or the API's error.
struct Answer {
  natsStatus status = NATS_ERR;
  int js_error = 0;
  natsMsg* msg = nullptr;
  uint64_t seq = 0;
};

// The member `key` of object `o` as a string or an unsigned number, if it
// is one (nlohmann's value() throws on a member of another type).
std::optional<std::string> string_member(const nlohmann::json& o, const char* key) {
  const auto it = o.find(key);
  if (it == o.end() || !it->is_string()) return std::nullopt;
  return it->get<std::string>();
}
std::optional<uint64_t> unsigned_member(const nlohmann::json& o, const char* key) {
  const auto it = o.find(key);
  if (it == o.end() || !it->is_number_unsigned()) return std::nullopt;
  return it->get<uint64_t>();
}

// Reads one answer without throwing: anything not of the API's shape is a
// failed answer (NATS_ERR, no JetStream error).
Answer read_answer(natsMsg* reply) {
  Answer a;
  const auto j = nlohmann::json::parse(
      std::string_view(natsMsg_GetData(reply), static_cast<size_t>(std::max(0, natsMsg_GetDataLength(reply)))),
      nullptr, false);
  if (!j.is_object()) return a;
  if (auto e = j.find("error"); e != j.end() && e->is_object()) {
    const uint64_t code = unsigned_member(*e, "err_code").value_or(0);
    a.js_error = code <= 100000 ? static_cast<int>(code) : 0;
    a.status = a.js_error == JSNoMessageFoundErr || unsigned_member(*e, "code") == 404u ? NATS_NOT_FOUND : NATS_ERR;
    return a;
  }
  const auto m = j.find("message");
  if (m == j.end() || !m->is_object()) return a;
  const auto subject = string_member(*m, "subject");
  const auto seq = unsigned_member(*m, "seq");
  // "data" and "hdrs" are left out when empty, and else strings.
  const auto optional_string = [&](const char* key) -> std::optional<std::string> {
    if (!m->contains(key)) return std::string();
    return string_member(*m, key);
  };
  const auto data_text = optional_string("data");
  const auto hdrs_text = optional_string("hdrs");
  if (!subject || subject->empty() || !seq || *seq == 0 || !data_text || !hdrs_text) return a;
  const auto data = base64_decode(*data_text);
  const auto hdrs = base64_decode(*hdrs_text);
  if (!data || !hdrs) return a;
  natsMsg* out = nullptr;
  if (natsMsg_Create(&out, subject->c_str(), nullptr, data->data(), static_cast<int>(data->size())) != NATS_OK) {
    return a;
  }
  if (!hdrs->empty() && !set_headers(out, *hdrs)) {
    natsMsg_Destroy(out);
    return a;
  }
  a.status = NATS_OK;
  a.msg = out;
  a.seq = *seq;
  return a;
}

int leader_get_msg(NatsConnection& connection, const std::string& stream, const std::string& request, natsMsg** msg,
                   uint64_t* seq, int* js_error) {
  using Clock = std::chrono::steady_clock;
  *msg = nullptr;
  if (js_error != nullptr) *js_error = 0;
  // A lost connection fails at once, as cnats' requests do on this
  // connection (natsOptions_SetFailRequestsOnDisconnect).
  if (!connection.connected()) return NATS_CONNECTION_DISCONNECTED;
  natsInbox* inbox = nullptr;
  natsSubscription* sub = nullptr;
  natsStatus s = natsInbox_Create(&inbox);
  if (s == NATS_OK) s = natsConnection_SubscribeSync(&sub, connection.nc(), inbox);
  const std::string subject = "$JS.API.STREAM.MSG.GET." + stream;
  if (s == NATS_OK) {
    s = natsConnection_PublishRequest(connection.nc(), subject.c_str(), inbox, request.data(),
                                      static_cast<int>(request.size()));
  }
  const int64_t timeout_ms = std::max<int64_t>(1, connection.options().request_timeout_ms);
  const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  // After a claim of no leader, the leader's answer is waited for this long.
  const auto grace = std::chrono::milliseconds(std::max<int64_t>(50, timeout_ms / 4));
  std::optional<Answer> claim;
  auto until = deadline;
  Answer got;
  got.status = s;
  while (s == NATS_OK) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now()).count();
    natsMsg* reply = nullptr;
    const natsStatus n = left > 0 ? natsSubscription_NextMsg(&reply, sub, left) : NATS_TIMEOUT;
    if (n != NATS_OK) {
      got = claim ? *claim : Answer{connection.connected() ? n : NATS_CONNECTION_DISCONNECTED};
      break;
    }
    if (natsMsg_IsNoResponders(reply)) {
      natsMsg_Destroy(reply);
      got = claim ? *claim : Answer{NATS_NO_RESPONDERS};
      break;
    }
    Answer a = read_answer(reply);
    natsMsg_Destroy(reply);
    if (a.status == NATS_ERR && (a.js_error == JSClusterNotAvailErr || a.js_error == JSClusterNotLeaderErr)) {
      if (!claim) {
        claim = a;
        until = std::min(deadline, Clock::now() + grace);
      }
      continue;
    }
    got = a;
    break;
  }
  if (sub != nullptr) natsSubscription_Destroy(sub);
  natsInbox_Destroy(inbox);
  *msg = got.msg;
  if (seq != nullptr) *seq = got.seq;
  if (js_error != nullptr) *js_error = got.js_error;
  return got.status;
}

}  // namespace

int leader_get_last(NatsConnection& connection, const std::string& stream, const std::string& subject, natsMsg** msg,
                    uint64_t* seq, int* js_error) {
  const std::string request = nlohmann::json{{"last_by_subj", subject}}.dump();
  return leader_get_msg(connection, stream, request, msg, seq, js_error);
}

int leader_get_seq(NatsConnection& connection, const std::string& stream, uint64_t seq, natsMsg** msg,
                   int* js_error) {
  const std::string request = nlohmann::json{{"seq", seq}}.dump();
  return leader_get_msg(connection, stream, request, msg, nullptr, js_error);
}

int leader_get_next(NatsConnection& connection, const std::string& stream, const std::string& subject,
                    uint64_t from_seq, natsMsg** msg, uint64_t* seq, int* js_error) {
  const std::string request = nlohmann::json{{"seq", from_seq}, {"next_by_subj", subject}}.dump();
  return leader_get_msg(connection, stream, request, msg, seq, js_error);
}

}  // namespace aether
