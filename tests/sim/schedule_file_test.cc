#include "sim/schedule_file.h"

#include <gtest/gtest.h>

#include "sim/schedules/builtin.h"
#include "tests/test_util.h"

namespace stepsim::sim {
namespace {

using testing::LoadScenario;

graph::Config Golden() { return LoadScenario("pp4_1f1b_golden.textproto"); }

TEST(ScheduleFileTest, CompactAndProtoFormsRoundTrip) {
  const graph::Config c = Golden();
  const Schedule s = OneFOneB(4, 8);
  for (bool proto : {false, true}) {
    const std::string text = FormatScheduleFile(s, proto);
    StatusOr<Schedule> back =
        ParseScheduleFile(text, proto ? "s.textproto" : "s.schedule", c);
    ASSERT_TRUE(back.ok()) << back.status().message();
    EXPECT_EQ(back->name, "1F1B");
    EXPECT_EQ(back->ranks, s.ranks);
    EXPECT_EQ(back->pp, 4);
    EXPECT_EQ(back->microbatches, 8);
  }
}

TEST(ScheduleFileTest, CompactFormWithCommentsAndChunks) {
  const graph::Config c = LoadScenario("pp4_1f1b_golden.textproto",
                                       {"parallel.pp=2", "parallel.layout=Et|t|t|tL",
                                        "batch.num_microbatches=1"});
  const std::string text =
      "# a hand-written schedule\n"
      "name: mine\n"
      "rank 0: F0.0 F0.1 B0.1 W0.1 BW0.0   # trailing comment\n"
      "\n"
      "rank 1: F0 F0.1 BW0.1 BW0\n";
  StatusOr<Schedule> s = ParseScheduleFile(text, "mine.txt", c);
  ASSERT_TRUE(s.ok()) << s.status().message();
  EXPECT_EQ(s->name, "mine");
  EXPECT_EQ(s->chunks, 2);
  EXPECT_EQ(s->ranks[0][2], (Step{StepKind::kBackward, 0, 1}));
}

TEST(ScheduleFileTest, ErrorsAreLocated) {
  const graph::Config c = Golden();
  EXPECT_EQ(ParseScheduleFile("rank 0: F0 X1\n", "s.txt", c).status().message(),
            "s.txt:1:12: \"X1\" is not a step (F, B, W or BW, a micro-batch, optionally "
            ".chunk: F3, B3.1)\n"
            "  rank 0: F0 X1\n"
            "             ^");
  EXPECT_EQ(ParseScheduleFile("name: x\nrank 0: F9\n", "s.txt", c).status().message(),
            "s.txt:2:9: micro-batch 9 is beyond batch.num_microbatches = 8\n"
            "  rank 0: F9\n"
            "          ^");
  EXPECT_EQ(ParseScheduleFile("rank 0: F0.1\n", "s.txt", c).status().message(),
            "s.txt:1:9: chunk 1 is beyond the layout's 1 chunks per rank\n"
            "  rank 0: F0.1\n"
            "          ^");
  EXPECT_EQ(ParseScheduleFile("rank 7: F0\n", "s.txt", c).status().message(),
            "s.txt:1:1: rank 7 is outside parallel.pp = 4\n"
            "  rank 7: F0\n"
            "  ^");
  EXPECT_EQ(ParseScheduleFile("ranks 0 F0\n", "s.txt", c).status().message(),
            "s.txt:1:1: expected \"name: ...\" or \"rank N: steps...\"\n"
            "  ranks 0 F0\n"
            "  ^");
  EXPECT_EQ(ParseScheduleFile("rank 0: F0\n", "s.txt", c).status().message(),
            "s.txt: has 1 ranks, but the scenario has parallel.pp = 4");
  // A complete but locally impossible schedule names what is wrong.
  std::string text;
  for (int r = 0; r < 4; ++r) {
    text += "rank " + std::to_string(r) + ":";
    for (int m = 0; m < 8; ++m) text += " BW" + std::to_string(m) + " F" + std::to_string(m);
    text += "\n";
  }
  const std::string message = ParseScheduleFile(text, "s.txt", c).status().message();
  // Each problem at the step it concerns: BW0 is rank 0's first step.
  EXPECT_EQ(message.substr(0, message.find('\n')), "s.txt:1:9: rank 0: BW0 comes before F0");
}

TEST(ScheduleFileTest, ProtoFormErrors) {
  const graph::Config c = Golden();
  const std::string text = "name: \"x\"\nranks { rank: 0 steps: \"F0 Q\" }\n";
  EXPECT_EQ(ParseScheduleFile(text, "s.textproto", c).status().message(),
            "s.textproto:2:28: \"Q\" is not a step (F, B, W or BW, a micro-batch, optionally "
            ".chunk: F3, B3.1)\n"
            "  ranks { rank: 0 steps: \"F0 Q\" }\n"
            "                             ^");
  EXPECT_EQ(ParseScheduleFile("ranks { rank: 0 step: 1 }", "s.textproto", c)
                .status()
                .message()
                .substr(0, 50),
            "s.textproto:1:17: unknown field \"step\" in message ");
}

TEST(ScheduleFileTest, AnyNameRoundTripsInBothForms) {
  const graph::Config c = Golden();
  Schedule s = OneFOneB(4, 8);
  for (const std::string& name :
       {std::string("a \"quoted\" \\ name"), std::string("# not a comment"),
        std::string("two\nlines\ttab"), std::string(" padded "), std::string("caf\xC3\xA9"),
        std::string("plain-name")}) {
    s.name = name;
    for (bool proto : {false, true}) {
      const std::string text = FormatScheduleFile(s, proto);
      StatusOr<Schedule> back = ParseScheduleFile(text, proto ? "s.textproto" : "s.txt", c);
      ASSERT_TRUE(back.ok()) << back.status().message() << "\n" << text;
      EXPECT_EQ(back->name, name) << text;
      EXPECT_EQ(back->ranks, s.ranks);
    }
  }
  s.name = "plain-name";
  EXPECT_NE(FormatScheduleFile(s, false).find("\nname: plain-name\n"), std::string::npos);
  s.name = "a\\b";  // a backslash: quoted and escaped
  EXPECT_NE(FormatScheduleFile(s, false).find("\nname: \"a\\\\b\"\n"), std::string::npos);
}

// Four ranks of the golden scenario, 2 micro-batches, with rank 1 as given.
std::string WithRank1(const std::string& rank1) {
  return "rank 0: F0 F1 BW0 BW1\nrank 1: " + rank1 + "\nrank 2: F0 F1 BW0 BW1\n"
         "rank 3: F0 BW0 F1 BW1\n";
}

TEST(ScheduleFileTest, OrderingAndDuplicateErrorsAreLocated) {
  const graph::Config c = LoadScenario("pp4_1f1b_golden.textproto", {"batch.num_microbatches=2"});
  EXPECT_EQ(ParseScheduleFile(WithRank1("F0 F1 BW0 F1 BW1"), "s.txt", c).status().message(),
            "s.txt:2:19: rank 1: F1 appears twice");
  EXPECT_EQ(ParseScheduleFile(WithRank1("F0 BW1 F1 BW0"), "s.txt", c).status().message(),
            "s.txt:2:12: rank 1: BW1 comes before F1");
  // A missing step belongs to the rank: its line.
  EXPECT_EQ(ParseScheduleFile(WithRank1("F0 F1 BW0"), "s.txt", c).status().message(),
            "s.txt:2:1: rank 1: B1 is missing");
  // The protobuf form, through an escape: "\x46" is the F of the second F1.
  const std::string proto =
      "ranks { rank: 0 steps: \"F0 F1 BW0 BW1\" }\n"
      "ranks { rank: 1 steps: \"F0 F1 BW0 \\x461 BW1\" }\n"
      "ranks { rank: 2 steps: \"F0 F1 BW0 BW1\" }\n"
      "ranks { rank: 3 steps: \"F0 BW0 F1 BW1\" }\n";
  EXPECT_EQ(ParseScheduleFile(proto, "s.textproto", c).status().message(),
            "s.textproto:2:35: rank 1: F1 appears twice");
}

TEST(ScheduleFileTest, TextEncoding) {
  const graph::Config c = LoadScenario("pp4_1f1b_golden.textproto", {"batch.num_microbatches=2"});
  StatusOr<Schedule> bom = ParseScheduleFile("\xEF\xBB\xBFname: b\n" + WithRank1("F0 F1 BW0 BW1"),
                                             "s.txt", c);
  ASSERT_TRUE(bom.ok()) << bom.status().message();
  EXPECT_EQ(bom->name, "b");
  EXPECT_EQ(ParseScheduleFile("name: a\xFF\n", "s.txt", c).status().message(),
            "s.txt:1:8: invalid UTF-8: stepsim reads text files as UTF-8\n"
            "  name: a?\n"
            "         ^");
  EXPECT_EQ(ParseScheduleFile("name: \"\\377\"\n", "s.txt", c).status().message(),
            "s.txt:1:7: the name's escapes make invalid UTF-8\n"
            "  name: \"\\377\"\n"
            "        ^");
  EXPECT_EQ(ParseScheduleFile("name: \"open\n", "s.txt", c).status().message(),
            "s.txt:1:7: the quoted name is not closed\n"
            "  name: \"open\n"
            "        ^");
  StatusOr<Schedule> commented =
      ParseScheduleFile("name: \"x # y\"  # a comment\n" + WithRank1("F0 F1 BW0 BW1"), "s.txt", c);
  ASSERT_TRUE(commented.ok()) << commented.status().message();
  EXPECT_EQ(commented->name, "x # y");
}

}  // namespace
}  // namespace stepsim::sim
