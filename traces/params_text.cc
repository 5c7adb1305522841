#include "traces/params_text.h"

#include <map>

#include "traces/format.h"
#include "traces/table.h"

namespace stepsim::traces {
namespace {

const char* ZeroName(int64_t stage) {
  switch (stage) {
    case 1: return "ZeRO-1 (os)";
    case 2: return "ZeRO-2 (os+g)";
    case 3: return "ZeRO-3 (os+g+p)";
    default: return "no ZeRO";
  }
}

}  // namespace

std::string FormatParams(const graph::Config& c, const ParamsReport& r) {
  const graph::ParallelSpec& p = c.parallel;
  std::string out;
  out += c.model.name + ": " + Thousands(r.total_params()) + " parameters";
  if (r.mtp_params() > 0) out += " + MTP " + Thousands(r.mtp_params());
  out += "\n";
  out += "PP" + std::to_string(p.pp) + (p.vpp > 1 ? " VPP" + std::to_string(p.vpp) : "") +
         " TP" + std::to_string(p.tp) + (p.sequence_parallel ? "+SP" : "") + " EP" +
         std::to_string(p.ep) + " ETP" + std::to_string(p.etp) + " DP" + std::to_string(p.dp) +
         (p.cp > 1 ? " CP" + std::to_string(p.cp) : "") + " (EDP " + std::to_string(p.edp) +
         ", " + Thousands(p.world) + " GPUs), " + ZeroName(c.zero_stage) + ", bytes/param " +
         std::to_string(c.precision.weight) + "/" + std::to_string(c.precision.gradient) + "/" +
         std::to_string(c.precision.optimizer) + "\n";
  out += "layout: " + (r.layout().empty() ? std::string("default split") : r.layout()) + "\n";
  std::string kinds;
  for (const char* kind : {"embedding", "dense_layer", "moe_layer", "mtp_module", "loss"}) {
    auto it = r.layer_params().find(kind);
    if (it != r.layer_params().end()) {
      kinds += std::string(kinds.empty() ? "" : ", ") + kind + " " + Thousands(it->second);
    }
  }
  out += "one of each (parameters): " + kinds + "\n\n";

  Table stages({"stage", "rank", "<layers", "params (stage)", "GiB", "params (device)",
                "weights GiB", "grads GiB", "optim GiB", "static GiB"});
  for (const StageParamsReport& s : r.stages()) {
    const DeviceParams& d = s.device();
    stages.AddRow({std::to_string(s.stage()), std::to_string(s.pp_rank()), s.layers(),
                   Thousands(s.params()), Gib(s.params() * c.precision.weight),
                   Thousands(d.params()), Gib(d.weights_bytes()), Gib(d.gradients_bytes()),
                   Gib(d.optimizer_bytes()), Gib(d.static_bytes())});
  }
  out += stages.Render();
  out += "(GiB = 2^30 bytes; stage GiB at " + std::to_string(c.precision.weight) +
         " bytes per parameter; device columns are one GPU of the stage)\n";

  std::vector<std::pair<int64_t, std::map<std::string, int64_t>>> modules;
  for (const StageParamsReport& st : r.stages()) {
    modules.emplace_back(st.stage(), std::map<std::string, int64_t>(
                                          st.device().modules().begin(),
                                          st.device().modules().end()));
  }
  out += "\nper device, by module (parameters):\n" + GroupedByStage(modules);

  bool several = false;  // a rank holding several stages (chunks, DualPipe)
  for (const auto& held : c.layout.rank_stages) several |= held.size() > 1;
  if (several) {
    Table ranks({"rank", "params (device)", "weights GiB", "grads GiB", "optim GiB",
                 "static GiB"});
    for (const RankStaticReport& rk : r.ranks()) {
      ranks.AddRow({std::to_string(rk.pp_rank()), Thousands(rk.params()),
                    Gib(rk.weights_bytes()), Gib(rk.gradients_bytes()),
                    Gib(rk.optimizer_bytes()), Gib(rk.static_bytes())});
    }
    out += "\nper pipeline rank (every stage it holds):\n" + ranks.Render();
  }
  return out;
}

}  // namespace stepsim::traces
