#include "traces/activations_text.h"

#include <map>

#include "traces/format.h"
#include "traces/table.h"

namespace stepsim::traces {

std::string FormatActivations(const ActivationsReport& r) {
  std::string out = r.model() + ": activations of one micro-batch (b=" +
                    std::to_string(r.micro_batch_size()) + ", s=" + std::to_string(r.seq_len()) +
                    ") on one device, recompute " + r.recompute() + ", attention " +
                    r.attention() + ", MoE tokens " + r.moe_tokens() + "\n\n";
  Table table({"stage", "rank", "<layers", "kept bytes", "kept GiB", "fwd peak GiB",
               "bwd peak GiB", "recompute GiB", "<backward peak during"});
  for (const StageActivationsReport& s : r.stages()) {
    table.AddRow({std::to_string(s.stage()), std::to_string(s.pp_rank()), s.layers(),
                  Thousands(s.per_microbatch_bytes()), Gib(s.per_microbatch_bytes()),
                  Gib(s.forward_peak_bytes()), Gib(s.backward_peak_bytes()),
                  Gib(s.recompute_peak_bytes()), s.backward_peak_op()});
  }
  out += table.Render();
  out += "(GiB = 2^30 bytes; kept = saved for backward after the forward; peaks are this "
         "micro-batch's live bytes, backward with each W right after its B)\n";

  // Kept bytes by module, once per distinct composition.
  std::map<std::map<std::string, int64_t>, std::string> seen;
  std::vector<std::pair<std::string, std::map<std::string, int64_t>>> rows;
  for (const StageActivationsReport& s : r.stages()) {
    std::map<std::string, int64_t> modules(s.modules().begin(), s.modules().end());
    auto it = seen.find(modules);
    if (it != seen.end()) {
      it->second += "," + std::to_string(s.stage());
      continue;
    }
    seen[modules] = std::to_string(s.stage());
    rows.emplace_back(std::to_string(s.stage()), modules);
  }
  out += "\nkept bytes by module:\n";
  for (const auto& [first, modules] : rows) {
    out += "  stage " + seen[modules] + ":";
    for (const auto& [name, n] : modules) out += "  " + name + " " + Thousands(n);
    out += "\n";
  }
  return out;
}

}  // namespace stepsim::traces
