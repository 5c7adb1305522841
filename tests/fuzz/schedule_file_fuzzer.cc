// libFuzzer target: schedule files, each input read in both forms (compact
// and protobuf text) against two scenarios (1F1B on 4 ranks, interleaved
// with 2 chunks per rank). What parses is written back and must read back
// the same (names included), then runs in a child: a deadlock is the
// input's fault (kInvalidInput), anything kFailed a crash.
#include <cstdint>
#include <string_view>

#include "sim/engine.h"
#include "sim/schedule_file.h"
#include "tests/fuzz/fuzz_util.h"

namespace {

const stepsim::graph::Config& Scenario(int which) {
  static const std::optional<stepsim::graph::Config> configs[2] = {
      stepsim::fuzz::LoadScenario(
          "model { name: 'g' attention: MHA mlp_activation: GELU hidden_size: 64 num_layers: 4 "
          "ffn_hidden_size: 128 num_attention_heads: 4 vocab_size: 256 }\n"
          "parallel { pp: 4 layout: 'Et|t|t|tL' }\nbatch { seq_len: 32 num_microbatches: 4 }\n"
          "timing { forward_us: 100 backward_input_us: 100 backward_weight_us: 100 }\n"),
      stepsim::fuzz::LoadScenario(
          "model { name: 'g' attention: MHA mlp_activation: GELU hidden_size: 64 num_layers: 4 "
          "ffn_hidden_size: 128 num_attention_heads: 4 vocab_size: 256 }\n"
          "parallel { pp: 2 layout: 'Et|t|t|tL' }\nbatch { seq_len: 32 num_microbatches: 4 }\n"
          "schedule { kind: INTERLEAVED_ONE_F_ONE_B }\n")};
  if (!configs[which]) std::abort();  // the fuzzer's own scenarios must load
  return *configs[which];
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  stepsim::fuzz::SetInput(data, size);
  namespace f = stepsim::fuzz;
  namespace sim = stepsim::sim;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  for (int which = 0; which < 2; ++which) {
    const stepsim::graph::Config& config = Scenario(which);
    for (bool proto : {false, true}) {
      stepsim::StatusOr<sim::Schedule> s =
          sim::ParseScheduleFile(text, proto ? "fuzz.textproto" : "fuzz.schedule", config);
      f::CheckNotFailed(s.status(), "ParseScheduleFile");
      if (!s.ok()) continue;
      for (bool again : {false, true}) {
        const std::string written = sim::FormatScheduleFile(*s, again);
        stepsim::StatusOr<sim::Schedule> back =
            sim::ParseScheduleFile(written, again ? "w.textproto" : "w.schedule", config);
        if (!back.ok() || back->name != s->name || back->ranks != s->ranks) {
          std::fprintf(stderr, "round trip failed: %s\n%s\n", back.status().message().c_str(),
                       written.c_str());
          std::abort();
        }
      }
      f::InChild([&] {
        sim::SimOptions options;
        options.schedule_from_file = true;
        f::CheckNotFailed(sim::Simulate(config, *s, options).status(), "Simulate");
        return 0;
      });
      return 0;
    }
  }
  return 0;
}
