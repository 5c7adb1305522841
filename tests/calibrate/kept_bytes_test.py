"""What one micro-batch's forward keeps for backward, per op, as formulas.

This is the inventory stepsim's PYTORCH_EAGER profile models, written out as hand
arithmetic from the ops that run (tools/calibrate/model.py follows transformers' eager
code) and checked to the byte against saved_tensors.measure on every test-data model.
T = b*s tokens; h hidden; H heads, KV kv heads, d head_dim; v vocabulary; BF16 = 2 bytes,
FP32 = 4, int64 = 8. Attribution: a storage belongs to the first module that saves it.
"""

import dataclasses
import os
import unittest

import calibrate_env
import torch

import hf_config
import model as models
import saved_tensors
import step_memory

M = 2  # micro-batches: the loss is divided by M, which keeps an 8-byte scalar
MEAN_KEEPS_INPUT = calibrate_env.mean_keeps_its_input()


def rmsnorm(rows, w):
    """HF RMSNorm of `rows` rows of width w on a BF16 input: the FP32 upcast (kept by
    pow and by the multiply with rsqrt), x**2 (kept by mean in torch 1.13 only), rsqrt
    (FP32, one per row) and the BF16 normalised rows (kept for the weight's gradient).
    Its output is kept by whatever consumes it."""
    return rows * (4 * w + (4 * w if MEAN_KEEPS_INPUT else 0) + 4 + 2 * w)


def attention_core(b, s, heads, qk_dim, v_dim, v_storage_dim=None):
    """Eager attention after the projections: Q and K (after RoPE; K repeated to every
    head by repeat_kv, or the RoPE output when kv heads = heads) kept by QK^T's bmm,
    the scale as a float64 scalar, the FP32 softmax output, its BF16 copy and V kept by
    PV's bmm, the output kept by o_proj. V is the contiguous copy the bmm's reshape makes
    (2 T heads v_dim), except where the reshape is a view: MLA at b = 1, where the bmm
    keeps all of kv_b_proj's output (v_storage_dim = nope + v head dims)."""
    t = b * s
    v_kept = v_storage_dim if (v_storage_dim is not None and b == 1) else v_dim
    return (2 * t * heads * qk_dim * 2 + 8 + 4 * b * heads * s * s + 2 * b * heads * s * s
            + 2 * t * heads * v_kept + 2 * t * heads * v_dim)


def gqa_attention(c, b, s):
    t = b * s
    out = 2 * c.hidden_size * t  # q/k/v_proj's shared input
    if c.qk_norm:  # Qwen3: RMSNorm over head_dim on q and k, before the transpose
        out += rmsnorm(t * c.num_attention_heads, c.head_dim)
        out += rmsnorm(t * c.num_key_value_heads, c.head_dim)
    return out + attention_core(b, s, c.num_attention_heads, c.head_dim, c.head_dim)


def mla_attention(c, b, s):
    t = b * s
    out = 2 * c.hidden_size * t  # q_(a_)proj and kv_a_proj_with_mqa's shared input
    if c.q_lora_rank is not None:
        out += rmsnorm(t, c.q_lora_rank) + 2 * c.q_lora_rank * t  # q_a_layernorm, q_b_proj
    out += rmsnorm(t, c.kv_lora_rank) + 2 * c.kv_lora_rank * t  # kv_a_layernorm, kv_b_proj
    return out + attention_core(b, s, c.num_attention_heads,
                                c.qk_nope_head_dim + c.qk_rope_head_dim, c.v_head_dim,
                                c.qk_nope_head_dim + c.v_head_dim)


def swiglu(t, h, f):
    """Input (shared by gate and up), gate output (SiLU's input), SiLU output, up output
    (the multiply's operands) and the product (down_proj's input)."""
    return 2 * h * t + 8 * f * t


def deepseek_moe(c, t):
    h, n, k, f = c.hidden_size, c.num_experts, c.num_experts_per_tok, c.moe_intermediate_size
    # Router: FP32 copies of its input and of its weight (kept by the FP32 linear), the
    # sigmoid scores (FP32), gather's int64 index; norm_topk_prob's in-place divide keeps
    # the weights and the denominator (FP32); the scaling factor a float64 scalar.
    out = 4 * h * t + 4 * n * h + 4 * n * t + 8 * k * t + 8
    if c.norm_topk_prob:
        out += 4 * k * t + 4 * t
    # Per routed token copy (T*k of them, whichever expert): torch.where's indices (one
    # int64 [n, 2] storage), the expert's input and SwiGLU, its BF16 output and FP32
    # weight (kept by the weighting multiply), the FP32 weighted output (kept by
    # index_add_).
    out += t * k * (16 + 2 * h + 8 * f + 2 * h + 4 + 4 * h)
    if c.n_shared_experts:
        out += swiglu(t, h, f * c.n_shared_experts)
    return out


