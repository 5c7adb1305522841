#include "sim/sweep_rows.h"

#include <algorithm>
#include <cstdint>
#include <map>
#include <set>
#include <tuple>

namespace stepsim::sim {
namespace {

void SetPoint(int64_t index, const Point& point, SweepConfig* row) {
  row->set_index(index);
  for (const auto& [path, value] : point) (*row->mutable_overrides())[path] = value;
}

// Sort groups, in output order.
int Group(const SweepConfig& c) {
  if (c.simulated()) return c.fits() ? 0 : 1;
  if (!c.skipped().empty()) return 2;
  return c.valid() ? 3 : 4;
}

}  // namespace

SweepConfig RowFromRun(int64_t index, const Point& point, const graph::Config& config,
                       const RunReport& run) {
  SweepConfig row;
  SetPoint(index, point, &row);
  row.set_valid(true);
  row.set_simulated(true);
  bool fits = run.ranks_size() > 0;
  double bubble = 0;
  int64_t peak = -1, peak_rank = -1, capacity = 0, reserved = 0;
  int64_t headroom = run.ranks_size() > 0 ? INT64_MAX : 0;
  for (const RankReport& rank : run.ranks()) {
    fits = fits && rank.fits();
    reserved = std::max(reserved, rank.reserved_peak_bytes());
    headroom = std::min(headroom, rank.headroom_bytes());
    bubble += rank.bubble_fraction();
    if (rank.peak_bytes() > peak) {
      peak = rank.peak_bytes();
      peak_rank = rank.pp_rank();
    }
    capacity = rank.capacity_bytes();
  }
  row.set_fits(fits);
  row.set_max_peak_bytes(std::max<int64_t>(peak, 0));
  row.set_peak_rank(peak_rank);
  row.set_max_reserved_bytes(reserved);
  row.set_min_headroom_bytes(headroom);
  row.set_bubble_fraction(run.ranks_size() > 0 ? bubble / run.ranks_size() : 0);
  row.set_capacity_bytes(capacity);
  row.set_step_time_us(run.step_time_us());
  row.set_gpus(config.parallel.world);
  row.set_schedule(run.schedule());
  row.set_microbatches(run.microbatches());
  const double tokens = static_cast<double>(config.batch.micro_batch_size) *
                        static_cast<double>(config.batch.seq_len) *
                        static_cast<double>(config.batch.microbatches) *
                        static_cast<double>(config.parallel.dp);
  if (run.step_time_us() > 0 && config.parallel.world > 0) {
    row.set_tokens_per_s_per_gpu(tokens / (run.step_time_us() * 1e-6) /
                                 static_cast<double>(config.parallel.world));
  }
  return row;
}

SweepConfig RowWithError(int64_t index, const Point& point, const Status& error) {
  SweepConfig row;
  SetPoint(index, point, &row);
  row.set_valid(error.code() != StatusCode::kInvalidInput);
  row.set_error(error.message());
  row.set_peak_rank(-1);
  return row;
}

SweepConfig RowSkipped(int64_t index, const Point& point, const std::string& why) {
  SweepConfig row;
  SetPoint(index, point, &row);
  row.set_valid(true);
  row.set_skipped(why);
  row.set_peak_rank(-1);
  return row;
}

void SortConfigs(SweepReport* report) {
  auto* configs = report->mutable_configs();
  std::stable_sort(configs->begin(), configs->end(),
                   [](const SweepConfig& a, const SweepConfig& b) {
                     const int ga = Group(a), gb = Group(b);
                     const double ta = ga <= 1 ? a.step_time_us() : 0;
                     const double tb = gb <= 1 ? b.step_time_us() : 0;
                     return std::make_tuple(ga, ta, a.index()) < std::make_tuple(gb, tb, b.index());
                   });
}

StatusOr<SweepReport> MergeShards(
    const std::vector<std::pair<std::string, SweepReport>>& shards) {
  if (shards.empty()) return Status::Invalid("merge: no shard files given");
  // Not a structured binding: clang 14 (the fuzz build) cannot capture one in a lambda.
  const std::string& first_name = shards.front().first;
  const SweepReport& first = shards.front().second;
  std::vector<std::string> problems;
  auto same = [&](const std::string& name, const SweepReport& r) {
    const auto space = [](const SweepReport& x) {
      return std::vector<std::string>(x.space().begin(), x.space().end());
    };
    if (r.command() != first.command() || r.scenario() != first.scenario() ||
        space(r) != space(first) || r.total() != first.total()) {
      problems.push_back(name + ": not a shard of the same search as " + first_name +
                         " (command, scenario, space or total differ)");
      return false;
    }
    return true;
  };
  std::map<int64_t, std::string> by_k;
  int64_t n = -1;
  for (const auto& [name, r] : shards) {
    if (!same(name, r)) continue;
    StatusOr<Shard> shard = ParseShard(r.shard().empty() ? "1/1" : r.shard());
    if (!shard.ok()) {
      problems.push_back(name + ": shard: " + shard.status().message());
      continue;
    }
    if (n >= 0 && shard->n != n) {
      problems.push_back(name + ": shard " + ShardName(*shard) + " is not one of " +
                         std::to_string(n) + " shards like " + first_name);
      continue;
    }
    n = shard->n;
    auto [it, inserted] = by_k.emplace(shard->k, name);
    if (!inserted) {
      problems.push_back(name + ": shard " + ShardName(*shard) + " is also in " + it->second);
    }
  }
  if (problems.empty()) {
    std::string missing;
    for (int64_t k = 1; k <= n; ++k) {
      if (!by_k.count(k)) missing += (missing.empty() ? "" : ", ") + std::to_string(k);
    }
    if (!missing.empty()) {
      problems.push_back("merge: shards " + missing + " of " + std::to_string(n) +
                         " are missing");
    }
  }
  if (!problems.empty()) return Status::Invalid(JoinLines(problems, 20));

  SweepReport merged = first;
  merged.clear_shard();
  merged.clear_configs();
  merged.clear_reasons();
  std::map<int64_t, std::string> seen;
  for (const auto& [name, r] : shards) {
    const Shard shard = *ParseShard(r.shard().empty() ? "1/1" : r.shard());
    const auto [begin, end] = ShardRange(shard, r.total());
    for (const SweepConfig& c : r.configs()) {
      if (c.index() < begin || c.index() >= end) {
        problems.push_back(name + ": configuration " + std::to_string(c.index()) +
                           " is outside shard " + ShardName(shard) + " (" +
                           std::to_string(begin) + ".." + std::to_string(end - 1) + ")");
        continue;
      }
      auto [it, inserted] = seen.emplace(c.index(), name);
      if (!inserted) {
        problems.push_back(name + ": configuration " + std::to_string(c.index()) +
                           " appears twice");
        continue;
      }
      *merged.add_configs() = c;
    }
    for (const auto& [reason, count] : r.reasons()) (*merged.mutable_reasons())[reason] += count;
  }
  if (problems.empty() && static_cast<int64_t>(seen.size()) != first.total()) {
    problems.push_back("merge: the shards hold " + std::to_string(seen.size()) + " of the " +
                       std::to_string(first.total()) + " configurations");
  }
  if (!problems.empty()) return Status::Invalid(JoinLines(problems, 20));
  SortConfigs(&merged);
  return merged;
}

}  // namespace stepsim::sim
