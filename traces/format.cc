#include "traces/format.h"

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

std::string Right(const std::string& text, size_t width) {
  return text.size() >= width ? text : std::string(width - text.size(), ' ') + text;
}

std::string Left(const std::string& text, size_t width) {
  return text.size() >= width ? text : text + std::string(width - text.size(), ' ');
}

}  // namespace stepsim::traces
