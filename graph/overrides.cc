#include "graph/overrides.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/reflection.h>

#include <cctype>
#include <charconv>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

namespace stepsim::graph {
namespace {

using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;

std::vector<std::string> Split(std::string_view s, char sep) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (true) {
    size_t end = s.find(sep, start);
    parts.emplace_back(s.substr(start, end == std::string_view::npos ? end : end - start));
    if (end == std::string_view::npos) return parts;
    start = end + 1;
  }
}

std::string Trim(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return std::string(s.substr(b, e - b));
}

std::string Upper(std::string s) {
  for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

std::string FieldNames(const google::protobuf::Descriptor* type) {
  std::string out;
  for (int i = 0; i < type->field_count(); ++i) {
    out += (i ? ", " : "") + type->field(i)->name();
  }
  return out;
}

// Sets (or, for repeated fields, appends) one value; returns an error text or "".
std::string SetValue(Message* msg, const FieldDescriptor* f, const std::string& v) {
  const Reflection* r = msg->GetReflection();
  const bool rep = f->is_repeated();
  switch (f->cpp_type()) {
    case FieldDescriptor::CPPTYPE_INT32:
    case FieldDescriptor::CPPTYPE_INT64: {
      int64_t x = 0;
      auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), x);
      if (ec != std::errc() || p != v.data() + v.size()) {
        return "\"" + v + "\" is not an integer";
      }
      if (f->cpp_type() == FieldDescriptor::CPPTYPE_INT32) {
        if (x < std::numeric_limits<int32_t>::min() ||
            x > std::numeric_limits<int32_t>::max()) {
          return "\"" + v + "\" is out of range";
        }
        rep ? r->AddInt32(msg, f, static_cast<int32_t>(x))
            : r->SetInt32(msg, f, static_cast<int32_t>(x));
      } else {
        rep ? r->AddInt64(msg, f, x) : r->SetInt64(msg, f, x);
      }
      return "";
    }
    case FieldDescriptor::CPPTYPE_DOUBLE:
    case FieldDescriptor::CPPTYPE_FLOAT: {
      char* end = nullptr;
      double x = std::strtod(v.c_str(), &end);
      if (v.empty() || end != v.c_str() + v.size() || !std::isfinite(x)) {
        return "\"" + v + "\" is not a finite number";
      }
      if (f->cpp_type() == FieldDescriptor::CPPTYPE_DOUBLE) {
        rep ? r->AddDouble(msg, f, x) : r->SetDouble(msg, f, x);
      } else {
        rep ? r->AddFloat(msg, f, static_cast<float>(x))
            : r->SetFloat(msg, f, static_cast<float>(x));
      }
      return "";
    }
    case FieldDescriptor::CPPTYPE_BOOL: {
      bool x;
      if (v == "true" || v == "1") {
        x = true;
      } else if (v == "false" || v == "0") {
        x = false;
      } else {
        return "\"" + v + "\" is not true or false";
      }
      rep ? r->AddBool(msg, f, x) : r->SetBool(msg, f, x);
      return "";
    }
    case FieldDescriptor::CPPTYPE_ENUM: {
      const auto* e = f->enum_type();
      const auto* value = e->FindValueByName(Upper(v));
      if (value == nullptr || value->number() == 0) {
        std::string names;
        for (int i = 1; i < e->value_count(); ++i) {
          names += (i > 1 ? ", " : "") + e->value(i)->name();
        }
        return "unknown value \"" + v + "\" (expected one of " + names + ")";
      }
      rep ? r->AddEnum(msg, f, value) : r->SetEnum(msg, f, value);
      return "";
    }
    case FieldDescriptor::CPPTYPE_STRING:
      rep ? r->AddString(msg, f, v) : r->SetString(msg, f, v);
      return "";
    default:
      return "this field cannot be set from the command line";
  }
}

}  // namespace

Status ApplyOverride(std::string_view assignment, Scenario* scenario) {
  const size_t eq = assignment.find('=');
  if (eq == std::string_view::npos) {
    return Status::Invalid("--set \"" + std::string(assignment) +
                           "\": expected path=value");
  }
  const std::string path = Trim(assignment.substr(0, eq));
  const std::string value = Trim(assignment.substr(eq + 1));
  const std::string where = "--set " + path + ": ";

  Message* msg = scenario;
  const std::vector<std::string> parts = Split(path, '.');
  for (size_t i = 0; i < parts.size(); ++i) {
    const auto* type = msg->GetDescriptor();
    const FieldDescriptor* f = type->FindFieldByName(parts[i]);
    if (f == nullptr) {
      return Status::Invalid(where + "unknown field \"" + parts[i] + "\" in " +
                             (i == 0 ? std::string("the scenario") : parts[i - 1]) +
                             " (fields: " + FieldNames(type) + ")");
    }
    const bool last = i + 1 == parts.size();
    if (f->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
      if (last || f->is_repeated()) {
        return Status::Invalid(where + "\"" + parts[i] +
                               "\" is a message; name one of its fields (" +
                               FieldNames(f->message_type()) + ")");
      }
      msg = msg->GetReflection()->MutableMessage(msg, f);
      continue;
    }
    if (!last) {
      return Status::Invalid(where + "\"" + parts[i] + "\" has no fields");
    }
    if (f->is_repeated()) {
      msg->GetReflection()->ClearField(msg, f);
      if (value.empty()) return Status::Ok();
      for (const std::string& item : Split(value, ',')) {
        std::string error = SetValue(msg, f, Trim(item));
        if (!error.empty()) return Status::Invalid(where + error);
      }
      return Status::Ok();
    }
    std::string error = SetValue(msg, f, value);
    if (!error.empty()) return Status::Invalid(where + error);
  }
  return Status::Ok();
}

}  // namespace stepsim::graph
