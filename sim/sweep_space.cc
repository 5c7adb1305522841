#include "sim/sweep_space.h"

#include <google/protobuf/descriptor.h>

#include <algorithm>
#include <charconv>
#include <set>

#include "graph/overrides.h"

namespace stepsim::sim {
namespace {

std::vector<std::string> Split(std::string_view s, char sep) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (true) {
    const size_t end = s.find(sep, start);
    parts.emplace_back(s.substr(start, end == std::string_view::npos ? end : end - start));
    if (end == std::string_view::npos) return parts;
    start = end + 1;
  }
}

std::string Trim(std::string_view s) {
  const size_t b = s.find_first_not_of(" \t");
  if (b == std::string_view::npos) return "";
  const size_t e = s.find_last_not_of(" \t");
  return std::string(s.substr(b, e - b + 1));
}

// Whether `path` names a repeated scalar field of Scenario (false for
// unknown paths: ApplyOverride names those).
bool IsRepeated(const std::string& path) {
  const google::protobuf::Descriptor* type = Scenario::descriptor();
  const google::protobuf::FieldDescriptor* field = nullptr;
  for (const std::string& part : Split(path, '.')) {
    if (type == nullptr) return false;
    field = type->FindFieldByName(part);
    if (field == nullptr) return false;
    type = field->message_type();
  }
  return field != nullptr && field->is_repeated();
}

std::string Assignment(const std::string& path, const std::string& value) {
  return path + "=" + value;
}

}  // namespace

StatusOr<Vary> ParseVary(std::string_view text) {
  const size_t eq = text.find('=');
  if (eq == std::string_view::npos) {
    return Status::Invalid("--vary \"" + std::string(text) + "\": expected PATH=V1,V2,...");
  }
  Vary vary;
  vary.path = Trim(text.substr(0, eq));
  if (vary.path.empty()) {
    return Status::Invalid("--vary \"" + std::string(text) + "\": the field path is empty");
  }
  const std::string where = "--vary " + vary.path + ": ";
  const std::string list = Trim(text.substr(eq + 1));
  if (list.empty()) return Status::Invalid(where + "no values (expected V1,V2,...)");
  std::set<std::string> seen;
  for (const std::string& item : Split(list, ',')) {
    const std::string value = Trim(item);
    if (value.empty()) return Status::Invalid(where + "an empty value in \"" + list + "\"");
    if (!seen.insert(value).second) {
      return Status::Invalid(where + "\"" + value + "\" is given twice");
    }
    vary.values.push_back(value);
  }
  return vary;
}

Status CheckVaries(const Scenario& base, std::vector<Vary>* varies) {
  std::vector<std::string> problems;
  std::set<std::string> paths;
  for (Vary& vary : *varies) {
    if (!paths.insert(vary.path).second) {
      problems.push_back("--vary " + vary.path + ": the path is varied twice");
      continue;
    }
    const bool repeated = IsRepeated(vary.path);
    for (std::string& value : vary.values) {
      if (repeated) std::replace(value.begin(), value.end(), '+', ',');
      Scenario copy = base;
      Status s = graph::ApplyOverride(Assignment(vary.path, value), &copy);
      if (!s.ok()) {
        // ApplyOverride names the path as "--set PATH: ..."; this is a --vary.
        std::string message = s.message();
        if (message.rfind("--set ", 0) == 0) message.replace(0, 6, "--vary ");
        problems.push_back(message);
        break;  // one problem per path: the rest of its values say the same
      }
    }
  }
  if (problems.empty()) return Status::Ok();
  return Status::Invalid(JoinLines(problems));
}

std::string DescribeVary(const Vary& vary) {
  std::string out = vary.path + "=";
  const bool repeated = IsRepeated(vary.path);
  for (size_t i = 0; i < vary.values.size(); ++i) {
    std::string value = vary.values[i];
    if (repeated) std::replace(value.begin(), value.end(), ',', '+');
    out += (i ? "," : "") + value;
  }
  return out;
}

StatusOr<int64_t> CountPoints(const std::vector<Vary>& varies) {
  int64_t count = 1;
  for (const Vary& vary : varies) {
    const int64_t n = static_cast<int64_t>(vary.values.size());
    if (n == 0) return Status::Invalid("--vary " + vary.path + ": no values");
    if (count > kMaxPoints / n) {
      return Status::Invalid("--vary: the space has more than " + std::to_string(kMaxPoints) +
                             " configurations; vary fewer fields or values");
    }
    count *= n;
  }
  return count;
}

Point PointAt(const std::vector<Vary>& varies, int64_t index) {
  Point point(varies.size());
  for (size_t i = varies.size(); i-- > 0;) {
    const int64_t n = static_cast<int64_t>(varies[i].values.size());
    point[i] = {varies[i].path, varies[i].values[static_cast<size_t>(index % n)]};
    index /= n;
  }
  return point;
}

StatusOr<Scenario> ApplyPoint(const Scenario& base, const Point& point) {
  Scenario scenario = base;  // discarded on an error
  for (const auto& [path, value] : point) {
    Status s = graph::ApplyOverrideOrDiscard(Assignment(path, value), &scenario);
    if (!s.ok()) return s;
  }
  return scenario;
}

StatusOr<Shard> ParseShard(std::string_view text, int64_t max_shards) {
  const std::string bad = "--shard \"" + std::string(text) + "\": ";
  const size_t slash = text.find('/');
  if (slash == std::string_view::npos) return Status::Invalid(bad + "expected K/N, e.g. 2/8");
  Shard shard;
  auto parse = [](std::string_view s, int64_t* out) {
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
    return ec == std::errc() && p == s.data() + s.size();
  };
  if (!parse(text.substr(0, slash), &shard.k) || !parse(text.substr(slash + 1), &shard.n)) {
    return Status::Invalid(bad + "K and N must be whole numbers (K/N, e.g. 2/8)");
  }
  if (shard.n < 1 || shard.n > max_shards) {
    return Status::Invalid(bad + "N must be between 1 and " + std::to_string(max_shards));
  }
  if (shard.k < 1 || shard.k > shard.n) {
    return Status::Invalid(bad + "shard " + std::to_string(shard.k) + " is out of range 1.." +
                           std::to_string(shard.n));
  }
  return shard;
}

std::string ShardName(const Shard& shard) {
  return std::to_string(shard.k) + "/" + std::to_string(shard.n);
}

std::pair<int64_t, int64_t> ShardRange(const Shard& shard, int64_t total) {
  const int64_t size = total / shard.n, extra = total % shard.n;
  const int64_t i = shard.k - 1;
  const int64_t begin = i * size + std::min(i, extra);
  return {begin, begin + size + (i < extra ? 1 : 0)};
}

}  // namespace stepsim::sim
