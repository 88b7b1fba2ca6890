// Every NATS subject aether uses, built and parsed in one place. Names and
// ids are from the safe alphabet (core/names.hpp), so none holds a '.' or a
// wildcard and a subject's tokens are its parts.
//
//   aether.<ns>.events.<type>.<id>      commits (store/commit_codec.hpp)
//   aether.<ns>.snapshots.<type>.<id>   snapshots (jetstream store)
//   aether.<ns>.cmd.<type>.<id>         command request/reply, queue aether.<ns>
//   aether._cluster.fwd.<node>.<ns>.<type>.<id>  a command forwarded to its owner
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/records.hpp"

namespace aether::subjects {

// The subject of an actor's commits.
inline std::string events(std::string_view ns, std::string_view type, std::string_view id) {
  std::string s = "aether.";
  s.append(ns).append(".events.").append(type).append(".").append(id);
  return s;
}
inline std::string events(const ActorKey& k) { return events(k.ns, k.type, k.id); }

// The commits of a namespace, of one type, of one actor: an empty type or id
// matches any (`*`).
inline std::string events_pattern(std::string_view ns, std::string_view type = {}, std::string_view id = {}) {
  return events(ns, type.empty() ? "*" : type, id.empty() ? "*" : id);
}
// Every commit of a namespace (the events stream's subjects).
inline std::string all_events(std::string_view ns) { return "aether." + std::string(ns) + ".events.>"; }

inline std::string snapshots(const ActorKey& k) {
  return "aether." + k.ns + ".snapshots." + k.type + "." + k.id;
}
inline std::string all_snapshots(std::string_view ns) { return "aether." + std::string(ns) + ".snapshots.>"; }

// The command subjects of a namespace and their queue group.
inline std::string commands_pattern(std::string_view ns) { return "aether." + std::string(ns) + ".cmd.*.*"; }
inline std::string command_queue(std::string_view ns) { return "aether." + std::string(ns); }

// Where commands forwarded to `node` go; the actor's ns.type.id follow.
inline std::string forward_prefix(std::string_view node) { return "aether._cluster.fwd." + std::string(node); }
inline std::string forward(std::string_view node, const ActorKey& k) {
  return forward_prefix(node) + "." + k.ns + "." + k.type + "." + k.id;
}

// A subject's dot-separated tokens.
inline std::vector<std::string_view> tokens(std::string_view subject) {
  std::vector<std::string_view> out;
  for (size_t start = 0;;) {
    const size_t dot = subject.find('.', start);
    out.push_back(subject.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start));
    if (dot == std::string_view::npos) return out;
    start = dot + 1;
  }
}

// The actor a command subject names: aether.<ns>.cmd.<type>.<id>, or a
// forwarded one, aether._cluster.fwd.<node>.<ns>.<type>.<id>. nullopt for
// any other shape (the parts are not checked against the safe alphabet).
inline std::optional<ActorKey> parse_command(std::string_view subject) {
  const auto t = tokens(subject);
  if (t.size() == 5 && t[0] == "aether" && t[2] == "cmd") {
    return ActorKey{std::string(t[1]), std::string(t[3]), std::string(t[4])};
  }
  if (t.size() == 7 && t[0] == "aether" && t[1] == "_cluster" && t[2] == "fwd") {
    return ActorKey{std::string(t[4]), std::string(t[5]), std::string(t[6])};
  }
  return std::nullopt;
}

// The actor an events subject names, or nullopt.
inline std::optional<ActorKey> parse_events(std::string_view subject) {
  const auto t = tokens(subject);
  if (t.size() != 5 || t[0] != "aether" || t[2] != "events") return std::nullopt;
  return ActorKey{std::string(t[1]), std::string(t[3]), std::string(t[4])};
}

}  // namespace aether::subjects
