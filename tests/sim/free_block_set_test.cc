// FreeBlockSet behaves as a std::set of its keys: the same order, the same
// lower_bound, under a long seeded sequence of insertions and removals.
#include "sim/free_block_set.h"

#include <gtest/gtest.h>

#include <random>
#include <set>

namespace stepsim::sim {
namespace {

using Key = FreeBlockSet::Key;

TEST(FreeBlockSetTest, KeysPackStreamSizeAddressAndBlock) {
  const Key k = Key::Make(63, FreeBlockSet::kMaxSize, (uint64_t{1} << 40) - 1, (1 << 24) - 1);
  EXPECT_EQ(k.stream(), 63);
  EXPECT_EQ(k.size(), FreeBlockSet::kMaxSize);
  EXPECT_EQ(k.block(), (1 << 24) - 1);
  // Stream first, then size, then address.
  EXPECT_LT(Key::Make(0, 100, 9, 0), Key::Make(1, 1, 0, 0));
  EXPECT_LT(Key::Make(2, 100, 9, 0), Key::Make(2, 101, 0, 0));
  EXPECT_LT(Key::Make(2, 100, 8, 5), Key::Make(2, 100, 9, 0));
}

TEST(FreeBlockSetTest, MatchesAStdSet) {
  std::mt19937_64 random(12);
  // Sizes around powers of two and their quarter steps, where size classes
  // change, and a few streams including the last.
  const std::vector<int64_t> sizes = {0,      1,        3,       4,         5,          511,
                                      512,    1023,     1024,    1 << 20,   (1 << 20) + 512,
                                      3 << 19, 7 << 19, 2 << 20, 20 << 20,  FreeBlockSet::kMaxSize};
  const std::vector<int32_t> streams = {0, 1, 3, 63};
  std::set<Key> expected;
  FreeBlockSet set;
  auto random_key = [&] {
    return Key::Make(streams[random() % streams.size()], sizes[random() % sizes.size()],
                     random() % 64, static_cast<int32_t>(random() % 1000));
  };
  for (int step = 0; step < 20000; ++step) {
    const Key k = random_key();
    if (random() % 3 != 0) {
      if (expected.insert(k).second) set.insert(k);
    } else {
      expected.erase(k);
      set.erase(k);
    }
    ASSERT_EQ(set.size(), expected.size());
    const Key probe = random_key();
    const auto want = expected.lower_bound(probe);
    const auto got = set.lower_bound(probe);
    ASSERT_EQ(want == expected.end(), got == set.end()) << step;
    if (want != expected.end()) ASSERT_EQ(*got, *want) << step;
    if (step % 500 == 0) {
      // Forward and backward iteration visit the same keys in order.
      std::vector<Key> forward(set.begin(), set.end());
      ASSERT_EQ(forward, std::vector<Key>(expected.begin(), expected.end()));
      std::vector<Key> backward;
      for (auto it = set.end(); it != set.begin();) backward.push_back(*--it);
      ASSERT_EQ(backward, std::vector<Key>(expected.rbegin(), expected.rend()));
    }
  }
  // Erasing through an iterator.
  while (!expected.empty()) {
    set.erase(set.begin());
    expected.erase(expected.begin());
    ASSERT_EQ(set.size(), expected.size());
  }
  EXPECT_TRUE(set.begin() == set.end());
}

}  // namespace
}  // namespace stepsim::sim
