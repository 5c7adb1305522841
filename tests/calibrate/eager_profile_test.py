"""stepsim's PYTORCH_EAGER profile held against what real PyTorch keeps and allocates.

For a DeepSeek-V3-shaped MLA + MoE model, a Llama-style GQA model and a Qwen3-MoE model,
each at two sets of dimensions (tests/data/calibrate/*_{a,b}.json), the harness
(tools/calibrate/measure.py) measures one micro-batch's kept bytes and the step's peak
allocated bytes on CPU; stepsim predicts both from the same config.json through
`model { hf_config }` under `conventions { profile: PYTORCH_EAGER }`. Goals (issue 9):
kept bytes within 2%, step peak within 5%. Routing is balanced in both (the harness's
--balanced-routing; stepsim assumes balanced routing). Pure BF16 training: BF16
weights and gradients, AdamW's two moments in BF16 (4 bytes a parameter). The harness
runs on the CPU, so the scenario's hardware is CPU (no cuBLAS workspaces).

The stepsim binary comes from STEPSIM_BINARY (tests/CMakeLists.txt sets it).
"""

import json
import os
import subprocess
import sys
import tempfile
import unittest

import calibrate_env

BINARY = os.environ.get("STEPSIM_BINARY", "")
MEASURE = os.path.join(calibrate_env.HARNESS, "measure.py")

# (config, micro-batch size, sequence, micro-batches)
CASES = [
    ("deepseek_v3_a", 2, 128, 2),
    ("deepseek_v3_b", 1, 256, 2),
    ("llama_a", 2, 128, 2),
    ("llama_b", 1, 256, 2),
    ("qwen3_moe_a", 2, 128, 2),
]
KEPT_TOLERANCE = 0.02
PEAK_TOLERANCE = 0.05


def scenario(config_path, b, s, m):
    # HF does not build DeepSeek's MTP module, so the scenario leaves it out.
    mtp = " mtp_num_layers: 0" if "deepseek" in os.path.basename(config_path) else ""
    return (
        f'name: "calibration"\n'
        f'model {{ hf_config: "{config_path}"{mtp} }}\n'
        f"batch {{ micro_batch_size: {b} seq_len: {s} num_microbatches: {m} }}\n"
        "precision { weight_bytes: 2 gradient_bytes: 2 optimizer_bytes: 4 }\n"
        "conventions { profile: PYTORCH_EAGER }\n"
        "hardware { gpu: CPU }\n"  # the harness runs on the host: no CUDA workspaces
    )


def stepsim(*args):
    out = subprocess.run([BINARY, *args], capture_output=True, text=True)
    if out.returncode != 0:
        raise AssertionError(f"stepsim {' '.join(args)} failed: {out.stderr}")
    return json.loads(out.stdout)


class EagerProfileTest(unittest.TestCase):
    def test_kept_bytes_and_step_peak_match_pytorch(self):
        self.assertTrue(BINARY and os.path.exists(BINARY), "STEPSIM_BINARY is not set")
        rows = []
        with tempfile.TemporaryDirectory() as tmp:
            for name, b, s, m in CASES:
                config = os.path.join(calibrate_env.DATA, name + ".json")
                measured_json = os.path.join(tmp, name + ".measured.json")
                run = subprocess.run(
                    [sys.executable, "-B", MEASURE, config, "--micro-batch-size", str(b),
                     "--seq-len", str(s), "--microbatches", str(m), "--balanced-routing",
                     "--out", measured_json],
                    capture_output=True, text=True)
                self.assertEqual(run.returncode, 0, run.stderr)
                with open(measured_json) as f:
                    measured = json.load(f)
                path = os.path.join(tmp, name + ".textproto")
                with open(path, "w") as f:
                    f.write(scenario(config, b, s, m))
                activations = stepsim("activations", path, "--json", "-")
                report = stepsim("run", path, "--report", "-")
                kept = int(activations["stages"][0]["per_microbatch_bytes"])
                peak = int(report["ranks"][0]["peak_bytes"])
                rows.append((name, b, s, measured["forward"]["kept_bytes"], kept,
                             measured["step"]["peak_bytes"], peak))
        print("case              b    s  kept measured  predicted  error   peak measured"
              "  predicted  error")
        for name, b, s, mk, pk, mp, pp in rows:
            print(f"{name:15} {b:3} {s:4} {mk:14,} {pk:10,} {(pk - mk) / mk:+7.3%} "
                  f"{mp:14,} {pp:10,} {(pp - mp) / mp:+7.3%}")
        for name, b, s, mk, pk, mp, pp in rows:
            self.assertLessEqual(abs(pk - mk) / mk, KEPT_TOLERANCE, f"{name}: kept bytes")
            self.assertLessEqual(abs(pp - mp) / mp, PEAK_TOLERANCE, f"{name}: step peak")


if __name__ == "__main__":
    unittest.main(verbosity=2)
