#include "graph/overrides.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/reflection.h>

#include <cctype>
#include <charconv>
#include <cmath>
#include <limits>
#include <string>
#include <set>
#include <vector>

#include "graph/names.h"
#include "graph/utf8.h"

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
        return QuoteValue(v) + " is not an integer";
      }
      if (f->cpp_type() == FieldDescriptor::CPPTYPE_INT32) {
        if (x < std::numeric_limits<int32_t>::min() ||
            x > std::numeric_limits<int32_t>::max()) {
          return QuoteValue(v) + " is out of range";
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
        return QuoteValue(v) + " is not a finite number";
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
      StatusOr<bool> x = ParseBool(v);
      if (!x.ok()) return x.status().message();
      rep ? r->AddBool(msg, f, *x) : r->SetBool(msg, f, *x);
      return "";
    }
    case FieldDescriptor::CPPTYPE_ENUM: {
      StatusOr<int> number = ParseEnumName(f->enum_type(), v);
      if (!number.ok()) return number.status().message();
      rep ? r->AddEnumValue(msg, f, *number) : r->SetEnumValue(msg, f, *number);
      return "";
    }
    case FieldDescriptor::CPPTYPE_STRING: {
      const size_t invalid = FirstInvalidUtf8(v);
      if (invalid != std::string::npos) {
        return "invalid UTF-8 at byte " + std::to_string(invalid + 1) +
               " of the value: stepsim reads text as UTF-8";
      }
      rep ? r->AddString(msg, f, v) : r->SetString(msg, f, v);
      return "";
    }
    default:
      return "this field cannot be set from the command line";
  }
}

// "path=value" split and trimmed; false without '='.
bool SplitAssignment(std::string_view assignment, std::string* path, std::string* value) {
  const size_t eq = assignment.find('=');
  if (eq == std::string_view::npos) return false;
  *path = Trim(assignment.substr(0, eq));
  *value = Trim(assignment.substr(eq + 1));
  return true;
}

// The fields that only one recompute policy uses.
struct PolicyField {
  const char* path;
  RecomputePolicy policy;
};
constexpr PolicyField kPolicyFields[] = {{"recompute.modules", SELECTIVE},
                                         {"recompute.method", FULL},
                                         {"recompute.num_layers", FULL}};

// Clears what the new policy does not use and no assignment set.
void DropOtherPolicyFields(Scenario* scenario, const std::set<std::string>& assigned,
                           const std::string& policy_assignment,
                           std::vector<std::string>* notes) {
  Recompute* r = scenario->mutable_recompute();
  const RecomputePolicy policy = r->policy();
  const google::protobuf::Descriptor* type = r->GetDescriptor();
  for (const PolicyField& pf : kPolicyFields) {
    if (pf.policy == policy || assigned.count(pf.path)) continue;
    const FieldDescriptor* f = type->FindFieldByName(std::string(pf.path).substr(10));
    const bool set = f->is_repeated() ? r->GetReflection()->FieldSize(*r, f) > 0
                                      : r->GetReflection()->HasField(*r, f);
    if (!set) continue;
    r->GetReflection()->ClearField(r, f);
    if (notes != nullptr) {
      notes->push_back("--set " + Shorten(policy_assignment, 100) + " clears " + pf.path +
                       ", which only policy " + EnumName(pf.policy) + " uses");
    }
  }
}

// The settings only the CACHING allocator uses.
constexpr const char* kCachingFields[] = {"max_split_size_mb", "max_non_split_rounding_mb",
                                          "roundup_power2_divisions", "expandable_segments"};

// Under allocator kind NONE, clears the caching settings no assignment set.
void DropCachingFields(Scenario* scenario, const std::set<std::string>& assigned,
                       const std::string& kind_assignment, std::vector<std::string>* notes) {
  stepsim::Allocator* a = scenario->mutable_allocator();
  if (a->kind() != stepsim::Allocator::NONE) return;
  const google::protobuf::Descriptor* type = a->GetDescriptor();
  for (const char* name : kCachingFields) {
    const std::string path = std::string("allocator.") + name;
    const FieldDescriptor* f = type->FindFieldByName(name);
    if (assigned.count(path) || !a->GetReflection()->HasField(*a, f)) continue;
    a->GetReflection()->ClearField(a, f);
    if (notes != nullptr) {
      notes->push_back("--set " + Shorten(kind_assignment, 100) + " clears " + path +
                       ", which only kind CACHING uses");
    }
  }
}

// Sets `path` to `value` in `scenario`; on an error it may have set part of
// it (a repeated field's first items, the messages on the path).
Status Assign(const std::string& path, const std::string& value, Scenario* scenario) {
  const std::string where = "--set " + Shorten(path, 100) + ": ";
  Message* msg = scenario;
  const std::vector<std::string> parts = Split(path, '.');
  for (size_t i = 0; i < parts.size(); ++i) {
    const auto* type = msg->GetDescriptor();
    const FieldDescriptor* f = type->FindFieldByName(parts[i]);
    if (f == nullptr) {
      return Status::Invalid(where + "unknown field " + QuoteValue(parts[i]) + " in " +
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
      if (!value.empty()) {
        for (const std::string& item : Split(value, ',')) {
          std::string error = SetValue(msg, f, Trim(item));
          if (!error.empty()) return Status::Invalid(where + error);
        }
      }
    } else {
      std::string error = SetValue(msg, f, value);
      if (!error.empty()) return Status::Invalid(where + error);
    }
  }
  return Status::Ok();
}

}  // namespace

Status ApplyOverrideOrDiscard(std::string_view assignment, Scenario* scenario) {
  std::string path, value;
  if (!SplitAssignment(assignment, &path, &value)) {
    return Status::Invalid("--set " + QuoteValue(assignment) + ": expected path=value");
  }
  return Assign(path, value, scenario);
}

Status ApplyOverride(std::string_view assignment, Scenario* scenario) {
  // Whether an assignment can be made depends on the path and the value,
  // never on what the scenario holds: tried on an empty scenario first, a
  // failed one changes nothing, and the scenario is not copied (a sweep or
  // fit applies a dozen to each of many thousand candidates).
  Scenario scratch;
  if (Status s = ApplyOverrideOrDiscard(assignment, &scratch); !s.ok()) return s;
  return ApplyOverrideOrDiscard(assignment, scenario);
}

Status ApplyOverrides(const std::vector<std::string>& assignments, Scenario* scenario,
                      FieldPlaces* places, std::vector<std::string>* notes) {
  std::set<std::string> assigned;
  std::string policy_assignment, kind_assignment;
  for (const std::string& assignment : assignments) {
    Status s = ApplyOverride(assignment, scenario);
    if (!s.ok()) return s;
    std::string path, value;
    SplitAssignment(assignment, &path, &value);
    assigned.insert(path);
    if (path == "recompute.policy") policy_assignment = path + "=" + value;
    if (path == "allocator.kind") kind_assignment = path + "=" + value;
    if (places != nullptr) places->Set(path, "--set " + Shorten(path + "=" + value, 100));
  }
  if (!policy_assignment.empty()) {
    DropOtherPolicyFields(scenario, assigned, policy_assignment, notes);
  }
  if (!kind_assignment.empty()) DropCachingFields(scenario, assigned, kind_assignment, notes);
  return Status::Ok();
}

}  // namespace stepsim::graph
