#include "traces/text_writer.h"

#include <charconv>
#include <cstring>

namespace stepsim::traces {

TextWriter::TextWriter(std::ostream& out)
    : out_(out),
      buffer_(new char[kBytes + kSlack]),
      pos_(buffer_.get()),
      end_(buffer_.get() + kBytes + kSlack) {}

TextWriter::~TextWriter() { Flush(); }

void TextWriter::Flush() {
  out_.write(buffer_.get(), static_cast<std::streamsize>(pos_ - buffer_.get()));
  pos_ = buffer_.get();
}

TextWriter& TextWriter::operator<<(std::string_view text) {
  if (text.size() > kSlack) {
    Flush();
    out_.write(text.data(), static_cast<std::streamsize>(text.size()));
    return *this;
  }
  Reserve(text.size());
  std::memcpy(pos_, text.data(), text.size());
  pos_ += text.size();
  return *this;
}

TextWriter& TextWriter::operator<<(int64_t value) {
  Reserve(24);
  pos_ = std::to_chars(pos_, end_, value).ptr;
  return *this;
}

TextWriter& TextWriter::Fixed(double value, int decimals) {
  Reserve(kSlack);  // 309 integer digits at most, the point, 17 decimals
  pos_ = std::to_chars(pos_, end_, value, std::chars_format::fixed, decimals).ptr;
  return *this;
}

TextWriter& TextWriter::Shortest(double value) {
  Reserve(kSlack);
  pos_ = std::to_chars(pos_, end_, value, std::chars_format::fixed).ptr;
  return *this;
}

TextWriter& TextWriter::Micros(int64_t ns) {
  int64_t whole = ns / 1000, frac = ns % 1000;  // both toward zero
  Reserve(26);
  if (ns < 0) {
    *pos_++ = '-';
    whole = -whole;
    frac = -frac;
  }
  pos_ = std::to_chars(pos_, end_, whole).ptr;
  pos_[0] = '.';
  pos_[1] = static_cast<char>('0' + frac / 100);
  pos_[2] = static_cast<char>('0' + frac / 10 % 10);
  pos_[3] = static_cast<char>('0' + frac % 10);
  pos_ += 4;
  return *this;
}

TextWriter& TextWriter::Quoted(std::string_view text) {
  static constexpr char kHex[] = "0123456789abcdef";
  *this << '"';
  for (char c : text) {
    Reserve(6);
    if (c == '"' || c == '\\') {
      *pos_++ = '\\';
      *pos_++ = c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      std::memcpy(pos_, "\\u00", 4);
      pos_[4] = kHex[(c >> 4) & 0xf];
      pos_[5] = kHex[c & 0xf];
      pos_ += 6;
    } else {
      *pos_++ = c;
    }
  }
  return *this << '"';
}

}  // namespace stepsim::traces
