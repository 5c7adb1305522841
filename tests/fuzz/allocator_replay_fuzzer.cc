// libFuzzer target: `stepsim allocator-replay` traces (`alloc ID BYTES
// [STREAM]`, `free ID`, `#` comments), replayed through the caching
// allocator. A first line "#! WORD..." (a comment to the real command)
// picks the options the command's flags give: `expandable`
// (--expandable-segments), `split=MB` (--max-split-size-mb, >= 20),
// `roundup=N` (--roundup-power2-divisions, a power of two up to 1024),
// `capacity=BYTES` (--capacity). A bad line must be refused with
// fuzz.trace:LINE:COL; out of memory is the only failure, and only with a
// capacity or expandable segments (one segment's address space is 9/8 of
// the capacity, 90 GiB when it is unlimited, as in PyTorch); a replay's
// figures must be consistent: requested <= allocated <= reserved at the
// peak, live bytes at the end within the peaks, the largest free block
// within what is reserved.
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
                     (limited || options.expandable_segments) &&
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
