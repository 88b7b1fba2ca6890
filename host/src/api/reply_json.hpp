// The JSON of the API's replies that the HTTP routes and the NATS ingress
// share, written in one place (command_api.cpp): errors
// {"error":{"code","message",...}} and events {"id","version","type","payload"}.
// Includes nlohmann/json: for the api module's .cpp files only.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "api/command_api.hpp"
#include "core/records.hpp"

namespace aether {

// An error reply; `extra` members join "code" and "message". Never throws:
// bytes of a message that are not UTF-8 become U+FFFD.
ApiReply error_reply(int status, const std::string& code, const std::string& message,
                     const nlohmann::json& extra = nlohmann::json::object());

// An event of actor `key` as the API shows it. A payload that is not JSON
// (or nests too deep to walk) is shown as a string.
nlohmann::json event_json(const ActorKey& key, const StoredEvent& e);

}  // namespace aether
