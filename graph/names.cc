#include "graph/names.h"

#include <cctype>

#include "graph/utf8.h"

namespace stepsim::graph {
namespace {

bool SameIgnoringCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::toupper(static_cast<unsigned char>(a[i])) !=
        std::toupper(static_cast<unsigned char>(b[i]))) {
      return false;
    }
  }
  return true;
}

// Value 0 of every stepsim enum is *_UNSPECIFIED: "not set", never a name
// to write.
bool Nameable(const google::protobuf::EnumValueDescriptor* value) { return value->number() != 0; }

}  // namespace

std::string EnumName(const google::protobuf::EnumDescriptor* type, int number) {
  const google::protobuf::EnumValueDescriptor* value = type->FindValueByNumber(number);
  return value == nullptr ? "<" + std::to_string(number) + ">" : value->name();
}

std::string EnumNames(const google::protobuf::EnumDescriptor* type) {
  std::string names;
  for (int i = 0; i < type->value_count(); ++i) {
    if (!Nameable(type->value(i))) continue;
    names += (names.empty() ? "" : ", ") + type->value(i)->name();
  }
  return names;
}

StatusOr<int> ParseEnumName(const google::protobuf::EnumDescriptor* type, std::string_view text) {
  for (int i = 0; i < type->value_count(); ++i) {
    if (Nameable(type->value(i)) && SameIgnoringCase(type->value(i)->name(), text)) {
      return type->value(i)->number();
    }
  }
  return Status::Invalid("unknown value " + QuoteValue(text) + " (expected one of " +
                         EnumNames(type) + ")");
}

StatusOr<bool> ParseBool(std::string_view text) {
  if (text == "true") return true;
  if (text == "false") return false;
  return Status::Invalid(QuoteValue(text) + " is not true or false");
}

}  // namespace stepsim::graph
