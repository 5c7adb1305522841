// UTF-8 checks and values cut for messages.
#include "graph/utf8.h"

#include <gtest/gtest.h>

namespace stepsim::graph {
namespace {

TEST(Utf8Test, FindsTheFirstInvalidByte) {
  EXPECT_EQ(FirstInvalidUtf8("plain ascii"), std::string_view::npos);
  EXPECT_EQ(FirstInvalidUtf8("caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80"), std::string_view::npos);
  EXPECT_EQ(FirstInvalidUtf8("ab\xFF"), 2u);            // never valid
  EXPECT_EQ(FirstInvalidUtf8("a\xC3"), 1u);             // cut short
  EXPECT_EQ(FirstInvalidUtf8("\xC0\xAF"), 0u);          // overlong '/'
  EXPECT_EQ(FirstInvalidUtf8("\xE0\x80\xAF"), 0u);      // overlong
  EXPECT_EQ(FirstInvalidUtf8("x\xED\xA0\x80"), 1u);     // a surrogate
  EXPECT_EQ(FirstInvalidUtf8("\xF4\x90\x80\x80"), 0u);  // past U+10FFFF
  EXPECT_EQ(FirstInvalidUtf8("\x80"), 0u);              // a lone continuation
}

TEST(Utf8Test, RepairReplacesEachInvalidByte) {
  EXPECT_EQ(RepairUtf8("a\xFF" "b\xC3\xA9"), "a\xEF\xBF\xBD" "b\xC3\xA9");
}

TEST(Utf8Test, LongValuesAreCutAtACharacterBoundary) {
  EXPECT_EQ(QuoteValue("short"), "\"short\"");
  EXPECT_EQ(QuoteValue(std::string(3 << 20, 'v'), 4), "\"vvvv...\" (3145728 bytes)");
  // "é" is two bytes: a cut after 3 bytes keeps the whole first "é" only.
  EXPECT_EQ(QuoteValue("\xC3\xA9\xC3\xA9\xC3\xA9", 3), "\"\xC3\xA9...\" (6 bytes)");
  EXPECT_EQ(Shorten("abcdef", 4), "abcd... (2 more bytes)");
  EXPECT_EQ(Shorten("abc", 4), "abc");
}

}  // namespace
}  // namespace stepsim::graph
