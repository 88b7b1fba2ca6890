// The actors of a JetStream events stream, from its subjects: for the
// shadow check's sample of passive actors (Journal::sample_actors).
#pragma once

#include <cstdint>
#include <string>

#include "core/status.hpp"
#include "store/store.hpp"

typedef struct __jsCtx jsCtx;

namespace aether {

// The subjects of `stream` that start with `prefix` (one per actor, the id
// after the prefix), counted, and up to `n` of them picked at random. Asks
// the server for the stream's subject counts; reads no message.
Result<ActorSample> sample_stream_subjects(jsCtx* js, const std::string& stream, const std::string& prefix,
                                           uint64_t n);

}  // namespace aether
