// Reading scenario files: protobuf text format with located error messages,
// and the place where each field was set, to locate later errors too.
#ifndef STEPSIM_GRAPH_SCENARIO_TEXT_H_
#define STEPSIM_GRAPH_SCENARIO_TEXT_H_

#include <google/protobuf/message.h>

#include <functional>
#include <map>
#include <string>
#include <string_view>

#include "graph/status.h"
#include "scenario.pb.h"

namespace stepsim::graph {

// Where each field of a scenario was set: "file:line:col" in the scenario
// file, or "--set path=value" for a command-line override.
class FieldPlaces {
 public:
  // Records that `path` ("parallel.ep") was set at `place`; a later record
  // of the same path replaces the earlier one (as the value does).
  void Set(const std::string& path, std::string place);
  // The place of `path`; for a model.* field set by neither, the place of
  // model.preset (the preset supplied it). "" when unknown.
  std::string Find(std::string_view path) const;
  // `message` with every line that starts with a field path ("parallel.ep:
  // 7 does not divide ...") prefixed by that field's place and ": ".
  std::string Locate(std::string_view message) const;
  // The same for a kInvalidInput status; any other status is returned as is.
  Status Locate(const Status& status) const;

 private:
  std::map<std::string, std::string, std::less<>> places_;
};

// Parses `text` (the contents of the file called `filename`) as a Scenario.
// A leading UTF-8 byte-order mark is skipped. Returns kInvalidInput with
// "filename:line:col: message" (1-based, columns in bytes), the offending
// line and a caret under the column for: a syntax error, an unknown field,
// an unknown enum value, invalid UTF-8, an enum value written as a number
// or a boolean written other than true/false (see graph/names.h). Enum names
// are accepted in any letter case. When `places` is given, records where
// each field was set.
StatusOr<Scenario> ParseScenario(std::string_view text, std::string_view filename,
                                 FieldPlaces* places = nullptr);

// The same for any message type (model presets, schedule files). When
// `parsed_text` is given, it receives the text as protobuf parsed it: enum
// names written in another letter case rewritten to the proto's (same
// length, same places), the byte-order mark gone.
Status ParseTextMessage(std::string_view text, std::string_view filename,
                        google::protobuf::Message* message, FieldPlaces* places = nullptr,
                        std::string* parsed_text = nullptr);

// Formats "filename:line:col: message" followed by the 1-based `line` of
// `text` and a caret under `col` (1-based, in bytes). Used for every
// located input error.
std::string LocatedError(std::string_view text, std::string_view filename,
                         int line, int col, std::string_view message);

// LocatedError at byte `offset` of `text`.
std::string LocatedErrorAt(std::string_view text, std::string_view filename, size_t offset,
                           std::string_view message);

// The byte offset in `text` of protobuf's 0-based (line, column), whose
// tokenizer counts a tab as advancing to the next multiple of 8 (the end of
// the text past its last line).
size_t ProtobufOffset(std::string_view text, int line, int column);

// "filename:line:col" of byte `offset` of `text`.
std::string PlaceOf(std::string_view text, std::string_view filename, size_t offset);

}  // namespace stepsim::graph

#endif  // STEPSIM_GRAPH_SCENARIO_TEXT_H_
