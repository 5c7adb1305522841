"""step_memory + step_summary: the profiled step against direct counts and hand arithmetic."""

import json
import unittest

import calibrate_env  # noqa: F401  (sys.path, torch or skip)
import torch

import hf_config
import model as models
import saved_tensors
import step_memory
import step_summary

TINY_LLAMA = {
    "architectures": ["LlamaForCausalLM"], "torch_dtype": "bfloat16", "vocab_size": 4096,
    "hidden_size": 32, "intermediate_size": 96, "num_hidden_layers": 2,
    "num_attention_heads": 4, "num_key_value_heads": 2,
}
B, S, M = 2, 32, 2


def run(config_obj, balanced=False):
    c = hf_config.parse(json.dumps(config_obj), "tiny.json")
    model = models.build(c, seed=3)
    models.set_balanced_routing(model, balanced)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    g = torch.Generator().manual_seed(3)
    step_memory.train_step(model, optimizer,
                           [torch.randint(0, c.vocab_size, (B, S), generator=g) for _ in range(M)])
    batches = [torch.randint(0, c.vocab_size, (B, S), generator=g) for _ in range(M)]
    kept = saved_tensors.measure(
        model, lambda: step_memory.micro_batch_loss(model, batches[0], M), inputs=batches[:1])
    step = step_memory.profile(model, optimizer, batches)
    return c, model, kept, step, step_summary.summarize(step, kept.total_bytes,
                                                          kept.input_bytes)


class StepMemoryTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.c, cls.model, cls.kept, cls.step, cls.summary = run(TINY_LLAMA)

    def test_profiler_equals_direct_count_at_every_quiet_point(self):
        checks = self.summary["checks"]
        self.assertEqual(checks["problems"], [])
        points = [q["point"] for q in checks["quiet_points"]]
        self.assertEqual(points, ["start", "mb0.after_backward", "mb1.after_backward",
                                  "after_optimizer", "end"])
        for q in checks["quiet_points"]:
            self.assertEqual(q["profiler_bytes"], q["direct_bytes"], q["point"])
        self.assertTrue(checks["ok"])

    def test_before_and_after_by_hand(self):
        params = list(self.model.parameters())
        p = sum(t.numel() for t in params)
        # BF16 weights; AdamW's exp_avg and exp_avg_sq in the parameter dtype and a
        # 0-dim FP32 step per parameter tensor; the step's input ids (int64); RoPE's
        # inv_freq (FP32, head_dim / 2).
        weights, optimizer = 2 * p, 2 * 2 * p + 4 * len(params)
        inputs, buffers = M * B * S * 8, 4 * (self.c.head_dim // 2)
        self.assertEqual(self.summary["before"],
                         {"parameters": weights, "buffers": buffers, "gradients": 0,
                          "optimizer_state": optimizer, "inputs": inputs, "other": 0})
        self.assertEqual(self.summary["before_bytes"], weights + optimizer + inputs + buffers)
        self.assertEqual(self.summary["after_bytes"], self.summary["before_bytes"])

    def test_forward_leaves_what_autograd_keeps(self):
        # What a forward leaves allocated is what the hooks saw kept, minus the input
        # ids (allocated before the step), plus the FP32 loss the loop holds.
        for r in self.summary["forward_retained"]:
            self.assertEqual(r["bytes"], self.kept.total_bytes - B * S * 8 + 4)

    def test_peak_composition_adds_up(self):
        peak = self.summary["peak"]
        self.assertEqual(sum(peak["composition"].values()), self.summary["peak_bytes"])
        self.assertEqual(peak["composition"]["gradients"],
                         sum(2 * t.numel() for t in self.model.parameters()))
        # Vocabulary-heavy (v = 128 h, b*s = 2 h): the peak is the loss backward of a
        # micro-batch after the first (gradients all exist), holding the FP32 gradient of
        # the log-softmax output and its input's gradient, 4 * b*s*v each, and the
        # backward's FP32 seed. (With b*s small next to h, CPU oneDNN's scratch buffers
        # inside the lm_head's backward mm, about 4 v*h, can peak higher instead.)
        self.assertEqual((peak["phase"], peak["autograd_node"]),
                         ("mb1.backward", "LogSoftmaxBackward0"))
        self.assertEqual(peak["composition"]["current_phase"],
                         2 * 4 * B * S * self.c.vocab_size + 4)

    def test_adamw_loop_temporaries_by_hand(self):
        # torch 1.13's per-parameter AdamW: denom = (exp_avg_sq.sqrt() / c).add_(eps)
        # holds sqrt and the quotient of parameter i (2 B_i) while the previous
        # parameter's denom is still bound (B_{i-1}); the scalar c becomes a float64
        # tensor and its BF16 copy (8 + 2 bytes).
        sizes = [2 * t.numel() for t in self.model.parameters()]
        expected = max(2 * b + (sizes[i - 1] if i else 0) for i, b in enumerate(sizes)) + 10
        phase = next(p for p in self.summary["phases"] if p["phase"] == "optimizer.step")
        self.assertEqual(phase["peak_bytes"] - phase["start_bytes"], expected)
        self.assertEqual(phase["peak"]["op"], "aten::div")


class MoeStepTest(unittest.TestCase):
    def test_balanced_routing_gives_every_expert_its_share(self):
        tiny_v3 = {
            "architectures": ["DeepseekV3ForCausalLM"], "torch_dtype": "bfloat16",
            "vocab_size": 256, "hidden_size": 32, "intermediate_size": 64,
            "moe_intermediate_size": 16, "num_hidden_layers": 2, "first_k_dense_replace": 1,
            "num_attention_heads": 4, "q_lora_rank": 16, "kv_lora_rank": 8,
            "qk_nope_head_dim": 4, "qk_rope_head_dim": 4, "v_head_dim": 4,
            "n_routed_experts": 8, "n_shared_experts": 1, "num_experts_per_tok": 2,
            "n_group": 4, "topk_group": 2,
        }
        c, model, kept, step, summary = run(tiny_v3, balanced=True)
        self.assertTrue(summary["checks"]["ok"], summary["checks"])
        # b*s*k / N = 2*32*2 / 8 token copies per expert, every micro-batch.
        for mb in summary["tokens_per_expert"]:
            self.assertEqual(mb, {"model.layers.1.mlp": [16] * 8})
        # Every expert had tokens, so every parameter has a gradient at the peak.
        self.assertEqual(summary["peak"]["composition"]["gradients"],
                         sum(2 * t.numel() for t in model.parameters()))


if __name__ == "__main__":
    unittest.main()
