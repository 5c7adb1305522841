// A buffered text writer for large outputs (Chrome traces, CSV timelines):
// formats straight into a buffer of about 1 MiB and hands it to an ostream
// when full, with numbers from std::to_chars (no printf, no locale, no
// temporary strings), so that writing runs at memory speed.
#ifndef STEPSIM_TRACES_TEXT_WRITER_H_
#define STEPSIM_TRACES_TEXT_WRITER_H_

#include <cstdint>
#include <memory>
#include <ostream>
#include <string_view>

namespace stepsim::traces {

class TextWriter {
 public:
  explicit TextWriter(std::ostream& out);
  ~TextWriter();  // flushes
  TextWriter(const TextWriter&) = delete;
  TextWriter& operator=(const TextWriter&) = delete;

  TextWriter& operator<<(std::string_view text);
  TextWriter& operator<<(char c) {
    Reserve(1);
    *pos_++ = c;
    return *this;
  }
  TextWriter& operator<<(int64_t value);
  TextWriter& operator<<(int value) { return *this << static_cast<int64_t>(value); }

  // `value` with exactly `decimals` (0..17) digits after the point, as
  // printf's "%.*f" prints it: Fixed(0.5, 3) -> "0.500".
  TextWriter& Fixed(double value, int decimals);
  // The shortest fixed-point text that reads back as exactly `value`:
  // Shortest(15.880999999999993) -> "15.880999999999993", Shortest(2.5) -> "2.5".
  TextWriter& Shortest(double value);
  // Whole nanoseconds as microseconds with three decimals: 1234567 ->
  // "1234.567", -5 -> "-0.005". Exact: no floating point.
  TextWriter& Micros(int64_t ns);
  // `text` as a JSON string literal, quotes included.
  TextWriter& Quoted(std::string_view text);

  // Hands what is buffered to the ostream.
  void Flush();

 private:
  // Room for `bytes` more (at most kSlack) without a bounds check.
  void Reserve(size_t bytes) {
    if (static_cast<size_t>(end_ - pos_) < bytes) Flush();
  }

  static constexpr size_t kBytes = 1 << 20;
  static constexpr size_t kSlack = 512;  // the longest single number
  std::ostream& out_;
  std::unique_ptr<char[]> buffer_;
  char* pos_;
  char* end_;
};

}  // namespace stepsim::traces

#endif  // STEPSIM_TRACES_TEXT_WRITER_H_
