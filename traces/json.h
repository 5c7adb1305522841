// Protobuf messages as JSON: proto field names, every field printed (zeros
// too), map keys sorted, so the same message always gives the same bytes.
#ifndef STEPSIM_TRACES_JSON_H_
#define STEPSIM_TRACES_JSON_H_

#include <google/protobuf/message.h>

#include <string>

namespace stepsim::traces {

// Pretty-printed JSON followed by a newline.
std::string ToJson(const google::protobuf::Message& message);

}  // namespace stepsim::traces

#endif  // STEPSIM_TRACES_JSON_H_
