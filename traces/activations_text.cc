#include "traces/activations_text.h"

#include <cstdio>
#include <map>

#include "traces/format.h"
#include "traces/table.h"

namespace stepsim::traces {

std::string FormatActivations(const ActivationsReport& r) {
  std::string out = r.model() + ": activations of one micro-batch (b=" +
                    std::to_string(r.micro_batch_size()) + ", s=" + std::to_string(r.seq_len()) +
                    ") on one device, recompute " + r.recompute() + ", attention " +
                    r.attention() + ", MoE tokens " + r.moe_tokens() + "\n\n";
  auto tflop = [](double flops) {
    char buffer[32];
    std::snprintf(buffer, sizeof buffer, "%.1f", flops / 1e12);
    return std::string(buffer);
  };
  Table table({"stage", "rank", "<layers", "kept bytes", "kept GiB", "fwd peak GiB",
               "bwd peak GiB", "recompute GiB", "TFLOP F/B/W", "<backward peak during"});
  for (const StageActivationsReport& s : r.stages()) {
    table.AddRow({std::to_string(s.stage()), std::to_string(s.pp_rank()), s.layers(),
                  Thousands(s.per_microbatch_bytes()), Gib(s.per_microbatch_bytes()),
                  Gib(s.forward_peak_bytes()), Gib(s.backward_peak_bytes()),
                  Gib(s.recompute_peak_bytes()),
                  tflop(s.forward_flops()) + "/" + tflop(s.backward_flops()) + "/" +
                      tflop(s.weight_flops()),
                  s.backward_peak_op()});
  }
  out += table.Render();
  out += "(GiB = 2^30 bytes; kept = saved for backward after the forward; peaks are this "
         "micro-batch's live bytes, backward with each W right after its B)\n";

  std::vector<std::pair<int64_t, std::map<std::string, int64_t>>> modules;
  for (const StageActivationsReport& st : r.stages()) {
    modules.emplace_back(st.stage(), std::map<std::string, int64_t>(st.modules().begin(),
                                                                     st.modules().end()));
  }
  out += "\nkept bytes by module:\n" + GroupedByStage(modules);
  return out;
}

}  // namespace stepsim::traces
