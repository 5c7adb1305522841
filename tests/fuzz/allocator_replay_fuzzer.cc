// libFuzzer target: `stepsim allocator-replay` traces (`alloc ID BYTES
// [STREAM]`, `free ID`, `#` comments), replayed through the caching
// allocator. A first line "#! WORD..." (a comment to the real command)
// picks the options the command's flags give: `expandable`
// (--expandable-segments), `split=MB` (--max-split-size-mb, >= 20),
// `roundup=N` (--roundup-power2-divisions, a power of two up to 1024),
// `capacity=BYTES` (--capacity). A bad line must be refused with
// fuzz.trace:LINE:COL; out of memory is the only failure, and only with a
// capacity, with expandable segments (one segment's address space is 9/8 of
// the capacity, 90 GiB when it is unlimited, as in PyTorch) or when the
// trace's segments could use up the addresses a run hands out; a replay's
// figures must be consistent: requested <= allocated <= reserved at the
// peak, live bytes at the end within the peaks, the largest free block
// within what is reserved.
#include <algorithm>
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "tests/fuzz/fuzz_util.h"
#include "tools/allocator_replay.h"

namespace {

// The options of a "#! ..." first line; false for a word the command's
// flags would refuse (the fuzzer then skips the input).
bool ReadOptions(std::string_view text, stepsim::sim::AllocatorOptions* o) {
  if (text.substr(0, 2) != "#!") return true;
  std::string_view line = text.substr(
      2, text.find('\n') == std::string_view::npos ? std::string_view::npos : text.find('\n') - 2);
  while (!line.empty()) {
    const size_t space = line.find(' ');
    const std::string_view word = line.substr(0, space);
    line.remove_prefix(space == std::string_view::npos ? line.size() : space + 1);
    if (word.empty()) continue;
    const size_t eq = word.find('=');
    const std::string_view key = word.substr(0, eq);
    int64_t value = 0;
    if (eq != std::string_view::npos) {
      const std::string_view v = word.substr(eq + 1);
      const auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), value);
      if (ec != std::errc() || end != v.data() + v.size()) return false;
    }
    if (key == "expandable" && eq == std::string_view::npos) {
      o->expandable_segments = true;
    } else if (key == "split" && value >= 20 && value <= (int64_t{1} << 30)) {
      o->max_split_size = value << 20;
    } else if (key == "roundup" && value >= 0 && value <= 1024 && (value & (value - 1)) == 0) {
      o->roundup_power2_divisions = value;
    } else if (key == "capacity" && value >= 0 && value <= (int64_t{1} << 50)) {
      o->capacity = value;
    } else {
      return false;
    }
  }
  return true;
}

void Check(bool holds, const char* what, const stepsim::AllocatorReplayReport& r) {
  if (holds) return;
  std::fprintf(stderr,
               "allocator replay: %s (peak requested %lld, allocated %lld, reserved %lld; end "
               "allocated %lld, reserved %lld; largest free block %lld)\n",
               what, static_cast<long long>(r.peak_requested_bytes()),
               static_cast<long long>(r.peak_allocated_bytes()),
               static_cast<long long>(r.peak_reserved_bytes()),
               static_cast<long long>(r.end_allocated_bytes()),
               static_cast<long long>(r.end_reserved_bytes()),
               static_cast<long long>(r.largest_free_block_bytes()));
  std::abort();
}

// Whether the trace's segments could use up the 2^49 B of addresses a run
// hands out (sim/caching_allocator.cc kAddressLimit), the one way out of
// memory happens without a capacity: each allocation's segment is at most
// its bytes plus 20 MiB.
bool MayExhaustAddresses(std::string_view text) {
  constexpr int64_t kAddresses = int64_t{1} << 49, kSlack = int64_t{20} << 20;
  int64_t total = 0;
  while (!text.empty()) {
    const size_t eol = text.find('\n');
    std::string_view line = text.substr(0, eol);
    text.remove_prefix(eol == std::string_view::npos ? text.size() : eol + 1);
    // "alloc ID BYTES ...": the third word, read as the command reads it.
    std::string_view words[3];
    for (std::string_view& w : words) {
      const size_t start = line.find_first_not_of(" \t\r");
      if (start == std::string_view::npos) break;
      line.remove_prefix(start);
      const size_t end = line.find_first_of(" \t\r");
      w = line.substr(0, end);
      line.remove_prefix(end == std::string_view::npos ? line.size() : end);
    }
    int64_t bytes = 0;
    if (words[0] != "alloc" ||
        std::from_chars(words[2].data(), words[2].data() + words[2].size(), bytes).ec !=
            std::errc()) {
      continue;
    }
    total += std::min(bytes, kAddresses) + kSlack;
    if (total >= kAddresses) return true;
  }
  return false;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  stepsim::fuzz::SetInput(data, size);
  namespace f = stepsim::fuzz;
  const std::string text(reinterpret_cast<const char*>(data), size);
  stepsim::sim::AllocatorOptions options;
  if (!ReadOptions(text, &options)) return 0;
  const bool limited = options.capacity != stepsim::sim::AllocatorOptions{}.capacity;
  stepsim::StatusOr<stepsim::AllocatorReplayReport> report =
      stepsim::tools::ReplayAllocatorTrace(text, "fuzz.trace", options);
  if (!report.ok()) {
    const bool oom = report.status().code() == stepsim::StatusCode::kFailed &&
                     (limited || options.expandable_segments || MayExhaustAddresses(text)) &&
                     report.status().message().find(": out of memory: ") != std::string::npos;
    if (!oom) f::CheckNotFailed(report.status(), "ReplayAllocatorTrace");
    f::CheckLocated(report.status(), "fuzz.trace", "ReplayAllocatorTrace");
    return 0;
  }
  const stepsim::AllocatorReplayReport& r = *report;
  Check(r.peak_requested_bytes() <= r.peak_allocated_bytes(), "requested above allocated", r);
  Check(r.peak_allocated_bytes() <= r.peak_reserved_bytes(), "allocated above reserved", r);
  Check(r.end_allocated_bytes() >= 0 && r.end_allocated_bytes() <= r.peak_allocated_bytes(),
        "end allocated outside 0..peak", r);
  Check(r.end_allocated_bytes() <= r.end_reserved_bytes(), "end allocated above reserved", r);
  Check(r.end_reserved_bytes() <= r.peak_reserved_bytes(), "end reserved above its peak", r);
  Check(r.largest_free_block_bytes() >= 0 &&
            r.largest_free_block_bytes() <= r.end_reserved_bytes() - r.end_allocated_bytes(),
        "largest free block above what is reserved and free", r);
  Check(!limited || r.peak_reserved_bytes() <= options.capacity, "reserved above the capacity", r);
  return 0;
}
