#include "tools/allocator_replay.h"

#include <charconv>
#include <filesystem>
#include <iostream>
#include <unordered_map>
#include <vector>

#include "tools/cli_io.h"
#include "tools/output_plan.h"
#include "traces/format.h"
#include "traces/json.h"

namespace stepsim::tools {
namespace {

using Handle = sim::CachingAllocator::Handle;

struct Token {
  std::string text;
  size_t column = 0;  // 1-based
};

// The words of a line before any '#'.
std::vector<Token> Words(const std::string& line) {
  std::vector<Token> out;
  size_t i = 0;
  while (i < line.size() && line[i] != '#') {
    if (line[i] == ' ' || line[i] == '\t' || line[i] == '\r') {
      ++i;
      continue;
    }
    const size_t start = i;
    while (i < line.size() && line[i] != ' ' && line[i] != '\t' && line[i] != '\r' &&
           line[i] != '#') {
      ++i;
    }
    out.push_back({line.substr(start, i - start), start + 1});
  }
  return out;
}

// A decimal integer in [low, high].
bool Number(const std::string& s, int64_t low, int64_t high, int64_t* out) {
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && end == s.data() + s.size() && *out >= low && *out <= high;
}

}  // namespace

StatusOr<AllocatorReplayReport> ReplayAllocatorTrace(const std::string& text,
                                                     const std::string& file,
                                                     const sim::AllocatorOptions& options) {
  sim::CachingAllocator allocator(options);
  std::unordered_map<std::string, Handle> live;
  AllocatorReplayReport report;
  report.set_trace(file);
  int64_t line_number = 0;
  auto error = [&](size_t column, const std::string& message) {
    return Status::Invalid(file + ":" + std::to_string(line_number) + ":" +
                           std::to_string(column) + ": " + message);
  };
  for (size_t pos = 0; pos < text.size();) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    const std::string line = text.substr(pos, end - pos);
    pos = end + 1;
    ++line_number;
    const std::vector<Token> w = Words(line);
    if (w.empty()) continue;
    if (w[0].text == "alloc") {
      if (w.size() < 3) return error(line.size() + 1, "expected `alloc ID BYTES [STREAM]`");
      if (w.size() > 4) return error(w[4].column, "unexpected \"" + w[4].text + "\"");
      int64_t bytes = 0, stream = 0;
      if (!Number(w[2].text, 0, int64_t{1} << 50, &bytes)) {
        return error(w[2].column, "BYTES must be an integer in 0..2^50, got \"" + w[2].text + "\"");
      }
      if (w.size() == 4 && !Number(w[3].text, 0, sim::CachingAllocator::kMaxStreams - 1, &stream)) {
        return error(w[3].column, "STREAM must be an integer in 0..63, got \"" + w[3].text + "\"");
      }
      if (live.count(w[1].text)) {
        return error(w[1].column, "\"" + w[1].text + "\" is already allocated");
      }
      const Handle h = allocator.Allocate(bytes, static_cast<int>(stream));
      if (h == sim::CachingAllocator::kOutOfMemory) {
        return Status::Failed(file + ":" + std::to_string(line_number) + ":" +
                              std::to_string(w[0].column) + ": out of memory: " + w[1].text +
                              " needs " + std::to_string(bytes) + " B; reserved " +
                              std::to_string(allocator.stats().reserved) +
                              " B, the largest free block " +
                              std::to_string(allocator.LargestFreeBlock()) + " B");
      }
      live[w[1].text] = h;
      const sim::AllocatorStats& s = allocator.stats();
      report.set_peak_allocated_bytes(std::max(report.peak_allocated_bytes(), s.allocated));
      report.set_peak_requested_bytes(std::max(report.peak_requested_bytes(), s.requested));
      report.set_peak_reserved_bytes(std::max(report.peak_reserved_bytes(), s.reserved));
    } else if (w[0].text == "free") {
      if (w.size() < 2) return error(line.size() + 1, "expected `free ID`");
      if (w.size() > 2) return error(w[2].column, "unexpected \"" + w[2].text + "\"");
      auto it = live.find(w[1].text);
      if (it == live.end()) return error(w[1].column, "\"" + w[1].text + "\" is not allocated");
      allocator.Free(it->second);
      live.erase(it);
    } else {
      return error(w[0].column, "unknown event \"" + w[0].text + "\" (expected alloc or free)");
    }
    report.set_events(report.events() + 1);
  }
  const sim::AllocatorStats& s = allocator.stats();
  report.set_cuda_mallocs(s.device_allocs);
  report.set_end_allocated_bytes(s.allocated);
  report.set_end_reserved_bytes(s.reserved);
  report.set_largest_free_block_bytes(allocator.LargestFreeBlock());
  return report;
}

int RunAllocatorReplay(const AllocatorReplayArgs& args) {
  std::error_code ec;
  if (std::filesystem::exists(args.path, ec) && !std::filesystem::is_directory(args.path, ec) &&
      !std::filesystem::is_regular_file(args.path, ec)) {
    return Report(Status::Invalid(args.path + ": not a regular file"));
  }
  StatusOr<std::string> text = ReadFile(args.path);
  if (!text.ok()) return Report(text.status());
  sim::AllocatorOptions options = args.options;
  if (args.max_split_size_mb > 0) options.max_split_size = args.max_split_size_mb << 20;
  StatusOr<AllocatorReplayReport> report = ReplayAllocatorTrace(*text, args.path, options);
  if (!report.ok()) return Report(report.status());
  if (args.json != "-") {
    std::cout << args.path << ": " << report->events() << " events\n"
              << "peak_allocated_bytes " << report->peak_allocated_bytes() << " ("
              << traces::Gib(report->peak_allocated_bytes()) << " GiB)\n"
              << "peak_reserved_bytes " << report->peak_reserved_bytes() << " ("
              << traces::Gib(report->peak_reserved_bytes()) << " GiB)\n"
              << "cuda_mallocs " << report->cuda_mallocs() << "\n";
  }
  if (!args.json.empty()) return Report(WriteOutput(args.json, traces::ToJson(*report)));
  return kExitOk;
}

}  // namespace stepsim::tools
