#include "store/stream_subjects.hpp"

#include <nats/nats.h>

#include "nats/connection.hpp"

namespace aether {

Result<ActorSample> sample_stream_subjects(jsCtx* js, const std::string& stream, const std::string& prefix,
                                           uint64_t n) {
  jsOptions o;
  jsOptions_Init(&o);
  const std::string filter = prefix + "*";
  o.Stream.Info.SubjectsFilter = filter.c_str();
  jsStreamInfo* si = nullptr;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  const natsStatus s = js_GetStreamInfo(&si, js, stream.c_str(), &o, &jerr);
  if (s == NATS_NOT_FOUND || jerr == JSStreamNotFoundErr) return ActorSample{};  // no events yet
  if (s != NATS_OK) return Status::unavailable(nats_error(s, "listing the actors of stream " + stream));
  ActorSampler sampler(n);
  if (const jsStreamStateSubjects* subjects = si->State.Subjects; subjects != nullptr) {
    for (int i = 0; i < subjects->Count; ++i) {
      const std::string subject = subjects->List[i].Subject;
      if (subjects->List[i].Msgs > 0 && subject.size() > prefix.size() && subject.compare(0, prefix.size(), prefix) == 0) {
        sampler.offer(subject.substr(prefix.size()));
      }
    }
  }
  jsStreamInfo_Destroy(si);
  return sampler.take();
}

}  // namespace aether
