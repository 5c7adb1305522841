// Number formatting for terminal output: thousands separators and GiB.
#ifndef STEPSIM_TRACES_FORMAT_H_
#define STEPSIM_TRACES_FORMAT_H_

#include <cstdint>
#include <string>

namespace stepsim::traces {

// 671026404352 -> "671,026,404,352".
std::string Thousands(int64_t value);

// Bytes in GiB (2^30) with two decimals: 12500729856 -> "11.64".
std::string Gib(int64_t bytes);

// Pads `text` with spaces on the left (right-aligns) to `width`.
std::string Right(const std::string& text, size_t width);
// Pads on the right (left-aligns).
std::string Left(const std::string& text, size_t width);

}  // namespace stepsim::traces

#endif  // STEPSIM_TRACES_FORMAT_H_
