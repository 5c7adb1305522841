#include "traces/format.h"

#include <algorithm>
#include <cstdio>

namespace stepsim::traces {

std::string Thousands(int64_t value) {
  const bool negative = value < 0;
  std::string digits = std::to_string(value);
  if (negative) digits.erase(0, 1);
  std::string out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return negative ? "-" + out : out;
}

std::string Gib(int64_t bytes) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%.2f",
                static_cast<double>(bytes) / static_cast<double>(int64_t{1} << 30));
  return buffer;
}

std::string Fixed(double value, int decimals) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%.*f", decimals, value);
  return buffer;
}

std::string Ranges(const std::vector<int64_t>& sorted) {
  std::string out;
  for (size_t i = 0; i < sorted.size();) {
    size_t j = i;
    while (j + 1 < sorted.size() && sorted[j + 1] == sorted[j] + 1) ++j;
    out += (out.empty() ? "" : ", ") + std::to_string(sorted[i]);
    if (j > i) out += "-" + std::to_string(sorted[j]);
    i = j + 1;
  }
  return out;
}

std::string GroupedByStage(
    const std::vector<std::pair<int64_t, std::map<std::string, int64_t>>>& stages) {
  std::vector<std::pair<std::map<std::string, int64_t>, std::vector<int64_t>>> groups;
  for (const auto& entry : stages) {  // not a structured binding: clang 14 cannot capture one
    const std::map<std::string, int64_t>& breakdown = entry.second;
    auto it = std::find_if(groups.begin(), groups.end(),
                           [&](const auto& g) { return g.first == breakdown; });
    if (it == groups.end()) {
      groups.push_back({breakdown, {entry.first}});
    } else {
      it->second.push_back(entry.first);
    }
  }
  std::string out;
  for (const auto& [breakdown, list] : groups) {
    out += "  stage " + Ranges(list) + ":";
    for (const auto& [name, n] : breakdown) out += "  " + name + " " + Thousands(n);
    out += "\n";
  }
  return out;
}

std::string Right(const std::string& text, size_t width) {
  return text.size() >= width ? text : std::string(width - text.size(), ' ') + text;
}

std::string Left(const std::string& text, size_t width) {
  return text.size() >= width ? text : text + std::string(width - text.size(), ' ');
}

}  // namespace stepsim::traces
