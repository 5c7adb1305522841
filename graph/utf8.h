// Text that reaches messages and reports: UTF-8 checks, and values cut to a
// length a message can show. Every stepsim output is UTF-8 (protobuf's JSON
// printer silently drops anything else), so inputs are checked here first.
#ifndef STEPSIM_GRAPH_UTF8_H_
#define STEPSIM_GRAPH_UTF8_H_

#include <cstddef>
#include <string>
#include <string_view>

namespace stepsim::graph {

// The offset of the first byte that does not start or continue a valid
// UTF-8 sequence (overlong forms, surrogates and code points past U+10FFFF
// are invalid), or std::string_view::npos when `text` is valid.
size_t FirstInvalidUtf8(std::string_view text);

// `text` with every invalid byte replaced by U+FFFD, for names taken from
// outside any checked input (file names).
std::string RepairUtf8(std::string_view text);

// `value` in double quotes, cut after `max_bytes` (at a character boundary)
// with the total size noted: "aaaa..." (3145728 bytes). For echoing user
// values in messages.
std::string QuoteValue(std::string_view value, size_t max_bytes = 80);

// `text` cut to at most `max_bytes` at a character boundary, "..." and the
// number of bytes left out appended when cut.
std::string Shorten(std::string_view text, size_t max_bytes);

}  // namespace stepsim::graph

#endif  // STEPSIM_GRAPH_UTF8_H_
