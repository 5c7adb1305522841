// Protobuf messages as JSON: proto field names, every field printed (zeros
// too), map keys sorted, so the same message always gives the same bytes.
#ifndef STEPSIM_TRACES_JSON_H_
#define STEPSIM_TRACES_JSON_H_

#include <google/protobuf/message.h>

#include <string>

namespace stepsim::traces {

// Pretty-printed JSON followed by a newline.
std::string ToJson(const google::protobuf::Message& message);

// The same bytes as ToJson(message), with the top-level repeated message
// field `field` converted element by element on up to `threads` threads
// (0: one per core): a fit's 176,000 configurations convert in a fraction of
// the time and memory of one conversion of the whole report.
std::string ToJsonByElement(const google::protobuf::Message& message, const std::string& field,
                            int threads = 0);

}  // namespace stepsim::traces

#endif  // STEPSIM_TRACES_JSON_H_
