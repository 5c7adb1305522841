// Number formatting for terminal output: thousands separators and GiB.
#ifndef STEPSIM_TRACES_FORMAT_H_
#define STEPSIM_TRACES_FORMAT_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace stepsim::traces {

// 671026404352 -> "671,026,404,352".
std::string Thousands(int64_t value);

// Bytes in GiB (2^30) with two decimals: 12500729856 -> "11.64".
std::string Gib(int64_t bytes);

// `value` with `decimals` digits after the point: Fixed(3.14159, 2) -> "3.14".
std::string Fixed(double value, int decimals);

// Ascending numbers as ranges: {0, 2, 3, 4, 7} -> "0, 2-4, 7".
std::string Ranges(const std::vector<int64_t>& sorted);

// One line per distinct breakdown, naming the stages that share it, in
// order of first appearance: "  stage 1-14:  mla 429,654,016  moe 5,820,...".
std::string GroupedByStage(
    const std::vector<std::pair<int64_t, std::map<std::string, int64_t>>>& stages);

// Pads `text` with spaces on the left (right-aligns) to `width`.
std::string Right(const std::string& text, size_t width);
// Pads on the right (left-aligns).
std::string Left(const std::string& text, size_t width);

}  // namespace stepsim::traces

#endif  // STEPSIM_TRACES_FORMAT_H_