def qwen3_moe(c, t):
    h, n, k, f = c.hidden_size, c.num_experts, c.num_experts_per_tok, c.moe_intermediate_size
    # Router: the BF16 linear's input, the FP32 softmax, top-k's int64 indices (gather's
    # index under balanced routing); norm_topk_prob keeps the weights and the sums (FP32).
    out = 2 * h * t + 4 * n * t + 8 * k * t
    if c.norm_topk_prob:
        out += 4 * k * t + 4 * t
    # Per routed token copy: where's indices, input and SwiGLU, the BF16 output and
    # weight (the multiply), the BF16 weighted output (index_add_).
    return out + t * k * (16 + 2 * h + 8 * f + 2 * h + 2 + 2 * h)


def layer_kept(c, i, b, s):
    t = b * s
    mla = c.architecture == "DeepseekV3ForCausalLM"
    out = 2 * rmsnorm(t, c.hidden_size)  # input_layernorm, post_attention_layernorm
    out += mla_attention(c, b, s) if mla else gqa_attention(c, b, s)
    if not c.is_moe_layer(i):
        out += swiglu(t, c.hidden_size, c.intermediate_size)
    elif c.moe == "deepseek_v3":
        out += deepseek_moe(c, t)
    else:
        out += qwen3_moe(c, t)
    return out


def rope_tables(c, s):
    """RoPE's cos and sin, [1, s, rotary dim] BF16, shared by every layer."""
    dim = c.qk_rope_head_dim if c.architecture == "DeepseekV3ForCausalLM" else c.head_dim
    return 2 * (2 * s * dim)


def model_kept(c, b, s):
    t = b * s
    out = 8 * t  # the embedding keeps the input ids
    out += sum(layer_kept(c, i, b, s) for i in range(c.num_hidden_layers))
    out += rope_tables(c, s)
    out += rmsnorm(t, c.hidden_size) + 2 * c.hidden_size * t  # final norm, lm_head's input
    # Loss: log_softmax's FP32 output (the .float() copy before it is not kept), the
    # shifted labels (int64: labels padded to s + 1, sliced from 1 and made contiguous,
    # which at b = 1 is a view of the padded [1, s + 1]), nll_loss's FP32 total weight,
    # and loss / M's int64 scalar.
    labels = 8 * (s + 1) if b == 1 else 8 * t
    return out + 4 * c.vocab_size * t + labels + 4 + 8


def measure(c, b, s, balanced=False):
    model = models.build(c, seed=5)
    models.set_balanced_routing(model, balanced)
    ids = torch.randint(0, c.vocab_size, (b, s), generator=torch.Generator().manual_seed(5))
    return saved_tensors.measure(model, lambda: step_memory.micro_batch_loss(model, ids, M),
                                 inputs=[ids])


class KeptBytesTest(unittest.TestCase):
    def check(self, name, b, s, balanced=False, **changes):
        c = hf_config.load(os.path.join(calibrate_env.DATA, name))
        if changes:
            c = dataclasses.replace(c, **changes)
        kept = measure(c, b, s, balanced)
        per_module = kept.module_total_bytes()
        first_attention = ("model.layers.0.self_attn", rope_tables(c, s))
        for i in range(c.num_hidden_layers):
            expected = layer_kept(c, i, b, s)
            if i == 0:  # cos and sin count where first saved
                expected += first_attention[1]
            self.assertEqual(per_module[f"model.layers.{i}"], expected, f"{name} layer {i}")
        self.assertEqual(kept.total_bytes, model_kept(c, b, s), name)
        self.assertEqual(kept.input_bytes, 8 * b * s)

    def test_llama(self):
        self.check("llama_a.json", 2, 16)  # GQA 32:8, head_dim = h / heads
        self.check("llama_b.json", 1, 24)  # tied embeddings

    def test_qwen3(self):
        self.check("qwen3_a.json", 2, 16)  # heads * head_dim = 2 h, q/k norms
        self.check("qwen3_b.json", 1, 24)

    def test_qwen3_moe(self):
        self.check("qwen3_moe_a.json", 2, 16)
        self.check("qwen3_moe_b.json", 1, 24)  # layer 0 dense (mlp_only_layers)
        self.check("qwen3_moe_b.json", 1, 24, balanced=True)

    def test_variants_that_keep_the_same_formulas(self):
        # Biases add nothing kept (addmm keeps its matrices); MHA keeps K and V as GQA
        # does after repeat_kv; without norm_topk_prob the divide's terms go.
        self.check("llama_a.json", 2, 16, attention_bias=True, mlp_bias=True)
        self.check("llama_a.json", 2, 16, num_key_value_heads=32)
        self.check("llama_b.json", 1, 24, num_key_value_heads=32)  # MHA at b = 1
        self.check("qwen3_moe_a.json", 2, 16, norm_topk_prob=False)
        self.check("deepseek_v3_a.json", 2, 16, rope_interleave=False, norm_topk_prob=False,
                   n_shared_experts=0)

    def test_deepseek_v3(self):
        self.check("deepseek_v3_a.json", 2, 16)  # q_lora_rank, 8 groups of 8 experts
        self.check("deepseek_v3_b.json", 1, 24)  # q_lora_rank null, 2 shared experts
        self.check("deepseek_v3_b.json", 1, 24, balanced=True)


if __name__ == "__main__":
    unittest.main()
