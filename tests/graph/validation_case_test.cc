// Validation cases read with the place of each field (graph/validation_case.h).
#include "graph/validation_case.h"

#include <gtest/gtest.h>

#include <string>

namespace stepsim::graph {
namespace {

constexpr char kCase[] =
    "name: \"c\"\n"
    "source: \"s\"\n"
    "tolerance: 0.1\n"
    "scenario_file: \"x.textproto\"\n"
    "measured {\n"
    "  metric: PEAK_ALLOCATED\n"
    "  pp_rank: -1\n"
    "  bytes: 1\n"
    "}\n";

// A negative rank is refused at its own line 7, column 3 ("  pp_rank").
TEST(ValidationCaseTest, ARefusedRankNamesItsLineAndColumn) {
  const StatusOr<ParsedCase> parsed = ParseValidationCase(kCase, "case.textproto");
  ASSERT_FALSE(parsed.ok());
  EXPECT_EQ(parsed.status().message().rfind("case.textproto:7:3: ", 0), 0u)
      << parsed.status().message();
}

// A UTF-8 byte-order mark (what some editors write first) is not a column:
// the same case behind one keeps every place it had without it.
TEST(ValidationCaseTest, AByteOrderMarkMovesNoPlace) {
  const std::string with_mark = std::string("\xEF\xBB\xBF") + kCase;
  const StatusOr<ParsedCase> parsed = ParseValidationCase(with_mark, "case.textproto");
  ASSERT_FALSE(parsed.ok());
  EXPECT_EQ(parsed.status().message().rfind("case.textproto:7:3: ", 0), 0u)
      << parsed.status().message();

  std::string good = with_mark;
  good.replace(good.find("-1"), 2, "2");
  const StatusOr<ParsedCase> read = ParseValidationCase(good, "case.textproto");
  ASSERT_TRUE(read.ok()) << read.status().message();
  EXPECT_EQ(read->name.line, 1);
  EXPECT_EQ(read->name.col, 1);
  ASSERT_EQ(read->pp_rank.size(), 1u);
  EXPECT_EQ(read->pp_rank[0].line, 7);
  EXPECT_EQ(read->pp_rank[0].col, 3);
  EXPECT_EQ(read->measured[0].line, 5);
}

// Columns count bytes: a tab is one column, though protobuf's tokenizer
// advances it to the next multiple of 8 (found by the validation-case
// fuzzer: "\t  pp_rank" was placed at column 11).
TEST(ValidationCaseTest, ATabIsOneColumn) {
  std::string tabbed = kCase;
  tabbed.replace(tabbed.find("  pp_rank"), 2, "\t  ");
  const StatusOr<ParsedCase> parsed = ParseValidationCase(tabbed, "case.textproto");
  ASSERT_FALSE(parsed.ok());
  EXPECT_EQ(parsed.status().message().rfind("case.textproto:7:4: ", 0), 0u)
      << parsed.status().message();
}

// An enum name in another letter case is read, and moves no place (found by
// the validation-case fuzzer: the places fell back to 1:1).
TEST(ValidationCaseTest, AnEnumInAnotherCaseMovesNoPlace) {
  std::string mixed = kCase;
  mixed.replace(mixed.find("PEAK_ALLOCATED"), 14, "PEaK_allocated");
  const StatusOr<ParsedCase> parsed = ParseValidationCase(mixed, "case.textproto");
  ASSERT_FALSE(parsed.ok());
  EXPECT_EQ(parsed.status().message().rfind("case.textproto:7:3: ", 0), 0u)
      << parsed.status().message();
}

}  // namespace
}  // namespace stepsim::graph
