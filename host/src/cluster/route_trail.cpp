#include "cluster/route_trail.hpp"

#include <cstdlib>

#include "core/names.hpp"

namespace aether {

namespace {

// A decimal number of at most 19 digits.
bool parse_decimal(const char* text, uint64_t& out) {
  std::string s(text);
  if (s.empty() || s.size() > 19) return false;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
  }
  out = std::strtoull(s.c_str(), nullptr, 10);
  return true;
}

}  // namespace

bool RouteTrail::on_path(const std::string& node) const {
  for (const auto& p : path) {
    if (p == node) return true;
  }
  return false;
}

std::string RouteTrail::path_text() const {
  std::string out;
  for (const auto& p : path) out += (out.empty() ? "" : ",") + p;
  return out;
}

Result<RouteTrail> parse_route_trail(const char* epoch, const char* path, const char* budget, int64_t max_budget_ms) {
  RouteTrail t;
  if (epoch != nullptr && !parse_decimal(epoch, t.epoch)) {
    return Status::invalid(std::string("header ") + kHeaderEpoch + " must be a decimal number, got " +
                           quote_for_message(epoch));
  }
  if (budget != nullptr) {
    uint64_t b = 0;
    if (!parse_decimal(budget, b)) {
      return Status::invalid(std::string("header ") + kHeaderBudget + " must be a decimal number, got " +
                             quote_for_message(budget));
    }
    t.budget_ms = static_cast<int64_t>(std::min<uint64_t>(b, static_cast<uint64_t>(max_budget_ms)));
  }
  if (path == nullptr || *path == '\0') return t;
  const std::string text(path);
  for (size_t start = 0;;) {
    const size_t comma = text.find(',', start);
    std::string node = text.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    if (t.path.size() >= RouteTrail::kMaxPath) {
      return Status::invalid(std::string("header ") + kHeaderPath + " names more than " +
                             std::to_string(RouteTrail::kMaxPath) + " nodes");
    }
    if (std::string why = check_name(node); !why.empty()) {
      return Status::invalid(std::string("header ") + kHeaderPath + ": node " + quote_for_message(node) + " " + why);
    }
    t.path.push_back(std::move(node));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return t;
}

TrailStep check_trail(const RouteTrail& trail, uint64_t my_epoch, const std::string& target, bool map_fetched) {
  if (trail.epoch > my_epoch && !map_fetched) return TrailStep::kFetchMap;
  if (!target.empty() && trail.on_path(target)) return TrailStep::kRedirect;
  return TrailStep::kGo;
}

}  // namespace aether
