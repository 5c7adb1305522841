// The cached free blocks of one allocator pool in best-fit order: by
// (stream, size, address), as PyTorch's BlockComparatorSize orders them.
//
// A pool may hold a few hundred free blocks and sees an insertion or
// removal at every allocation and free, so instead of a tree it keeps one
// short sorted vector per (stream, size class), size classes being quarter
// steps between powers of two, and a bitmap of the non-empty ones. Ordered
// iteration, lower_bound and erase behave as on a std::set of the keys;
// iterators are invalidated by any change.
#ifndef STEPSIM_SIM_FREE_BLOCK_SET_H_
#define STEPSIM_SIM_FREE_BLOCK_SET_H_

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <vector>

namespace stepsim::sim {

class FreeBlockSet {
 public:
  static constexpr int kStreams = 64;
  static constexpr int64_t kMaxSize = (int64_t{1} << 52) - 1;

  // (stream, size, address) and the block, packed into 16 bytes: stream
  // and size in `hi`; the address (in 512 B units from a base the caller
  // chooses) and the block's handle (24 bits) in `lo`.
  struct Key {
    uint64_t hi = 0, lo = 0;
    static Key Make(int32_t stream, int64_t size, uint64_t address_units, int32_t block) {
      return {static_cast<uint64_t>(stream) << 52 | static_cast<uint64_t>(size),
              address_units << 24 | static_cast<uint64_t>(block)};
    }
    int32_t stream() const { return static_cast<int32_t>(hi >> 52); }
    int64_t size() const { return static_cast<int64_t>(hi & kMaxSize); }
    int32_t block() const { return static_cast<int32_t>(lo & ((uint64_t{1} << 24) - 1)); }
    bool operator<(const Key& o) const { return hi != o.hi ? hi < o.hi : lo < o.lo; }
    bool operator==(const Key& o) const { return hi == o.hi && lo == o.lo; }
  };

  class const_iterator {
   public:
    using iterator_category = std::bidirectional_iterator_tag;
    using value_type = Key;
    using difference_type = std::ptrdiff_t;
    using pointer = const Key*;
    using reference = const Key&;

    const Key& operator*() const { return set_->buckets_[bucket_][pos_]; }
    const Key* operator->() const { return &**this; }
    const_iterator& operator++() {
      if (pos_ + 1 < set_->buckets_[bucket_].size()) {
        ++pos_;
      } else {
        bucket_ = set_->NextBucket(bucket_ + 1);
        pos_ = 0;
      }
      return *this;
    }
    const_iterator& operator--() {  // not on begin()
      if (bucket_ < kBuckets && pos_ > 0) {
        --pos_;
      } else {
        bucket_ = set_->PrevBucket(bucket_ - 1);
        pos_ = set_->buckets_[bucket_].size() - 1;
      }
      return *this;
    }
    bool operator==(const const_iterator& o) const {
      return bucket_ == o.bucket_ && pos_ == o.pos_;
    }
    bool operator!=(const const_iterator& o) const { return !(*this == o); }

   private:
    friend class FreeBlockSet;
    const_iterator(const FreeBlockSet* set, int bucket, size_t pos)
        : set_(set), bucket_(bucket), pos_(pos) {}
    const FreeBlockSet* set_;
    int bucket_;
    size_t pos_;
  };

  FreeBlockSet()
      : buckets_(kBuckets), used_(kWords, 0), summary_((kWords + 63) / 64, 0) {}

  const_iterator begin() const { return {this, NextBucket(0), 0}; }
  const_iterator end() const { return {this, kBuckets, 0}; }
  bool empty() const { return size_ == 0; }
  size_t size() const { return size_; }

  // The first key not less than `k`.
  const_iterator lower_bound(const Key& k) const {
    const int b = BucketOf(k);
    const std::vector<Key>& v = buckets_[b];
    const auto it = std::lower_bound(v.begin(), v.end(), k);
    if (it != v.end()) return {this, b, static_cast<size_t>(it - v.begin())};
    return {this, NextBucket(b + 1), 0};
  }

  void insert(const Key& k) {
    const int b = BucketOf(k);
    std::vector<Key>& v = buckets_[b];
    ++size_;
    if (v.empty()) {
      v.push_back(k);
      used_[b / 64] |= uint64_t{1} << (b % 64);
      summary_[b / 4096] |= uint64_t{1} << (b / 64 % 64);
      return;
    }
    // Buckets hold a key or two: shift the larger ones up by hand.
    v.push_back(k);
    size_t i = v.size() - 1;
    for (; i > 0 && k < v[i - 1]; --i) v[i] = v[i - 1];
    v[i] = k;
  }

  void erase(const_iterator it) {
    std::vector<Key>& v = buckets_[it.bucket_];
    for (size_t i = it.pos_ + 1; i < v.size(); ++i) v[i - 1] = v[i];
    v.pop_back();
    if (v.empty()) {
      const int w = it.bucket_ / 64;
      used_[w] &= ~(uint64_t{1} << (it.bucket_ % 64));
      if (used_[w] == 0) summary_[w / 64] &= ~(uint64_t{1} << (w % 64));
    }
    --size_;
  }

  // Removes `k` if present: a scan of its bucket, which holds a key or two.
  void erase(const Key& k) {
    const int b = BucketOf(k);
    const std::vector<Key>& v = buckets_[b];
    for (size_t i = 0; i < v.size(); ++i) {
      if (v[i] == k) return erase(const_iterator(this, b, i));
      if (k < v[i]) return;
    }
  }

 private:
  static constexpr int kClasses = 4 * 52;  // quarter steps of sizes below 2^52
  static constexpr int kBuckets = kStreams * kClasses;
  static constexpr int kWords = kBuckets / 64 + 1;

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
    if (bits != 0) return std::min(kBuckets, w * 64 + __builtin_ctzll(bits));
    for (int next = w + 1, s = next / 64; next < kWords && s < static_cast<int>(summary_.size());
         ++s) {
      const uint64_t words = summary_[s] & (~uint64_t{0} << (next % 64));
      if (words != 0) {
        const int found = s * 64 + __builtin_ctzll(words);
        return std::min(kBuckets, found * 64 + __builtin_ctzll(used_[found]));
      }
      next = (s + 1) * 64;
    }
    return kBuckets;
  }

  // The last non-empty bucket at or before b; one exists (the caller is
  // not at begin()).
  int PrevBucket(int b) const {
    for (int w = b / 64; w >= 0; --w) {
      const int top = b - w * 64;  // highest bit to consider in this word
      const uint64_t mask = top >= 63 ? ~uint64_t{0} : (uint64_t{1} << (top + 1)) - 1;
      const uint64_t bits = used_[w] & mask;
      if (bits != 0) return w * 64 + 63 - __builtin_clzll(bits);
      b = w * 64 - 1;
    }
    return 0;
  }

  std::vector<std::vector<Key>> buckets_;
  std::vector<uint64_t> used_;     // a bit per non-empty bucket
  std::vector<uint64_t> summary_;  // a bit per non-zero word of used_
  size_t size_ = 0;
};

}  // namespace stepsim::sim

#endif  // STEPSIM_SIM_FREE_BLOCK_SET_H_
