// The cached free blocks of one allocator pool in best-fit order: by
// (stream, size, address), as PyTorch's BlockComparatorSize orders them.
//
// A pool sees an insertion or removal at every allocation and free, and
// most often holds a few hundred blocks, so instead of a tree it keeps the
// blocks, named by the caller's handles, in one short sorted list per
// (stream, size class), size classes being quarter steps between powers of
// two, with a bitmap of the non-empty lists. The links live in the set,
// indexed by handle: removing a block is O(1) and needs no search, and
// finding the first block of at least a size looks at one list and then
// one bit. Ties (equal keys) go by handle.
#ifndef STEPSIM_SIM_FREE_BLOCK_SET_H_
#define STEPSIM_SIM_FREE_BLOCK_SET_H_

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace stepsim::sim {

class FreeBlockSet {
 public:
  using Handle = int32_t;
  static constexpr Handle kNone = -1;
  static constexpr int kStreams = 64;
  static constexpr int64_t kMaxSize = (int64_t{1} << 52) - 1;

  // (stream, size, address) packed into 16 bytes: stream and size in `hi`,
  // the address (in any unit the caller chooses) in `lo`.
  struct Key {
    uint64_t hi = 0, lo = 0;
    static Key Make(int32_t stream, int64_t size, uint64_t address) {
      return {static_cast<uint64_t>(stream) << 52 | static_cast<uint64_t>(size), address};
    }
    int32_t stream() const { return static_cast<int32_t>(hi >> 52); }
    int64_t size() const { return static_cast<int64_t>(hi & kMaxSize); }
    bool operator<(const Key& o) const { return hi != o.hi ? hi < o.hi : lo < o.lo; }
    bool operator==(const Key& o) const { return hi == o.hi && lo == o.lo; }
  };

  FreeBlockSet()
      : heads_(kBuckets, kNone), tails_(kBuckets, kNone), used_(kWords, 0), summary_(kSummary, 0) {}

  bool empty() const { return size_ == 0; }
  size_t size() const { return size_; }
  bool contains(Handle h) const {
    return h >= 0 && static_cast<size_t>(h) < nodes_.size() && nodes_[h].bucket >= 0;
  }
  // The key `h` was inserted with; `h` is in the set.
  const Key& key(Handle h) const { return nodes_[h].key; }

  // The first and last handles in order, kNone when empty.
  Handle first() const { return HeadOf(NextBucket(0)); }
  Handle last() const { return size_ == 0 ? kNone : tails_[PrevBucket(kBuckets - 1)]; }
  // The handle after (before) `h`, which is in the set; kNone at the end.
  Handle next(Handle h) const {
    const Node& n = nodes_[h];
    return n.next != kNone ? n.next : HeadOf(NextBucket(n.bucket + 1));
  }
  Handle prev(Handle h) const {
    const Node& n = nodes_[h];
    if (n.prev != kNone) return n.prev;
    const int b = n.bucket == 0 ? -1 : PrevBucket(n.bucket - 1);
    return b < 0 ? kNone : tails_[b];
  }

  // The first handle whose key is not less than `k` (ties of `k` count as
  // not less), kNone if none.
  Handle lower_bound(const Key& k) const {
    const int b = BucketOf(k);
    const Handle h = FirstInBucket(b, k);
    return h != kNone ? h : HeadOf(NextBucket(b + 1));
  }

  // The first handle of `stream` whose size is at least `size` (lowest
  // address first among equal sizes), kNone if none: lower_bound within a
  // stream, scanning only that stream's bits.
  Handle first_fit(int32_t stream, int64_t size) const {
    const Key k = Key::Make(stream, size, 0);
    const int b = BucketOf(k);
    if (const Handle h = FirstInBucket(b, k); h != kNone) return h;
    const int end = (stream + 1) * kClasses;
    for (int w = (b + 1) / 64, from = b + 1; w * 64 < end; ++w, from = w * 64) {
      const uint64_t bits = used_[w] & (~uint64_t{0} << (from % 64));
      if (bits != 0) {
        const int found = w * 64 + __builtin_ctzll(bits);
        return found < end ? heads_[found] : kNone;
      }
    }
    return kNone;
  }

  // The handle with the largest key among streams up to `stream`, kNone
  // if they have none.
  Handle last_up_to(int32_t stream) const {
    const int b = PrevBucket((stream + 1) * kClasses - 1);
    return b < 0 ? kNone : tails_[b];
  }

  // Adds `h` (not in the set, >= 0) with key `k`.
  void insert(Handle h, const Key& k) {
    const size_t room = static_cast<size_t>(h) + 1;
    if (room > nodes_.size()) nodes_.resize(std::max(room, nodes_.size() * 2));
    Link(h, k, BucketOf(k));
  }

  // Gives `h`, which is in the set, the key `k`: in place when it keeps
  // its list and its rank there (a block that shrinks or grows a little),
  // else by removing and inserting it.
  void update(Handle h, const Key& k) {
    Node& n = nodes_[h];
    const int b = BucketOf(k);
    if (b == n.bucket && (n.prev == kNone || Less(n.prev, nodes_[n.prev].key, h, k)) &&
        (n.next == kNone || Less(h, k, n.next, nodes_[n.next].key))) {
      n.key = k;
      return;
    }
    erase(h);
    Link(h, k, b);
  }

  // Removes `h`, which is in the set.
  void erase(Handle h) {
    Node& n = nodes_[h];
    const unsigned b = static_cast<unsigned>(n.bucket);
    (n.prev == kNone ? heads_[b] : nodes_[n.prev].next) = n.next;
    (n.next == kNone ? tails_[b] : nodes_[n.next].prev) = n.prev;
    if (heads_[b] == kNone) {
      const unsigned w = b / 64;
      used_[w] &= ~(uint64_t{1} << (b % 64));
      if (used_[w] == 0) summary_[w / 64] &= ~(uint64_t{1} << (w % 64));
    }
    n.bucket = -1;
    --size_;
  }

 private:
  static constexpr int kClasses = 4 * 52;  // quarter steps of sizes below 2^52
  static constexpr int kBuckets = kStreams * kClasses;
  static constexpr int kWords = (kBuckets + 63) / 64;
  static constexpr int kSummary = (kWords + 63) / 64;

  struct Node {
    Key key;
    Handle prev = kNone, next = kNone;
    int32_t bucket = -1;  // -1: not in the set
  };

  // Puts `h` (room made, not in the set) into bucket `bucket` with key `k`.
  [[gnu::always_inline]] void Link(Handle h, const Key& k, int bucket) {
    const unsigned b = static_cast<unsigned>(bucket);
    // Lists hold a block or a few: walk back from the largest. (Compared
    // with `k` and linked from locals, not read back from the node being
    // written, which would stall on the stores.)
    Handle after = tails_[b];
    const bool was_empty = after == kNone;
    while (after != kNone && Less(h, k, after, nodes_[after].key)) after = nodes_[after].prev;
    const Handle before = after == kNone ? heads_[b] : nodes_[after].next;
    Node& n = nodes_[h];
    n.key = k;
    n.bucket = bucket;
    n.prev = after;
    n.next = before;
    (after == kNone ? heads_[b] : nodes_[after].next) = h;
    (before == kNone ? tails_[b] : nodes_[before].prev) = h;
    ++size_;
    if (was_empty) {
      used_[b / 64] |= uint64_t{1} << (b % 64);
      summary_[b / 4096] |= uint64_t{1} << (b / 64 % 64);
    }
  }

  static bool Less(Handle a, const Key& ka, Handle b, const Key& kb) {
    return ka < kb || (ka == kb && a < b);
  }
  // The first handle of bucket b's list whose key is not less than `k`.
  Handle FirstInBucket(int b, const Key& k) const {
    for (Handle h = heads_[b]; h != kNone; h = nodes_[h].next) {
      if (!(nodes_[h].key < k)) return h;
    }
    return kNone;
  }

  Handle HeadOf(int bucket) const { return bucket < kBuckets ? heads_[bucket] : kNone; }

  // Monotone in (stream, size): classes of equal keys never interleave.
  static int BucketOf(const Key& k) {
    const uint64_t s = static_cast<uint64_t>(k.size());
    int cls = 0;
    if (s >= 4) {
      const int log = 63 - __builtin_clzll(s);
      cls = 4 * log + static_cast<int>((s >> (log - 2)) & 3);
    } else {
      cls = static_cast<int>(s);  // 0..3
    }
    return k.stream() * kClasses + std::min(cls, kClasses - 1);
  }

  // The first non-empty bucket at or after b (kBuckets if none): in b's
  // word, else in the first non-empty word after it (from the summary).
  int NextBucket(int b) const {
    if (b >= kBuckets) return kBuckets;
    const int w = b / 64;
    const uint64_t bits = used_[w] & (~uint64_t{0} << (b % 64));
    if (bits != 0) return w * 64 + __builtin_ctzll(bits);
    for (int next = w + 1; next < kWords; next = (next / 64 + 1) * 64) {
      const uint64_t words = summary_[next / 64] & (~uint64_t{0} << (next % 64));
      if (words != 0) {
        const int found = next / 64 * 64 + __builtin_ctzll(words);
        return found * 64 + __builtin_ctzll(used_[found]);
      }
    }
    return kBuckets;
  }

  // The last non-empty bucket at or before b (-1 if none), the same way
  // backwards.
  int PrevBucket(int b) const {
    if (b < 0) return -1;
    const int w = b / 64;
    const int top = b % 64;
    const uint64_t bits = used_[w] & (top == 63 ? ~uint64_t{0} : (uint64_t{1} << (top + 1)) - 1);
    if (bits != 0) return w * 64 + 63 - __builtin_clzll(bits);
    for (int prev = w - 1; prev >= 0; prev = prev / 64 * 64 - 1) {
      const int t = prev % 64;
      const uint64_t words =
          summary_[prev / 64] & (t == 63 ? ~uint64_t{0} : (uint64_t{1} << (t + 1)) - 1);
      if (words != 0) {
        const int found = prev / 64 * 64 + 63 - __builtin_clzll(words);
        return found * 64 + 63 - __builtin_clzll(used_[found]);
      }
    }
    return -1;
  }

  std::vector<Node> nodes_;        // by handle
  std::vector<Handle> heads_;      // the first of each bucket's list
  std::vector<Handle> tails_;      // the last
  std::vector<uint64_t> used_;     // a bit per non-empty bucket
  std::vector<uint64_t> summary_;  // a bit per non-zero word of used_
  size_t size_ = 0;
};

}  // namespace stepsim::sim

#endif  // STEPSIM_SIM_FREE_BLOCK_SET_H_
