#include "graph/params_report.h"

#include "graph/checked.h"
#include "graph/params.h"
#include "graph/static_memory.h"

namespace stepsim::graph {

StatusOr<ParamsReport> BuildParamsReport(const Config& c) {
  StatusOr<ModelParams> params = CountParams(c);
  if (!params.ok()) return params.status();
  StatusOr<std::vector<RankStatic>> ranks = StaticMemoryPerRank(c, *params);
  if (!ranks.ok()) return ranks.status();

  ParamsReport report;
  report.set_scenario(c.name);
  report.set_model(c.model.name);
  report.set_total_params(params->total);
  report.set_mtp_params(params->mtp);
  report.set_world_size(c.parallel.world);
  report.set_edp(c.parallel.edp);
  report.set_zero_stage(c.zero_stage);
  report.set_layout(c.layout.text);
  for (const auto& [kind, n] : params->per_slot_kind) (*report.mutable_layer_params())[kind] = n;
  try {
    for (size_t i = 0; i < params->stages.size(); ++i) {
      const StageParams& s = params->stages[i];
      StageParamsReport* out = report.add_stages();
      out->set_stage(s.stage);
      out->set_pp_rank(s.pp_rank);
      out->set_chunk(s.chunk);
      out->set_layers(s.describe);
      out->set_decoder_layers(c.layout.stages[i].DecoderLayers());
      out->set_params(s.whole);
      DeviceParams* d = out->mutable_device();
      d->set_params(s.device);
      for (const auto& [name, n] : s.modules) (*d->mutable_modules())[name] = n;
      for (const auto& [name, n] : s.matrices) (*d->mutable_matrices())[name] = n;
      const StaticMemory m = ComputeStaticMemory(c, s.device_dense, s.device_expert);
      d->set_dense_params(s.device_dense);
      d->set_expert_params(s.device_expert);
      d->set_weights_bytes(m.weights_bytes);
      d->set_gradients_bytes(m.gradients_bytes);
      d->set_optimizer_bytes(m.optimizer_bytes);
      d->set_static_bytes(m.total_bytes());
    }
  } catch (const Overflow&) {
    return Status::Invalid("model: static memory overflows 64-bit byte counts");
  }
  for (const RankStatic& r : *ranks) {
    RankStaticReport* out = report.add_ranks();
    out->set_pp_rank(r.pp_rank);
    out->set_params(r.params);
    out->set_weights_bytes(r.memory.weights_bytes);
    out->set_gradients_bytes(r.memory.gradients_bytes);
    out->set_optimizer_bytes(r.memory.optimizer_bytes);
    out->set_static_bytes(r.memory.total_bytes());
  }
  return report;
}

}  // namespace stepsim::graph
