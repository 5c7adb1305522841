#include "sim/fit_space.h"

#include <algorithm>

namespace stepsim::sim {
namespace {

std::string Join(const std::vector<std::string>& items, const std::string& sep) {
  std::string out;
  for (size_t i = 0; i < items.size(); ++i) out += (i ? sep : "") + items[i];
  return out;
}

std::string JoinNumbers(const std::vector<int64_t>& values) {
  std::vector<std::string> s;
  for (int64_t v : values) s.push_back(std::to_string(v));
  return Join(s, ",");
}

std::vector<int64_t> PowersOfTwo(int64_t limit) {
  std::vector<int64_t> out;
  for (int64_t v = 1; v <= limit && v > 0; v *= 2) out.push_back(v);
  return out;
}

Status CheckValues(const std::string& flag, const std::vector<int64_t>& values, int64_t min,
                   int64_t max) {
  for (int64_t v : values) {
    if (v < min || v > max) {
      return Status::Invalid(flag + ": " + std::to_string(v) + " is outside " +
                             std::to_string(min) + ".." + std::to_string(max));
    }
  }
  return Status::Ok();
}

// Sorted, without repeats.
std::vector<int64_t> Distinct(std::vector<int64_t> values) {
  std::sort(values.begin(), values.end());
  values.erase(std::unique(values.begin(), values.end()), values.end());
  return values;
}

}  // namespace

std::string RecomputeName(const RecomputeChoice& choice) {
  switch (choice.policy) {
    case FULL: return "full";
    case SELECTIVE: return Join(choice.modules, "+");
    default: return "none";
  }
}

Scenario FitBase(const Scenario& scenario) {
  Scenario base = scenario;
  base.mutable_schedule()->clear_file();
  base.mutable_recompute()->clear_method();
  base.mutable_recompute()->clear_num_layers();
  return base;
}

Point FitCandidates::PointOf(const FitCandidate& c) const {
  const RecomputeChoice& r = recompute[static_cast<size_t>(c.recompute)];
  std::vector<std::string> modules = r.modules;
  Point p = {
      {"parallel.pp", std::to_string(c.pp)},
      {"parallel.tp", std::to_string(c.tp)},
      {"parallel.sequence_parallel", c.tp > 1 ? "true" : "false"},
      {"parallel.cp", std::to_string(c.cp)},
      {"parallel.dp", std::to_string(c.dp)},
      {"parallel.ep", std::to_string(c.ep)},
      {"parallel.etp", std::to_string(c.etp)},
      {"parallel.vpp", std::to_string(c.vpp)},
      {"zero.stage", std::to_string(c.zero)},
      {"batch.micro_batch_size", std::to_string(c.mbs)},
      {"batch.num_microbatches", std::to_string(c.microbatches)},
      {"recompute.policy", RecomputePolicy_Name(r.policy)},
      {"recompute.modules", Join(modules, ",")},
      {"schedule.kind", ScheduleKind_Name(c.schedule)},
  };
  if (c.clear_layout) p.push_back({"parallel.layout", ""});
  if (set_capacity) p.push_back({"hardware.hbm_bytes", std::to_string(capacity_bytes)});
  return p;
}

Scenario FitCandidates::ScenarioOf(const Scenario& base, const FitCandidate& c) const {
  Scenario s = base;
  Parallel& p = *s.mutable_parallel();
  p.set_pp(c.pp);
  p.set_tp(c.tp);
  p.set_sequence_parallel(c.tp > 1);
  p.set_cp(c.cp);
  p.set_dp(c.dp);
  p.set_ep(c.ep);
  p.set_etp(c.etp);
  p.set_vpp(c.vpp);
  s.mutable_zero()->set_stage(c.zero);
  s.mutable_batch()->set_micro_batch_size(c.mbs);
  s.mutable_batch()->set_num_microbatches(c.microbatches);
  const RecomputeChoice& r = recompute[static_cast<size_t>(c.recompute)];
  s.mutable_recompute()->set_policy(r.policy);
  s.mutable_recompute()->clear_modules();
  for (const std::string& m : r.modules) s.mutable_recompute()->add_modules(m);
  s.mutable_schedule()->set_kind(c.schedule);
  if (c.clear_layout) p.set_layout("");
  if (set_capacity) s.mutable_hardware()->set_hbm_bytes(capacity_bytes);
  return s;
}

StatusOr<FitCandidates> EnumerateFit(const Scenario& base, const graph::Config& config,
                                     const FitSpace& space) {
  constexpr int64_t kMax = int64_t{1} << 31;
  if (space.gpus < 1 || space.gpus > kMax) {
    return Status::Invalid("--gpus: " + std::to_string(space.gpus) + " is outside 1.." +
                           std::to_string(kMax));
  }
  if (space.global_batch < 0 || space.global_batch > kMax) {
    return Status::Invalid("--global-batch: " + std::to_string(space.global_batch) +
                           " is outside 1.." + std::to_string(kMax));
  }
  if (space.top < 1) return Status::Invalid("--top: must be at least 1");
  for (const auto& [flag, values, min, max] :
       {std::tuple{"--pp", &space.pp, 1, kMax}, {"--tp", &space.tp, 1, kMax},
        {"--cp", &space.cp, 1, kMax}, {"--ep", &space.ep, 1, kMax},
        {"--etp", &space.etp, 1, kMax}, {"--mbs", &space.mbs, 1, kMax},
        {"--vpp", &space.vpp, 2, kMax}, {"--zero", &space.zero, 0, 3}}) {
    if (Status s = CheckValues(flag, *values, min, max); !s.ok()) return s;
  }
  FitCandidates out;
  const graph::ModelSpec& m = config.model;
  out.global_batch = space.global_batch > 0
                         ? space.global_batch
                         : config.batch.micro_batch_size * config.batch.microbatches *
                               config.parallel.dp;
  out.capacity_bytes = config.hardware.hbm_bytes - space.headroom_bytes;
  if (space.headroom_bytes < 0 || out.capacity_bytes < 1) {
    return Status::Invalid("--headroom: must leave some of the device's " +
                           std::to_string(config.hardware.hbm_bytes) + " bytes");
  }
  out.set_capacity = space.headroom_bytes > 0;

  std::vector<int64_t> pp = space.pp, tp = space.tp, cp = space.cp, ep = space.ep;
  std::vector<int64_t> mbs = space.mbs, vpp = space.vpp, zero = space.zero;
  if (pp.empty()) {
    for (int64_t v : PowersOfTwo(std::min(space.gpus, m.layers))) {
      if (space.gpus % v == 0) pp.push_back(v);
    }
  }
  if (tp.empty()) tp = PowersOfTwo(std::min(space.gpus, config.hardware.gpus_per_node));
  if (cp.empty()) cp = {1, 2};
  if (ep.empty()) {
    for (int64_t v : PowersOfTwo(std::max<int64_t>(m.experts, 1))) {
      if (m.experts == 0 ? v == 1 : m.experts % v == 0) ep.push_back(v);
    }
  }
  if (mbs.empty()) mbs = {1, 2, 4};
  if (vpp.empty()) vpp = {2};
  if (zero.empty()) zero = {0, 1, 2, 3};
  pp = Distinct(pp), tp = Distinct(tp), cp = Distinct(cp), ep = Distinct(ep);
  mbs = Distinct(mbs), vpp = Distinct(vpp), zero = Distinct(zero);
  std::vector<ScheduleKind> schedules = space.schedules;
  if (schedules.empty()) {
    schedules = {GPIPE, ONE_F_ONE_B, INTERLEAVED_ONE_F_ONE_B, ZB_H1, ZB_H2, DUALPIPE, DUALPIPE_V};
  }
  out.recompute = space.recompute;
  if (out.recompute.empty()) {
    out.recompute.push_back({NONE, {}});
    if (config.recompute.policy == SELECTIVE) {
      out.recompute.push_back(
          {SELECTIVE, {config.recompute.modules.begin(), config.recompute.modules.end()}});
    }
    out.recompute.push_back({FULL, {}});
  }
  // ETP: the given values, or 1 and TP (only 1 for a dense model, which
  // has no experts to split); only those up to TP.
  const bool dense = m.experts == 0;
  auto etps = [&](int64_t t) {
    std::vector<int64_t> values = !space.etp.empty() ? space.etp
                                  : dense            ? std::vector<int64_t>{1}
                                                     : std::vector<int64_t>{1, t};
    values.erase(std::remove_if(values.begin(), values.end(), [t](int64_t v) { return v > t; }),
                 values.end());
    return Distinct(values);
  };
  const bool has_layout = !base.parallel().layout().empty();

  std::vector<std::string> recompute_names, schedule_names;
  for (const RecomputeChoice& r : out.recompute) recompute_names.push_back(RecomputeName(r));
  for (ScheduleKind k : schedules) schedule_names.push_back(ScheduleKind_Name(k));
  out.space = {"gpus=" + std::to_string(space.gpus),
               "global_batch=" + std::to_string(out.global_batch),
               "capacity_bytes=" + std::to_string(out.capacity_bytes),
               "top=" + std::to_string(space.top),
               "parallel.pp=" + JoinNumbers(pp),
               "parallel.tp=" + JoinNumbers(tp),
               "parallel.cp=" + JoinNumbers(cp),
               "parallel.dp=N/(PP*TP*CP)",
               "parallel.ep=" + JoinNumbers(ep),
               "parallel.etp=" + (!space.etp.empty() ? JoinNumbers(Distinct(space.etp))
                                  : dense             ? std::string("1")
                                                      : std::string("1,TP")),
               "parallel.vpp=" + JoinNumbers(vpp),
               "zero.stage=" + JoinNumbers(zero),
               "batch.micro_batch_size=" + JoinNumbers(mbs),
               "batch.num_microbatches=global_batch/(mbs*DP)",
               "recompute.policy=" + Join(recompute_names, ","),
               "schedule.kind=" + Join(schedule_names, ",")};

  for (int64_t p : pp) {
    for (int64_t t : tp) {
      for (int64_t c : cp) {
        const int64_t group = p * t * c;
        if (group > space.gpus || space.gpus % group != 0) continue;
        const int64_t dp = space.gpus / group;
        for (int64_t e : ep) {
          for (int64_t et : etps(t)) {
            for (int64_t z : zero) {
              for (int64_t b : mbs) {
                if (out.global_batch % (b * dp) != 0) continue;
                const int64_t micro = out.global_batch / (b * dp);
                for (size_t r = 0; r < out.recompute.size(); ++r) {
                  for (ScheduleKind kind : schedules) {
                    std::vector<int64_t> chunks = {1};
                    if (kind == INTERLEAVED_ONE_F_ONE_B) chunks = vpp;
                    if (kind == DUALPIPE_V) chunks = {2};
                    for (int64_t v : chunks) {
                      FitCandidate fc{p, t, c, dp, e, et, z, b, micro, v, kind,
                                      static_cast<int32_t>(r), false};
                      fc.clear_layout =
                          has_layout && (p != config.parallel.pp || v != config.parallel.vpp);
                      out.candidates.push_back(fc);
                      if (static_cast<int64_t>(out.candidates.size()) > kMaxFitCandidates) {
                        return Status::Invalid(
                            "fit: the space has more than " + std::to_string(kMaxFitCandidates) +
                            " candidates; narrow it with --pp, --tp, --ep, --zero, ...");
                      }
                    }
                  }
                }
              }
            }
          }
        }
      }
    }
  }
  return out;
}

}  // namespace stepsim::sim
