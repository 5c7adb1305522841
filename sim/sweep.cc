#include "sim/sweep.h"

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>

#include <algorithm>
#include <optional>

#include "sim/cost_model.h"
#include "sim/process_pool.h"
#include "sim/step_profile.h"
#include "sim/sweep_rows.h"

namespace stepsim::sim {
namespace {

// Jobs grouped by key (in order of first appearance), cut into tasks of at
// most `slice` jobs: a worker builds a key's profiles once per task at most,
// and small slices keep every worker busy until the end.
std::vector<std::vector<int64_t>> Tasks(const std::vector<SimJob>& jobs, int workers) {
  std::map<std::string, size_t> group_of;
  std::vector<std::vector<int64_t>> groups;
  for (size_t i = 0; i < jobs.size(); ++i) {
    auto [it, inserted] = group_of.emplace(jobs[i].key, groups.size());
    if (inserted) groups.emplace_back();
    groups[it->second].push_back(static_cast<int64_t>(i));
  }
  const int64_t n = static_cast<int64_t>(jobs.size());
  const int64_t slice = std::clamp<int64_t>((n + 4 * workers - 1) / (4 * workers), 1, 64);
  std::vector<std::vector<int64_t>> tasks;
  for (const std::vector<int64_t>& group : groups) {
    for (size_t b = 0; b < group.size(); b += static_cast<size_t>(slice)) {
      const size_t e = std::min(group.size(), b + static_cast<size_t>(slice));
      tasks.emplace_back(group.begin() + static_cast<std::ptrdiff_t>(b),
                         group.begin() + static_cast<std::ptrdiff_t>(e));
    }
  }
  return tasks;
}

}  // namespace

std::string DeterministicBytes(const google::protobuf::Message& message) {
  std::string bytes;
  google::protobuf::io::StringOutputStream stream(&bytes);
  google::protobuf::io::CodedOutputStream coded(&stream);
  coded.SetSerializationDeterministic(true);
  message.SerializeToCodedStream(&coded);
  coded.Trim();
  return bytes;
}

std::string ProfileKey(const Scenario& scenario, const graph::Config& config) {
  Scenario s = scenario;
  s.clear_name();
  s.mutable_schedule()->clear_kind();
  s.mutable_batch()->clear_num_microbatches();
  if (!ProfilesDependOnZero(config)) s.clear_zero();
  std::string key = DeterministicBytes(s);
  for (const graph::Stage& stage : config.layout.stages) key += "\n" + stage.Describe();
  return key;
}

Status SimulateMany(const std::vector<SimJob>& jobs, const Reporter& reporter,
                    const SimulateManyOptions& options) {
  if (jobs.empty()) return Status::Ok();
  const int workers = std::max(1, options.jobs);
  const std::vector<std::vector<int64_t>> tasks = Tasks(jobs, workers);
  // A worker's cache: the profiles of the key it built last.
  std::string cached_key;
  std::optional<StatusOr<std::vector<StageProfile>>> cached;
  const auto run_task = [&](int64_t task, const Emit& emit) {
    for (int64_t item : tasks[static_cast<size_t>(task)]) {
      const SimJob& job = jobs[static_cast<size_t>(item)];
      const graph::Config& config = *job.config;
      if (!cached || cached_key != job.key) {
        cached.reset();
        cached.emplace(BuildStageProfiles(config, CostModel(config)));
        cached_key = job.key;
      }
      if (!cached->ok()) {
        emit(item, cached->status());
        continue;
      }
      ScheduleChoice choice;
      if (options.schedule) {
        StatusOr<ScheduleChoice> chosen = options.schedule(config);
        if (!chosen.ok()) {
          emit(item, chosen.status());
          continue;
        }
        choice = std::move(*chosen);
      } else {
        StatusOr<Schedule> built = BuildSchedule(config);
        if (!built.ok()) {
          emit(item, built.status());
          continue;
        }
        choice.schedule = std::move(*built);
      }
      emit(item, RunInChild([&]() -> StatusOr<std::string> {
             SimOptions sim_options;
             sim_options.schedule_from_file = choice.from_file;
             // This child's copy of the worker's profiles: moving it is free.
             StatusOr<SimResult> result =
                 Simulate(config, choice.schedule, sim_options, std::move(cached->value()));
             if (!result.ok()) return result.status();
             StatusOr<RunReport> built = reporter(config, *result);
             if (!built.ok()) return built.status();
             std::string report = built->SerializeAsString();
             // The child exits next: leaving the result (DAGs, ledgers)
             // to the kernel saves tearing it down, a tenth of the work.
             new SimResult(std::move(*result));  // NOLINT: deliberately never freed
             return report;
           }));
    }
  };
  std::vector<bool> answered(jobs.size(), false);
  const auto on_result = [&](int64_t item, StatusOr<std::string> bytes) {
    if (item < 0 || item >= static_cast<int64_t>(jobs.size()) || answered[item]) return;
    answered[item] = true;
    if (!options.on_result) return;
    if (!bytes.ok()) {
      options.on_result(item, bytes.status());
      return;
    }
    RunReport report;
    if (!report.ParseFromString(*bytes)) {
      options.on_result(item, Status::Failed("an unreadable report came back from the "
                                             "simulation process"));
      return;
    }
    options.on_result(item, std::move(report));
  };
  PoolOptions pool;
  pool.jobs = workers;
  const Status status = RunPool(static_cast<int64_t>(tasks.size()), pool, run_task, on_result);
  if (!status.ok() && std::none_of(answered.begin(), answered.end(), [](bool a) { return a; })) {
    return status;  // nothing ran: no worker could start
  }
  // Jobs of a task whose worker died: each gets the reason.
  for (size_t i = 0; i < jobs.size(); ++i) {
    if (answered[i] || !options.on_result) continue;
    options.on_result(static_cast<int64_t>(i), Status::Failed(
        "no result: " + (status.ok() ? std::string("none came back") : status.message())));
  }
  return Status::Ok();
}

StatusOr<SweepReport> RunSweep(const Scenario& base, std::vector<Vary> varies,
                               const Reporter& reporter, const SweepOptions& options) {
  if (Status s = CheckVaries(base, &varies); !s.ok()) return s;
  StatusOr<int64_t> total = CountPoints(varies);
  if (!total.ok()) return total.status();
  if (options.shard.n > *total) {
    return Status::Invalid("--shard " + ShardName(options.shard) + ": the sweep has only " +
                           std::to_string(*total) + " configurations, fewer than " +
                           std::to_string(options.shard.n) + " shards");
  }
  SweepReport report;
  report.set_scenario(base.name());
  report.set_command("sweep");
  for (const std::string& line : options.context) report.add_space(line);
  for (const Vary& vary : varies) report.add_space(DescribeVary(vary));
  report.set_total(*total);
  if (!options.shard.whole()) report.set_shard(ShardName(options.shard));

  const auto [begin, end] = ShardRange(options.shard, *total);
  struct Candidate {
    int64_t index;
    Point point;
    graph::Config config;
  };
  std::vector<Candidate> candidates;
  std::vector<SimJob> jobs;
  for (int64_t index = begin; index < end; ++index) {
    Point point = PointAt(varies, index);
    StatusOr<Scenario> scenario = ApplyPoint(base, point);
    if (!scenario.ok()) return scenario.status();  // CheckVaries has ruled this out
    StatusOr<graph::Config> config = graph::Resolve(*scenario);
    if (!config.ok()) {
      *report.add_configs() = RowWithError(index, point, config.status());
      continue;
    }
    const std::string key = ProfileKey(*scenario, *config);
    candidates.push_back({index, std::move(point), std::move(*config)});
    jobs.push_back({nullptr, key});
  }
  for (size_t i = 0; i < jobs.size(); ++i) jobs[i].config = &candidates[i].config;

  std::vector<std::optional<SweepConfig>> rows(candidates.size());
  int64_t done = 0;
  SimulateManyOptions many;
  many.jobs = options.jobs;
  many.schedule = options.schedule;
  many.on_result = [&](int64_t job, StatusOr<RunReport> run) {
    const Candidate& c = candidates[static_cast<size_t>(job)];
    if (run.ok()) {
      rows[job] = RowFromRun(c.index, c.point, c.config, *run);
      if (options.reports != nullptr) (*options.reports)[c.index] = std::move(*run);
    } else {
      rows[job] = RowWithError(c.index, c.point, run.status());
    }
    if (options.progress) options.progress(++done, static_cast<int64_t>(jobs.size()));
  };
  if (Status s = SimulateMany(jobs, reporter, many); !s.ok()) return s;
  for (std::optional<SweepConfig>& row : rows) *report.add_configs() = std::move(*row);
  SortConfigs(&report);
  return report;
}

}  // namespace stepsim::sim
