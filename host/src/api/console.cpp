// GET /ui: the web console's files, compiled in (api/console_assets.hpp).
#include <string_view>

#include "api/console_assets.hpp"
#include "api/http_routes.hpp"

namespace aether {
namespace {

std::string media_type(const std::string& name) {
  const auto dot = name.rfind('.');
  const std::string ext = dot == std::string::npos ? "" : name.substr(dot + 1);
  if (ext == "html") return "text/html; charset=utf-8";
  if (ext == "js") return "text/javascript; charset=utf-8";
  if (ext == "css") return "text/css; charset=utf-8";
  if (ext == "svg") return "image/svg+xml";
  if (ext == "png") return "image/png";
  return "application/octet-stream";
}

}  // namespace

bool is_console_path(const std::string& path) { return path == "/ui" || path.rfind("/ui/", 0) == 0; }

std::optional<std::string> event_stream_namespace(const std::string& path) {
  static constexpr std::string_view kHead = "/v1/", kTail = "/events/stream";
  const std::string_view p(path);
  if (p.size() <= kHead.size() + kTail.size() || p.substr(0, kHead.size()) != kHead ||
      p.substr(p.size() - kTail.size()) != kTail) {
    return std::nullopt;
  }
  const std::string_view ns = p.substr(kHead.size(), p.size() - kHead.size() - kTail.size());
  if (ns.find('/') != std::string_view::npos) return std::nullopt;
  return std::string(ns);
}

ApiResponse console_reply(const std::string& path) {
  std::string name = path.size() <= 4 ? "index.html" : path.substr(4);
  if (name.empty()) name = "index.html";
  const ConsoleAsset* a = find_console_asset(name);
  if (a == nullptr) return {http_error_reply(404, "not_found", "the console has no file " + path)};
  return {ApiReply{200, std::string(a->data)}, media_type(name)};
}

}  // namespace aether
