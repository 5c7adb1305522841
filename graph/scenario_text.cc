#include "graph/scenario_text.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/io/tokenizer.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <google/protobuf/text_format.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <memory>
#include <regex>
#include <vector>

#include "graph/names.h"
#include "graph/utf8.h"

namespace stepsim::graph {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::EnumDescriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::TextFormat;

// Enough passes to fix the letter case of every enum value of any real file.
constexpr int kMaxCaseFixes = 64;

// The byte offset where 0-based `line` starts, or npos past the end.
size_t LineStart(std::string_view text, int line) {
  size_t start = 0;
  for (int l = 0; l < line && start != std::string_view::npos; ++l) {
    start = text.find('\n', start);
    if (start != std::string_view::npos) ++start;
  }
  return start;
}


// The first enum-typed field called `name` anywhere below `type`.
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

class NoErrors : public google::protobuf::io::ErrorCollector {
 public:
  void AddError(int, google::protobuf::io::ColumnNumber, const std::string&) override {}
};

// The enum of field `name` in the message open at byte `offset` of `text`
// (found by following the field names before each '{'), else the first
// enum field of that name anywhere.
const EnumDescriptor* EnumFieldAt(std::string_view text, size_t offset, const Descriptor* root,
                                  const std::string& name) {
  google::protobuf::io::ArrayInputStream input(text.data(), static_cast<int>(offset));
  NoErrors errors;
  google::protobuf::io::Tokenizer tokenizer(&input, &errors);
  std::vector<const Descriptor*> open = {root};
  std::string last_name;
  while (tokenizer.Next()) {
    const auto& token = tokenizer.current();
    if (token.type == google::protobuf::io::Tokenizer::TYPE_IDENTIFIER) {
      last_name = token.text;
    } else if (token.text == "{" || token.text == "<") {
      const Descriptor* inside = nullptr;
      if (open.back() != nullptr) {
        const FieldDescriptor* f = open.back()->FindFieldByName(last_name);
        if (f != nullptr) inside = f->message_type();
      }
      open.push_back(inside);
    } else if ((token.text == "}" || token.text == ">") && open.size() > 1) {
      open.pop_back();
    }
  }
  if (open.back() != nullptr) {
    const FieldDescriptor* f = open.back()->FindFieldByName(name);
    if (f != nullptr && f->enum_type() != nullptr) return f->enum_type();
  }
  return FindEnumField(root, name);
}

struct Problem {
  int line, column;  // protobuf's, 0-based
  std::string message;
};

class Collector : public google::protobuf::io::ErrorCollector {
 public:
  void AddError(int line, google::protobuf::io::ColumnNumber column,
                const std::string& message) override {
    problems.push_back({line, column, message});
  }
  void AddWarning(int, google::protobuf::io::ColumnNumber, const std::string&) override {}
  std::vector<Problem> problems;
};

// Protobuf reports an unknown field or enum value at the token after it.
// The offset of the first name quoted in the message that stands on the
// line before `offset`, else `offset`.
size_t TokenOffset(std::string_view text, size_t offset, const std::string& message) {
  size_t start = offset;
  while (start > 0 && text[start - 1] != '\n') --start;
  const std::string_view before = text.substr(start, offset - start);
  for (size_t q1 = message.find('"'); q1 != std::string::npos;) {
    const size_t q2 = message.find('"', q1 + 1);
    if (q2 == std::string::npos) break;
    const std::string token = message.substr(q1 + 1, q2 - q1 - 1);
    const size_t at = token.empty() ? std::string_view::npos : before.rfind(token);
    if (at != std::string_view::npos) return start + at;
    q1 = message.find('"', q2 + 1);
  }
  return offset;
}

const std::regex& BadEnum() {
  static const std::regex kBadEnum(
      R"re(Unknown enumeration value of "([^"]*)" for field "(\w+)"\.?)re");
  return kBadEnum;
}

// Rewrites protobuf's phrasing into stepsim's ("unknown field "x" in message
// Parallel"); `values` lists the accepted values of a bad enum value.
std::string Rephrase(const std::string& raw, const EnumDescriptor* values) {
  static const std::regex kNoField(
      R"re(Message type "(?:[\w]+\.)*(\w+)" has no field named "([^"]*)"\.?)re");
  static const std::regex kNonAscii(R"re(Interpreting non ascii codepoint (\d+)\.?)re");
  std::smatch m;
  if (std::regex_match(raw, m, kNoField)) {
    return "unknown field " + QuoteValue(m[2].str()) + " in message " + m[1].str();
  }
  if (raw.size() >= 5 && raw.compare(raw.size() - 5, 5, "got: ") == 0) {
    return raw.substr(0, raw.size() - 5) + "reached the end of the file (is a '{' not closed?)";
  }
  if (std::regex_match(raw, m, kNonAscii)) {
    return "a non-ASCII character outside a string or comment";
  }
  if (std::regex_match(raw, m, BadEnum())) {
    std::string out = "unknown value " + QuoteValue(m[1].str()) + " for field \"" +
                      m[2].str() + "\"";
    if (values != nullptr) out += " (expected one of " + EnumNames(values) + ")";
    return out;
  }
  return Shorten(raw, 200);
}

// The value token that ends at byte `end` (an identifier or a number).
std::string_view TokenEndingAt(std::string_view text, size_t end) {
  size_t start = end;
  while (start > 0) {
    const char c = text[start - 1];
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '.' && c != '-' &&
        c != '+') {
      break;
    }
    --start;
  }
  return text.substr(start, end - start);
}

// Checks what protobuf accepts but the vocabulary does not (enum numbers,
// True, t, 1 for booleans) and records where each field was set.
class FieldWalker {
 public:
  FieldWalker(std::string_view text, std::string_view filename, FieldPlaces* places)
      : text_(text), filename_(filename), places_(places) {}

  Status Walk(const Message& message, const TextFormat::ParseInfoTree* tree,
              const std::string& prefix) {
    std::vector<const FieldDescriptor*> fields;
    message.GetReflection()->ListFields(message, &fields);
    for (const FieldDescriptor* f : fields) {
      const std::string path = prefix + f->name();
      const int count = f->is_repeated() ? message.GetReflection()->FieldSize(message, f) : 1;
      for (int i = 0; i < count; ++i) {
        const int index = f->is_repeated() ? i : -1;
        const TextFormat::ParseLocationRange range = tree->GetLocationRange(f, index);
        if (range.start.line < 0) continue;  // a list's later values share the first place
        const size_t start = ProtobufOffset(text_, range.start.line, range.start.column);
        if (places_ != nullptr && i == 0) places_->Set(path, PlaceOf(text_, filename_, start));
        if (f->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
          const TextFormat::ParseInfoTree* nested = tree->GetTreeForNested(f, index);
          const Message& inner = f->is_repeated()
                                     ? message.GetReflection()->GetRepeatedMessage(message, f, i)
                                     : message.GetReflection()->GetMessage(message, f);
          if (nested == nullptr) continue;
          Status s = Walk(inner, nested, path + ".");
          if (!s.ok()) return s;
          continue;
        }
        if (f->cpp_type() == FieldDescriptor::CPPTYPE_STRING) {
          const std::string value =
              f->is_repeated() ? message.GetReflection()->GetRepeatedString(message, f, i)
                               : message.GetReflection()->GetString(message, f);
          if (FirstInvalidUtf8(value) != std::string::npos) {
            return Status::Invalid(LocatedErrorAt(
                text_, filename_, start, path + ": its escapes make invalid UTF-8"));
          }
          continue;
        }
        const size_t end = ProtobufOffset(text_, range.end.line, range.end.column);
        const std::string_view token = TokenEndingAt(text_, end);
        if (token.empty()) continue;
        const size_t at = end - token.size();
        const char first = token.front();
        if (f->cpp_type() == FieldDescriptor::CPPTYPE_ENUM &&
            (std::isdigit(static_cast<unsigned char>(first)) || first == '-' || first == '+')) {
          return Status::Invalid(LocatedErrorAt(
              text_, filename_, at,
              "write an enum value by name, not number " + QuoteValue(token) + " (" + path +
                  ": one of " + EnumNames(f->enum_type()) + ")"));
        }
        if (f->cpp_type() == FieldDescriptor::CPPTYPE_BOOL && token != "true" &&
            token != "false") {
          return Status::Invalid(LocatedErrorAt(text_, filename_, at,
                                                "write " + path + " as true or false, not " +
                                                    QuoteValue(token)));
        }
      }
    }
    return Status::Ok();
  }

 private:
  std::string_view text_, filename_;
  FieldPlaces* places_;
};

bool IsFieldPath(std::string_view s) {
  if (s.empty() || !std::islower(static_cast<unsigned char>(s.front()))) return false;
  for (char c : s) {
    if (!std::islower(static_cast<unsigned char>(c)) &&
        !std::isdigit(static_cast<unsigned char>(c)) && c != '_' && c != '.') {
      return false;
    }
  }
  return true;
}

}  // namespace

size_t ProtobufOffset(std::string_view text, int line, int column) {
  const size_t start = LineStart(text, line);
  if (start == std::string_view::npos) return text.size();
  size_t i = start;
  for (int col = 0; i < text.size() && text[i] != '\n' && col < column; ++i) {
    col = text[i] == '\t' ? col + 8 - col % 8 : col + 1;
  }
  return i;
}

void FieldPlaces::Set(const std::string& path, std::string place) {
  places_[path] = std::move(place);
}

std::string FieldPlaces::Find(std::string_view path) const {
  auto it = places_.find(path);
  if (it != places_.end()) return it->second;
  if (path.substr(0, 6) == "model.") {
    it = places_.find("model.preset");
    if (it != places_.end()) return it->second;
  }
  return "";
}

std::string FieldPlaces::Locate(std::string_view message) const {
  std::string out;
  size_t start = 0;
  while (start <= message.size()) {
    size_t end = message.find('\n', start);
    if (end == std::string_view::npos) end = message.size();
    const std::string_view line = message.substr(start, end - start);
    const size_t colon = line.find(": ");
    const std::string place =
        colon != std::string_view::npos && IsFieldPath(line.substr(0, colon))
            ? Find(line.substr(0, colon))
            : "";
    if (start > 0) out += "\n";
    if (!place.empty()) out += place + ": ";
    out += line;
    if (end == message.size()) break;
    start = end + 1;
  }
  return out;
}

Status FieldPlaces::Locate(const Status& status) const {
  if (status.code() != StatusCode::kInvalidInput) return status;
  return Status::Invalid(Locate(status.message()));
}

std::string PlaceOf(std::string_view text, std::string_view filename, size_t offset) {
  int line = 1, col = 1;
  for (size_t i = 0; i < offset && i < text.size(); ++i) {
    if (text[i] == '\n') {
      ++line;
      col = 1;
    } else {
      ++col;
    }
  }
  return std::string(filename) + ":" + std::to_string(line) + ":" + std::to_string(col);
}

std::string LocatedError(std::string_view text, std::string_view filename,
                         int line, int col, std::string_view message) {
  std::string out = std::string(filename) + ":" + std::to_string(line) + ":" +
                    std::to_string(col) + ": " + std::string(message);
  const size_t start = LineStart(text, line - 1);
  if (start == std::string_view::npos || start > text.size()) return out;
  const size_t end = text.find('\n', start);
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

std::string LocatedErrorAt(std::string_view text, std::string_view filename, size_t offset,
                           std::string_view message) {
  size_t start = std::min(offset, text.size());
  while (start > 0 && text[start - 1] != '\n') --start;
  int line = 1;
  for (size_t i = 0; i < start; ++i) line += text[i] == '\n';
  return LocatedError(text, filename, line, static_cast<int>(std::min(offset, text.size()) - start) + 1,
                      message);
}

Status ParseTextMessage(std::string_view text, std::string_view filename, Message* message,
                        FieldPlaces* places, std::string* parsed_text) {
  if (text.find('\0') != std::string_view::npos) {
    return Status::Invalid(std::string(filename) +
                           ": not a text file (contains a NUL byte)");
  }
  if (text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);  // UTF-8 byte-order mark
  const size_t invalid = FirstInvalidUtf8(text);
  if (invalid != std::string_view::npos) {
    char byte[8];
    std::snprintf(byte, sizeof byte, "0x%02X", static_cast<unsigned char>(text[invalid]));
    return Status::Invalid(LocatedErrorAt(text, filename, invalid,
                                          std::string("invalid UTF-8 (byte ") + byte +
                                              "): stepsim reads text files as UTF-8"));
  }
  // Enum names may be written in any case: each unknown value that names
  // one in another case is rewritten (same length, same columns) and the
  // text parsed again.
  std::string work(text);
  for (int pass = 0;; ++pass) {
    message->Clear();
    Collector collector;
    TextFormat::ParseInfoTree tree;
    TextFormat::Parser parser;
    parser.RecordErrorsTo(&collector);
    parser.WriteLocationsTo(&tree);
    parser.SetRecursionLimit(32);
    const bool parsed = parser.ParseFromString(work, message);
    if (parsed && collector.problems.empty()) {
      if (parsed_text != nullptr) *parsed_text = work;
      return FieldWalker(work, filename, places).Walk(*message, &tree, "");
    }
    if (collector.problems.empty()) {
      return Status::Invalid(std::string(filename) + ": cannot be parsed");
    }
    // The first error: later ones are usually its consequences.
    const Problem& p = collector.problems.front();
    const size_t offset = TokenOffset(work, ProtobufOffset(work, p.line, p.column), p.message);
    std::smatch m;
    const EnumDescriptor* values = nullptr;
    if (std::regex_match(p.message, m, BadEnum())) {
      const std::string value = m[1].str();
      values = EnumFieldAt(work, offset, message->GetDescriptor(), m[2].str());
      StatusOr<int> number = values == nullptr ? StatusOr<int>(Status::Invalid(""))
                                               : ParseEnumName(values, value);
      if (number.ok() && pass < kMaxCaseFixes && offset + value.size() <= work.size() &&
          work.compare(offset, value.size(), value) == 0) {
        work.replace(offset, value.size(), EnumName(values, *number));
        continue;
      }
    }
    return Status::Invalid(LocatedErrorAt(work, filename, offset, Rephrase(p.message, values)));
  }
}

StatusOr<Scenario> ParseScenario(std::string_view text, std::string_view filename,
                                 FieldPlaces* places) {
  Scenario scenario;
  Status status = ParseTextMessage(text, filename, &scenario, places);
  if (!status.ok()) return status;
  return scenario;
}

}  // namespace stepsim::graph
