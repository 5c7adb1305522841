// One vocabulary for enum values: the names every input accepts and every
// output prints.
//
// A value is named as proto/scenario.proto spells it: ONE_F_ONE_B, ZB_H1,
// FULL, DISPATCHED. Inputs (scenario files, --set, compare's --schedules)
// accept that name in any letter case and nothing else: no numbers, no
// aliases, never the *_UNSPECIFIED value. Outputs (tables, report JSON,
// messages) print the name exactly. Booleans are `true` or `false`.
#ifndef STEPSIM_GRAPH_NAMES_H_
#define STEPSIM_GRAPH_NAMES_H_

#include <google/protobuf/descriptor.h>
#include <google/protobuf/generated_enum_reflection.h>

#include <string>
#include <string_view>

#include "graph/status.h"

namespace stepsim::graph {

// The name of value `number` of `type`; "<number>" for a number the enum
// does not define.
std::string EnumName(const google::protobuf::EnumDescriptor* type, int number);

template <typename E>
std::string EnumName(E value) {
  return EnumName(google::protobuf::GetEnumDescriptor<E>(), static_cast<int>(value));
}

// The accepted names, for messages: "NONE, FULL, SELECTIVE".
std::string EnumNames(const google::protobuf::EnumDescriptor* type);

// The value `text` names (any letter case). kInvalidInput for anything
// else: `unknown value "x" (expected one of NONE, FULL, SELECTIVE)`.
StatusOr<int> ParseEnumName(const google::protobuf::EnumDescriptor* type, std::string_view text);

template <typename E>
StatusOr<E> ParseEnumName(std::string_view text) {
  StatusOr<int> number = ParseEnumName(google::protobuf::GetEnumDescriptor<E>(), text);
  if (!number.ok()) return number.status();
  return static_cast<E>(*number);
}

// `true` or `false`; kInvalidInput for anything else.
StatusOr<bool> ParseBool(std::string_view text);

}  // namespace stepsim::graph

#endif  // STEPSIM_GRAPH_NAMES_H_
