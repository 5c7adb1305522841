"""measure.py, the command: its JSON, its exit statuses, and the same bytes twice."""

import contextlib
import io
import json
import os
import subprocess
import sys
import tempfile
import unittest

import calibrate_env

import measure

TINY = {
    "architectures": ["Qwen3MoeForCausalLM"], "torch_dtype": "bfloat16", "vocab_size": 1024,
    "hidden_size": 32, "intermediate_size": 64, "moe_intermediate_size": 16,
    "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
    "head_dim": 8, "num_experts": 8, "num_experts_per_tok": 2, "norm_topk_prob": True,
    "mlp_only_layers": [0],
}
ARGS = ["--micro-batch-size", "2", "--seq-len", "16", "--microbatches", "2"]


def floats(obj):
    if isinstance(obj, float):
        return [obj]
    if isinstance(obj, dict):
        return [f for v in obj.values() for f in floats(v)]
    if isinstance(obj, list):
        return [f for v in obj for f in floats(v)]
    return []


class MeasureTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.config = self.path("tiny.json")
        with open(self.config, "w") as f:
            json.dump(TINY, f)

    def tearDown(self):
        self.dir.cleanup()

    def path(self, name):
        return os.path.join(self.dir.name, name)

    def main(self, argv):
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            try:
                status = measure.main(argv)
            except SystemExit as e:  # argparse
                status = e.code
        return status, err.getvalue()

    def test_bad_config_is_status_2_with_its_place(self):
        bad = self.path("bad.json")
        with open(bad, "w") as f:
            f.write('{\n  "vocab_size": 12,\n  oops\n}\n')
        out = self.path("out.json")
        with open(out, "w") as f:
            f.write("previous\n")
        status, err = self.main([bad, *ARGS, "--out", out])
        self.assertEqual(status, 2)
        self.assertIn(f"{bad}:3:3: Expecting property name enclosed in double quotes", err)
        with open(out) as f:
            self.assertEqual(f.read(), "previous\n")  # not clobbered

        with open(bad, "w") as f:
            json.dump(dict(TINY, rope_scaling={"type": "linear", "factor": 2.0}), f)
        status, err = self.main([bad, *ARGS, "--out", out])
        self.assertEqual(status, 2)
        self.assertIn("rope_scaling: ", err)

    def test_bad_options_are_status_2(self):
        out = self.path("out.json")
        status, err = self.main([self.config, "--micro-batch-size", "0", "--seq-len", "8",
                                 "--microbatches", "1", "--out", out])
        self.assertEqual(status, 2)
        self.assertIn("--micro-batch-size: 0 is not in 1..", err)
        status, err = self.main([self.config, *ARGS, "--out", self.path("no/such/x.json")])
        self.assertEqual(status, 2)
        self.assertIn("--out: no directory", err)
        status, err = self.main([self.config, "--micro-batch-size", "300", "--seq-len", "300",
                                 "--microbatches", "1", "--out", out])
        self.assertEqual(status, 2)
        self.assertIn("exceeds 65536", err)
        status, err = self.main([self.config, *ARGS, "--checkpoint-layers", "1", "--out", out])
        self.assertEqual(status, 2)
        self.assertIn("--checkpoint-layers: needs --gradient-checkpointing", err)
        self.assertFalse(os.path.exists(out))

    def test_json_is_complete_and_the_same_twice(self):
        outs = [self.path("a.json"), self.path("b.json")]
        for out in outs:  # separate processes, as a user runs it
            run = subprocess.run([sys.executable, "-B", os.path.join(calibrate_env.HARNESS,
                                                                    "measure.py"),
                                  self.config, *ARGS, "--out", out],
                                 capture_output=True, text=True, check=False)
            self.assertEqual(run.returncode, 0, run.stderr)
        with open(outs[0], "rb") as a, open(outs[1], "rb") as b:
            text = a.read()
            self.assertEqual(text, b.read())
        doc = json.loads(text)
        self.assertEqual(doc["schema"], "stepsim.calibrate.v1")
        self.assertEqual(list(doc), sorted(doc))
        self.assertEqual(floats(doc), [])
        self.assertEqual(doc["run"]["microbatches"], 2)
        self.assertTrue(doc["step"]["checks"]["ok"])
        self.assertEqual(set(doc["forward"]["tokens_per_expert"]), {"model.layers.1.mlp"})
        self.assertEqual(sum(doc["forward"]["tokens_per_expert"]["model.layers.1.mlp"]),
                         2 * 16 * 2)
        self.assertEqual(doc["forward"]["module_bytes"][""], doc["forward"]["kept_bytes"])
        self.assertGreater(doc["step"]["peak_bytes"], doc["step"]["before_bytes"])


if __name__ == "__main__":
    unittest.main()
