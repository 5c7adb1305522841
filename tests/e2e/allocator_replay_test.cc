// `stepsim allocator-replay`: traces whose reserved bytes are derived by
// hand from the caching allocator's rules, and errors with file:line:col.
#include <google/protobuf/util/json_util.h>
#include <gtest/gtest.h>

#include <fstream>

#include "report.pb.h"
#include "tests/e2e/run_cli.h"

namespace stepsim::testing {
namespace {

constexpr int64_t kMiB = 1 << 20;

// Writes `text` to a fresh file and replays it with `flags`.
CliResult Replay(const std::string& text, const std::string& flags = "") {
  char name[] = "/tmp/stepsim_replay_XXXXXX";
  const int fd = mkstemp(name);
  close(fd);
  std::ofstream(name) << text;
  CliResult r = RunCli("allocator-replay " + std::string(name) + " " + flags);
  std::remove(name);
  // Errors name the file; make them comparable.
  for (std::string* s : {&r.out, &r.err}) {
    for (size_t at; (at = s->find(name)) != std::string::npos;) s->replace(at, sizeof name - 1, "T");
  }
  return r;
}

AllocatorReplayReport Json(const CliResult& r) {
  AllocatorReplayReport report;
  EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(r.out, &report).ok()) << r.out;
  return report;
}

// a: 1 B -> 512 B in a 2 MiB small segment. b: 1 MiB + 1 B -> 1 MiB + 512 B
// in a 20 MiB segment. c: 10 MiB on stream 1 -> its own 10 MiB segment.
// Reserved 2 + 20 + 10 = 32 MiB in 3 cudaMallocs; allocated peaks with b
// and c live: 1 MiB + 512 B + 10 MiB.
TEST(AllocatorReplayTest, HandDerivedReservedBytes) {
  const CliResult r = Replay(
      "# a comment, then a blank line\n"
      "\n"
      "alloc a 1\n"
      "alloc b 1048577   # 1 MiB + 1 B\n"
      "free a\n"
      "alloc c 10485760 1\n",
      "--json -");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const AllocatorReplayReport report = Json(r);
  EXPECT_EQ(report.events(), 4);
  EXPECT_EQ(report.peak_reserved_bytes(), 32 * kMiB);
  EXPECT_EQ(report.cuda_mallocs(), 3);
  EXPECT_EQ(report.peak_allocated_bytes(), kMiB + 512 + 10 * kMiB);
  EXPECT_EQ(report.peak_requested_bytes(), kMiB + 1 + 10 * kMiB);
  // The field names scripts rely on, exactly.
  for (const char* field : {"\"peak_allocated_bytes\"", "\"peak_reserved_bytes\"",
                            "\"cuda_mallocs\""}) {
    EXPECT_NE(r.out.find(field), std::string::npos) << field;
  }
}

// Two 12 MiB segments, the first freed: a 14 MiB request does not fit the
// hole, a third segment follows (38 MiB). With expandable segments 20 MiB
// pages are mapped: a takes 12 of the first page, b maps a second page
// (8 + 20 MiB free, 12 taken), c fits the 16 MiB left: 40 MiB, 2 mappings.
TEST(AllocatorReplayTest, AHoleTooSmallAndExpandableSegments) {
  const std::string trace =
      "alloc a 12582912\nalloc b 12582912\nfree a\nalloc c 14680064\n";
  AllocatorReplayReport plain = Json(Replay(trace, "--json -"));
  EXPECT_EQ(plain.peak_reserved_bytes(), 38 * kMiB);
  EXPECT_EQ(plain.cuda_mallocs(), 3);
  AllocatorReplayReport expandable = Json(Replay(trace, "--json - --expandable-segments"));
  EXPECT_EQ(expandable.peak_reserved_bytes(), 40 * kMiB);
  EXPECT_EQ(expandable.cuda_mallocs(), 2);
}

TEST(AllocatorReplayTest, PrintsTheFigures) {
  const CliResult r = Replay("alloc a 1\n");
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.out,
            "T: 1 events\n"
            "peak_allocated_bytes 512 (0.00 GiB)\n"
            "peak_reserved_bytes 2097152 (0.00 GiB)\n"
            "cuda_mallocs 1\n");
}

TEST(AllocatorReplayTest, ErrorsGiveFileLineAndColumn) {
  struct Case {
    std::string text, error;
  };
  const std::vector<Case> cases = {
      {"alloc a 1\nfree x\n", "T:2:6: \"x\" is not allocated"},
      {"alloc a 1\nalloc a 2\n", "T:2:7: \"a\" is already allocated"},
      {"  alloc a -5\n", "T:1:11: BYTES must be an integer in 0..2^50, got \"-5\""},
      {"alloc a 1e3\n", "T:1:9: BYTES must be an integer in 0..2^50, got \"1e3\""},
      {"alloc a 10 64\n", "T:1:12: STREAM must be an integer in 0..63, got \"64\""},
      {"alloc a 10 1 2\n", "T:1:14: unexpected \"2\""},
      {"alloc a\n", "T:1:8: expected `alloc ID BYTES [STREAM]`"},
      {"free a b\n", "T:1:8: unexpected \"b\""},
      {"\n\nmalloc a 1\n", "T:3:1: unknown event \"malloc\" (expected alloc or free)"},
  };
  for (const Case& c : cases) {
    const CliResult r = Replay(c.text);
    EXPECT_EQ(r.exit_code, 2) << c.text;
    EXPECT_EQ(r.err, "stepsim: " + c.error + "\n") << c.text;
    EXPECT_EQ(r.out, "") << c.text;
  }
}

// 30 MiB live of a 40 MiB capacity: 20 MiB more is out of memory even
// after the cache is freed (exit 1, the run failed).
TEST(AllocatorReplayTest, OutOfMemoryNamesTheLine) {
  const CliResult r = Replay("alloc a 31457280\nalloc b 20971520\n", "--capacity 41943040");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.err,
            "stepsim: T:2:1: out of memory: b needs 20971520 B; reserved 31457280 B, the "
            "largest free block 0 B\n");
}

TEST(AllocatorReplayTest, RefusesWhatIsNotARegularFile) {
  CliResult r = RunCli("allocator-replay /dev/zero");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err, "stepsim: /dev/zero: not a regular file\n");
  r = RunCli("allocator-replay /nonexistent/trace");
  EXPECT_EQ(r.exit_code, 2);
  r = RunCli("allocator-replay scenarios");
  EXPECT_EQ(r.exit_code, 2);
  r = RunCli("allocator-replay /dev/null --max-split-size-mb 5");
  EXPECT_EQ(r.exit_code, 2);  // below PyTorch's 20 MiB
}

}  // namespace
}  // namespace stepsim::testing
