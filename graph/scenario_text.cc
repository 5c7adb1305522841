#include "graph/scenario_text.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/io/tokenizer.h>
#include <google/protobuf/text_format.h>

#include <regex>
#include <vector>

namespace stepsim::graph {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::EnumDescriptor;
using google::protobuf::FieldDescriptor;

// The first enum-typed field called `name` anywhere below `type`, to list
// the values it accepts.
const EnumDescriptor* FindEnumField(const Descriptor* type, const std::string& name,
                                    int depth = 0) {
  if (depth > 8) return nullptr;
  for (int i = 0; i < type->field_count(); ++i) {
    const FieldDescriptor* f = type->field(i);
    if (f->name() == name && f->enum_type() != nullptr) return f->enum_type();
    if (f->message_type() != nullptr) {
      if (auto* e = FindEnumField(f->message_type(), name, depth + 1)) return e;
    }
  }
  return nullptr;
}

// Rewrites protobuf's phrasing into stepsim's ("unknown field "x" in parallel").
std::string Rephrase(const std::string& raw, const Descriptor* root) {
  static const std::regex kNoField(
      R"re(Message type "(?:[\w]+\.)*(\w+)" has no field named "([^"]*)"\.?)re");
  static const std::regex kBadEnum(
      R"re(Unknown enumeration value of "([^"]*)" for field "(\w+)"\.?)re");
  std::smatch m;
  if (std::regex_match(raw, m, kNoField)) {
    return "unknown field \"" + m[2].str() + "\" in message " + m[1].str();
  }
  if (raw.size() >= 5 && raw.compare(raw.size() - 5, 5, "got: ") == 0) {
    return raw.substr(0, raw.size() - 5) + "reached the end of the file (is a '{' not closed?)";
  }
  if (std::regex_match(raw, m, kBadEnum)) {
    std::string out = "unknown value \"" + m[1].str() + "\" for field \"" +
                      m[2].str() + "\"";
    if (const EnumDescriptor* e = FindEnumField(root, m[2].str())) {
      out += " (expected one of";
      for (int i = 1; i < e->value_count(); ++i) {
        out += (i == 1 ? " " : ", ") + e->value(i)->name();
      }
      out += ")";
    }
    return out;
  }
  return raw;
}

class Collector : public google::protobuf::io::ErrorCollector {
 public:
  struct Entry {
    int line, col;
    std::string message;
  };
  void AddError(int line, google::protobuf::io::ColumnNumber col,
                const std::string& message) override {
    entries.push_back({line, col, message});
  }
  void AddWarning(int, google::protobuf::io::ColumnNumber,
                  const std::string&) override {}
  std::vector<Entry> entries;
};

// Protobuf reports an unknown field or enum value at the token after it.
// Points the column (0-based) back at the first name quoted in the message
// that stands on the line before that column.
int TokenColumn(std::string_view text, int line, int col, const std::string& message) {
  size_t start = 0;
  for (int l = 0; l < line && start != std::string_view::npos; ++l) {
    start = text.find('\n', start);
    if (start != std::string_view::npos) ++start;
  }
  if (start == std::string_view::npos) return col;
  const std::string_view src = text.substr(start, static_cast<size_t>(col));
  size_t q1 = message.find('"');
  while (q1 != std::string::npos) {
    const size_t q2 = message.find('"', q1 + 1);
    if (q2 == std::string::npos) break;
    const std::string token = message.substr(q1 + 1, q2 - q1 - 1);
    const size_t at = token.empty() ? std::string_view::npos : src.rfind(token);
    if (at != std::string_view::npos) return static_cast<int>(at);
    q1 = message.find('"', q2 + 1);
  }
  return col;
}

}  // namespace

std::string LocatedError(std::string_view text, std::string_view filename,
                         int line, int col, std::string_view message) {
  std::string out = std::string(filename) + ":" + std::to_string(line) + ":" +
                    std::to_string(col) + ": " + std::string(message);
  // Find the 1-based line.
  size_t start = 0;
  for (int l = 1; l < line && start != std::string_view::npos; ++l) {
    start = text.find('\n', start);
    if (start != std::string_view::npos) ++start;
  }
  if (start == std::string_view::npos || start > text.size()) return out;
  size_t end = text.find('\n', start);
  std::string_view src = text.substr(start, end == std::string_view::npos
                                                ? std::string_view::npos
                                                : end - start);
  if (src.size() > 200) src = src.substr(0, 200);
  std::string shown;
  for (char c : src) shown += (c == '\t' || (c >= 32 && c < 127)) ? c : '?';
  out += "\n  " + shown + "\n  ";
  for (int i = 1; i < col && i <= static_cast<int>(shown.size()); ++i) {
    out += shown[i - 1] == '\t' ? '\t' : ' ';
  }
  out += "^";
  return out;
}

Status ParseTextMessage(std::string_view text, std::string_view filename,
                        google::protobuf::Message* message) {
  if (text.find('\0') != std::string_view::npos) {
    return Status::Invalid(std::string(filename) +
                           ": not a text file (contains a NUL byte)");
  }
  Collector collector;
  google::protobuf::TextFormat::Parser parser;
  parser.RecordErrorsTo(&collector);
  parser.SetRecursionLimit(32);
  const bool parsed = parser.ParseFromString(std::string(text), message);
  if (parsed && collector.entries.empty()) return Status::Ok();
  if (collector.entries.empty()) {
    return Status::Invalid(std::string(filename) + ": cannot be parsed");
  }
  // Report the first error: later ones are usually its consequences.
  const Collector::Entry& e = collector.entries.front();
  return Status::Invalid(LocatedError(text, filename, e.line + 1,
                                      TokenColumn(text, e.line, e.col, e.message) + 1,
                                      Rephrase(e.message, message->GetDescriptor())));
}

StatusOr<Scenario> ParseScenario(std::string_view text, std::string_view filename) {
  Scenario scenario;
  Status status = ParseTextMessage(text, filename, &scenario);
  if (!status.ok()) return status;
  return scenario;
}

}  // namespace stepsim::graph
