// FreeBlockSet behaves as a std::set of (key, handle): the same order, the
// same lower_bound, under a long seeded sequence of insertions and removals.
#include "sim/free_block_set.h"

#include <gtest/gtest.h>

#include <iterator>
#include <limits>
#include <random>
#include <set>
#include <utility>
#include <vector>

namespace stepsim::sim {
namespace {

using Key = FreeBlockSet::Key;

TEST(FreeBlockSetTest, KeysPackStreamSizeAndAddress) {
  const Key k = Key::Make(63, FreeBlockSet::kMaxSize, ~uint64_t{0});
  EXPECT_EQ(k.stream(), 63);
  EXPECT_EQ(k.size(), FreeBlockSet::kMaxSize);
  // Stream first, then size, then address.
  EXPECT_LT(Key::Make(0, 100, 9), Key::Make(1, 1, 0));
  EXPECT_LT(Key::Make(2, 100, 9), Key::Make(2, 101, 0));
  EXPECT_LT(Key::Make(2, 100, 8), Key::Make(2, 100, 9));
}

// What the set must hold: (key, handle) pairs, ties of a key by handle.
using Entry = std::pair<Key, int32_t>;

std::vector<int32_t> Handles(const std::set<Entry>& s) {
  std::vector<int32_t> out;
  for (const Entry& e : s) out.push_back(e.second);
  return out;
}

TEST(FreeBlockSetTest, MatchesAStdSet) {
  std::mt19937_64 random(12);
  // Sizes around powers of two and their quarter steps, where size classes
  // change, and a few streams including the last. Few addresses, so that
  // equal keys occur.
  const std::vector<int64_t> sizes = {0,      1,        3,       4,         5,          511,
                                      512,    1023,     1024,    1 << 20,   (1 << 20) + 512,
                                      3 << 19, 7 << 19, 2 << 20, 20 << 20,  FreeBlockSet::kMaxSize};
  const std::vector<int32_t> streams = {0, 1, 3, 63};
  constexpr int32_t kHandles = 1000;
  std::set<Entry> expected;
  std::vector<Key> key_of(kHandles);
  std::vector<bool> in(kHandles, false);
  FreeBlockSet set;
  auto random_key = [&] {
    return Key::Make(streams[random() % streams.size()], sizes[random() % sizes.size()],
                     random() % 64);
  };
  for (int step = 0; step < 20000; ++step) {
    const int32_t h = static_cast<int32_t>(random() % kHandles);
    if (!in[h]) {
      key_of[h] = random_key();
      set.insert(h, key_of[h]);
      expected.insert({key_of[h], h});
    } else {
      set.erase(h);
      expected.erase({key_of[h], h});
    }
    in[h] = !in[h];
    ASSERT_EQ(set.size(), expected.size());
    ASSERT_EQ(set.contains(h), in[h]);
    if (in[h]) {
      ASSERT_EQ(set.key(h), key_of[h]);
    }
    // lower_bound of a key: the first entry not less than it, any handle.
    const Key probe = random_key();
    const auto want = expected.lower_bound({probe, std::numeric_limits<int32_t>::min()});
    const int32_t got = set.lower_bound(probe);
    ASSERT_EQ(got, want == expected.end() ? FreeBlockSet::kNone : want->second) << step;
    // first_fit(stream, size): that lower_bound, within the stream.
    const int32_t fit = set.first_fit(probe.stream(), probe.size());
    const auto fit_want =
        expected.lower_bound({Key::Make(probe.stream(), probe.size(), 0), 0});
    ASSERT_EQ(fit, fit_want == expected.end() || fit_want->first.stream() != probe.stream()
                       ? FreeBlockSet::kNone
                       : fit_want->second)
        << step;
    // last_up_to(stream): the last entry of the streams up to it.
    const int32_t stream = streams[random() % streams.size()];
    const auto above = expected.lower_bound({Key::Make(stream + 1, 0, 0), 0});
    const int32_t last = set.last_up_to(stream);
    ASSERT_EQ(last, above == expected.begin() ? FreeBlockSet::kNone : std::prev(above)->second)
        << step;
    if (step % 500 == 0) {
      // Forward and backward iteration visit the handles in key order.
      std::vector<int32_t> forward;
      for (int32_t i = set.first(); i != FreeBlockSet::kNone; i = set.next(i)) forward.push_back(i);
      ASSERT_EQ(forward, Handles(expected));
      std::vector<int32_t> backward;
      for (int32_t i = set.last(); i != FreeBlockSet::kNone; i = set.prev(i)) {
        backward.insert(backward.begin(), i);
      }
      ASSERT_EQ(backward, Handles(expected));
    }
  }
  // Emptying it from the front.
  while (!expected.empty()) {
    ASSERT_EQ(set.first(), expected.begin()->second);
    set.erase(set.first());
    expected.erase(expected.begin());
    ASSERT_EQ(set.size(), expected.size());
  }
  EXPECT_EQ(set.first(), FreeBlockSet::kNone);
  EXPECT_EQ(set.last(), FreeBlockSet::kNone);
}

}  // namespace
}  // namespace stepsim::sim
