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

Full recomputation is HF's gradient checkpointing (measure.py --gradient-checkpointing:
every decoder layer under torch.utils.checkpoint, use_reentrant=True) against stepsim's
`recompute { policy: FULL }`, at two sets of dimensions; the block method (only the
first N layers checkpointed, --checkpoint-layers N) against `method: BLOCK num_layers: N`.
The checkpoints' stashed CPU RNG states (5,056 bytes a layer) are host memory on a GPU:
the harness lists them apart (forward.host_bytes) and stepsim does not count them; the
measured peak includes them (below 0.01% here).

The stepsim binary comes from STEPSIM_BINARY (tests/CMakeLists.txt sets it).
"""

import json
import os
import subprocess
import tempfile
import unittest

import calibrate_env
import measure  # tools/calibrate/measure.py (calibrate_env puts it on the path)

BINARY = os.environ.get("STEPSIM_BINARY", "")

# (config, micro-batch size, sequence, micro-batches, checkpointed layers: None = no
# recomputation, 0 = every layer, N = the first N)
CASES = [
    ("deepseek_v3_a", 2, 128, 2, None),
    ("deepseek_v3_b", 1, 256, 2, None),
    ("llama_a", 2, 128, 2, None),
    ("llama_b", 1, 256, 2, None),
    ("qwen3_moe_a", 2, 128, 2, None),
    ("deepseek_v3_a", 2, 128, 2, 0),
    ("llama_b", 1, 256, 2, 0),
    ("deepseek_v3_b", 1, 256, 2, 2),
]
KEPT_TOLERANCE = 0.02
PEAK_TOLERANCE = 0.05


def scenario(config_path, b, s, m, checkpointed=None):
    # HF does not build DeepSeek's MTP module, so the scenario leaves it out.
    mtp = " mtp_num_layers: 0" if "deepseek" in os.path.basename(config_path) else ""
    recompute = ""
    if checkpointed == 0:
        recompute = "recompute { policy: FULL }\n"
    elif checkpointed:
        recompute = f"recompute {{ policy: FULL method: BLOCK num_layers: {checkpointed} }}\n"
    return (
        f'name: "calibration"\n'
        f'model {{ hf_config: "{config_path}"{mtp} }}\n'
        f"batch {{ micro_batch_size: {b} seq_len: {s} num_microbatches: {m} }}\n"
        "precision { weight_bytes: 2 gradient_bytes: 2 optimizer_bytes: 4 }\n"
        "conventions { profile: PYTORCH_EAGER }\n"
        "hardware { gpu: CPU }\n"  # the harness runs on the host: no CUDA workspaces
        + recompute
    )


def checkpoint_flags(checkpointed):
    if checkpointed is None:
        return []
    flags = ["--gradient-checkpointing"]
    if checkpointed:
        flags += ["--checkpoint-layers", str(checkpointed)]
    return flags


def label(name, checkpointed):
    if checkpointed is None:
        return name
    return name + (" full" if checkpointed == 0 else f" block{checkpointed}")


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
            for index, (name, b, s, m, checkpointed) in enumerate(CASES):
                config = os.path.join(calibrate_env.DATA, name + ".json")
                measured_json = os.path.join(tmp, f"{index}.measured.json")
                # In this process: torch is imported once, not once a case.
                status = measure.main(
                    [config, "--micro-batch-size", str(b), "--seq-len", str(s),
                     "--microbatches", str(m), "--balanced-routing",
                     *checkpoint_flags(checkpointed), "--out", measured_json])
                self.assertEqual(status, 0, label(name, checkpointed))
                with open(measured_json) as f:
                    measured = json.load(f)
                path = os.path.join(tmp, f"{index}.textproto")
                with open(path, "w") as f:
                    f.write(scenario(config, b, s, m, checkpointed))
                activations = stepsim("activations", path, "--json", "-")
                report = stepsim("run", path, "--report", "-")
                kept = int(activations["stages"][0]["per_microbatch_bytes"])
                peak = int(report["ranks"][0]["peak_bytes"])
                rows.append((label(name, checkpointed), b, s,
                             measured["forward"]["kept_bytes"], kept,
                             measured["step"]["peak_bytes"], peak))
        print("case                b    s  kept measured  predicted  error   peak measured"
              "  predicted  error")
        for name, b, s, mk, pk, mp, pp in rows:
            print(f"{name:18} {b:2} {s:4} {mk:14,} {pk:10,} {(pk - mk) / mk:+7.3%} "
                  f"{mp:14,} {pp:10,} {(pp - mp) / mp:+7.3%}")
        for name, b, s, mk, pk, mp, pp in rows:
            self.assertLessEqual(abs(pk - mk) / mk, KEPT_TOLERANCE, f"{name}: kept bytes")
            self.assertLessEqual(abs(pp - mp) / mp, PEAK_TOLERANCE, f"{name}: step peak")


if __name__ == "__main__":
    unittest.main(verbosity=2)
