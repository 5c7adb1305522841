"""Small causal LMs written the way Hugging Face transformers writes them in eager mode.

The calibration harness measures what autograd keeps and what a training step allocates;
for that to be what transformers keeps, every module here runs the same tensor ops, in the
same order and dtypes, as transformers' eager code: RMSNorm's FP32 upcast, RoPE from cos
and sin computed in FP32 then cast, repeat_kv, eager attention with an FP32 softmax then
`.to(dtype)`, SwiGLU, the MoE dispatch loop over experts with index_add_, and the loss
`logits.float()` + cross_entropy on labels shifted by padding. The code is our own; the op
sequence is transformers 4.5x's (mid-2025, the modeling files generated from the modular
sources, with the per-expert MoE loop that v5 later fused; these ops are the same from
4.48 to 4.57), read from huggingface/transformers src/transformers/ at the commits noted:
  models/llama/modeling_llama.py (5dd4a635)  LlamaRMSNorm, LlamaRotaryEmbedding,
      LlamaAttention, eager_attention_forward, repeat_kv, LlamaMLP
  models/qwen3/modeling_qwen3.py (000c33fd)  q_norm/k_norm over head_dim, before the
      transpose
  models/qwen3_moe/modeling_qwen3_moe.py (00d4b3d2)  Qwen3MoeSparseMoeBlock (softmax
      router, top-k, norm_topk_prob, loop over hit experts), decoder_sparse_step,
      mlp_only_layers
  models/deepseek_v3/modeling_deepseek_v3.py (00b676f8)  DeepseekV3Attention (MLA,
      q_lora_rank null = q_proj, rope_interleave), DeepseekV3TopkRouter, DeepseekV3MoE
      (FP32 combine), first_k_dense_replace; moe_layer_freq as DeepSeek's own modeling
      code applies it (HF's port ignores it; the same when it is 1)
  masking_utils.py eager_mask (00c4411c)  a [b, 1, s, s] mask in the model dtype
  loss/loss_utils.py ForCausalLMLoss (0114da07)  FP32 logits, labels padded with -100
      and shifted
Module names are HF's state-dict paths (model.layers.3.mlp.experts.5.down_proj).

Not modelled (refused by hf_config): RoPE scaling, sliding windows, dropout > 0, the router
auxiliary loss, attention backends other than eager, KV caches (training only).
Gradient checkpointing (`set_gradient_checkpointing`, off by default): the decoder layers
are GradientCheckpointingLayers as in transformers (modeling_layers.py, 00029cfa): the
layer runs under torch.utils.checkpoint(partial(layer.__call__, **kwargs), hidden_states,
use_reentrant=True), which saves the hidden states and whose partial holds the mask, the
position ids, the cache position and RoPE's cos and sin until the graph is freed.
Instrumentation: each MoE block records, per forward, how many tokens each expert got
(`tokens_per_expert`); it reads sizes the loop already has and allocates nothing.

Balanced routing (`set_balanced_routing(model, True)`, off by default): the router still
computes its scores and its top-k as above, then token t's j-th choice is replaced by
expert (t * k + j) mod N, so that every expert gets T*k/N token copies (floor or ceil).
DeepSeek's router takes the weights of the forced experts with the same gather; Qwen3-MoE
takes them with a gather from the softmax output (GatherBackward0 keeps the same int64
[T, k] index that TopkBackward0 keeps; the softmax output it reads is already kept).
"""

import collections
import functools
from typing import List, Optional

import torch
import torch.nn.functional as F
import torch.utils.checkpoint
from torch import nn

from hf_config import ModelConfig

DTYPES = {"bfloat16": torch.bfloat16, "float32": torch.float32}

CausalLMOutput = collections.namedtuple("CausalLMOutput", ["loss", "logits"])


class RMSNorm(nn.Module):
    """LlamaRMSNorm (T5LayerNorm): normalise in FP32, cast back, then scale."""

    def __init__(self, size: int, eps: float):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(size))
        self.variance_epsilon = eps

    def forward(self, hidden_states):
        input_dtype = hidden_states.dtype
        hidden_states = hidden_states.to(torch.float32)
        variance = hidden_states.pow(2).mean(-1, keepdim=True)
        hidden_states = hidden_states * torch.rsqrt(variance + self.variance_epsilon)
        return self.weight * hidden_states.to(input_dtype)


class RotaryEmbedding(nn.Module):
    """Default RoPE: cos and sin of [1, s, dim] computed in FP32, returned in x's dtype."""

    def __init__(self, dim: int, theta: float):
        super().__init__()
        exponent = torch.arange(0, dim, 2, dtype=torch.int64).float() / dim
        self.register_buffer("inv_freq", 1.0 / (theta ** exponent), persistent=False)
        self.attention_scaling = 1.0  # default rope type

    @torch.no_grad()
    def forward(self, x, position_ids):
        inv_freq = self.inv_freq[None, :, None].float().expand(position_ids.shape[0], -1, 1)
        positions = position_ids[:, None, :].float()
        freqs = (inv_freq.float() @ positions.float()).transpose(1, 2)
        emb = torch.cat((freqs, freqs), dim=-1)
        cos = emb.cos() * self.attention_scaling
        sin = emb.sin() * self.attention_scaling
        return cos.to(dtype=x.dtype), sin.to(dtype=x.dtype)


def rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def apply_rotary_pos_emb(q, k, cos, sin):
    cos = cos.unsqueeze(1)
    sin = sin.unsqueeze(1)
    return (q * cos) + (rotate_half(q) * sin), (k * cos) + (rotate_half(k) * sin)


def apply_rotary_pos_emb_interleave(q, k, cos, sin):
    """DeepseekV3's rope_interleave: de-interleave pairs (a copy), then rotate as above."""
    b, h, s, d = q.shape
    q = q.view(b, h, s, d // 2, 2).transpose(4, 3).reshape(b, h, s, d)
    b, h, s, d = k.shape
    k = k.view(b, h, s, d // 2, 2).transpose(4, 3).reshape(b, h, s, d)
    return apply_rotary_pos_emb(q, k, cos, sin)


def repeat_kv(hidden_states, n_rep: int):
    """[b, kv_heads, s, d] -> [b, kv_heads * n_rep, s, d]; a copy unless n_rep is 1."""
    batch, kv_heads, seq, dim = hidden_states.shape
    if n_rep == 1:
        return hidden_states
    expanded = hidden_states[:, :, None, :, :].expand(batch, kv_heads, n_rep, seq, dim)
    return expanded.reshape(batch, kv_heads * n_rep, seq, dim)


def eager_attention(query, key, value, attention_mask, scaling: float, n_rep: int):
    """transformers' eager_attention_forward with dropout 0 (F.dropout(p=0) is identity)."""
    key_states = repeat_kv(key, n_rep)
    value_states = repeat_kv(value, n_rep)
    attn_weights = torch.matmul(query, key_states.transpose(2, 3)) * scaling
    if attention_mask is not None:
        attn_weights = attn_weights + attention_mask[:, :, :, : key_states.shape[-2]]
    attn_weights = F.softmax(attn_weights, dim=-1, dtype=torch.float32).to(query.dtype)
    attn_output = torch.matmul(attn_weights, value_states)
    attn_output = attn_output.transpose(1, 2).contiguous()
    return attn_output, attn_weights


def eager_causal_mask(batch: int, seq: int, dtype, device):
    """masking_utils.eager_mask without padding: 0 where allowed, dtype's min elsewhere."""
    q_idx = torch.arange(seq, device=device)[None, None, :, None]
    kv_idx = torch.arange(seq, device=device)[None, None, None, :]
    allowed = (kv_idx <= q_idx).expand(batch, -1, seq, seq)
    zero = torch.tensor(0.0, device=device, dtype=dtype)
    return torch.where(allowed, zero, torch.finfo(dtype).min)


class Attention(nn.Module):
    """LlamaAttention / Qwen3Attention: GQA with optional q_norm/k_norm over head_dim."""

    def __init__(self, c: ModelConfig):
        super().__init__()
        self.head_dim = c.head_dim
        self.num_key_value_groups = c.num_attention_heads // c.num_key_value_heads
        self.scaling = self.head_dim ** -0.5
        bias = c.attention_bias
        self.q_proj = nn.Linear(c.hidden_size, c.num_attention_heads * c.head_dim, bias=bias)
        self.k_proj = nn.Linear(c.hidden_size, c.num_key_value_heads * c.head_dim, bias=bias)
        self.v_proj = nn.Linear(c.hidden_size, c.num_key_value_heads * c.head_dim, bias=bias)
        self.o_proj = nn.Linear(c.num_attention_heads * c.head_dim, c.hidden_size, bias=bias)
        self.qk_norm = c.qk_norm
        if c.qk_norm:
            self.q_norm = RMSNorm(c.head_dim, c.rms_norm_eps)
            self.k_norm = RMSNorm(c.head_dim, c.rms_norm_eps)

    def forward(self, hidden_states, position_embeddings, attention_mask):
        input_shape = hidden_states.shape[:-1]
        hidden_shape = (*input_shape, -1, self.head_dim)
        query = self.q_proj(hidden_states).view(hidden_shape)
        key = self.k_proj(hidden_states).view(hidden_shape)
        if self.qk_norm:
            query = self.q_norm(query)
            key = self.k_norm(key)
        query = query.transpose(1, 2)
        key = key.transpose(1, 2)
        value = self.v_proj(hidden_states).view(hidden_shape).transpose(1, 2)

        cos, sin = position_embeddings
        query, key = apply_rotary_pos_emb(query, key, cos, sin)
        attn_output, attn_weights = eager_attention(
            query, key, value, attention_mask, self.scaling, self.num_key_value_groups)
        attn_output = attn_output.reshape(*input_shape, -1).contiguous()
        return self.o_proj(attn_output), attn_weights


class MLAttention(nn.Module):
    """DeepseekV3Attention: low-rank q (or a plain q_proj), latent kv, rope/nope split."""

    def __init__(self, c: ModelConfig):
        super().__init__()
        self.c = c
        heads, bias, h = c.num_attention_heads, c.attention_bias, c.hidden_size
        qk_head_dim = c.qk_nope_head_dim + c.qk_rope_head_dim
        if c.q_lora_rank is None:
            self.q_proj = nn.Linear(h, heads * qk_head_dim, bias=False)
        else:
            self.q_a_proj = nn.Linear(h, c.q_lora_rank, bias=bias)
            self.q_a_layernorm = RMSNorm(c.q_lora_rank, 1e-6)
            self.q_b_proj = nn.Linear(c.q_lora_rank, heads * qk_head_dim, bias=False)
        self.kv_a_proj_with_mqa = nn.Linear(h, c.kv_lora_rank + c.qk_rope_head_dim, bias=bias)
        self.kv_a_layernorm = RMSNorm(c.kv_lora_rank, 1e-6)
        self.kv_b_proj = nn.Linear(
            c.kv_lora_rank, heads * (c.qk_nope_head_dim + c.v_head_dim), bias=False)
        self.o_proj = nn.Linear(heads * c.v_head_dim, h, bias=bias)
        self.scaling = qk_head_dim ** -0.5  # no yarn mscale: rope_scaling is refused

    def forward(self, hidden_states, position_embeddings, attention_mask):
        c = self.c
        batch, seq = hidden_states.shape[:-1]
        query_shape = (batch, seq, -1, c.qk_nope_head_dim + c.qk_rope_head_dim)
        key_shape = (batch, seq, -1, c.qk_nope_head_dim + c.v_head_dim)

        if c.q_lora_rank is None:
            q_states = self.q_proj(hidden_states)
        else:
            q_states = self.q_b_proj(self.q_a_layernorm(self.q_a_proj(hidden_states)))
        q_states = q_states.view(query_shape).transpose(1, 2)
        q_pass, q_rot = torch.split(q_states, [c.qk_nope_head_dim, c.qk_rope_head_dim], dim=-1)

        compressed_kv = self.kv_a_proj_with_mqa(hidden_states)
        k_pass, k_rot = torch.split(compressed_kv, [c.kv_lora_rank, c.qk_rope_head_dim], dim=-1)
        k_pass = self.kv_b_proj(self.kv_a_layernorm(k_pass)).view(key_shape).transpose(1, 2)
        k_pass, value_states = torch.split(k_pass, [c.qk_nope_head_dim, c.v_head_dim], dim=-1)
        k_rot = k_rot.view(batch, 1, seq, c.qk_rope_head_dim)

        cos, sin = position_embeddings
        if c.rope_interleave:
            q_rot, k_rot = apply_rotary_pos_emb_interleave(q_rot, k_rot, cos, sin)
        else:
            q_rot, k_rot = apply_rotary_pos_emb(q_rot, k_rot, cos, sin)
        k_rot = k_rot.expand(*k_pass.shape[:-1], -1)

        query_states = torch.cat((q_pass, q_rot), dim=-1)
        key_states = torch.cat((k_pass, k_rot), dim=-1)
        attn_output, attn_weights = eager_attention(
            query_states, key_states, value_states, attention_mask, self.scaling,
            c.num_attention_heads // c.num_key_value_heads)
        attn_output = attn_output.reshape(batch, seq, -1).contiguous()
        return self.o_proj(attn_output), attn_weights


class MLP(nn.Module):
    """SwiGLU: down(silu(gate(x)) * up(x)); also one expert and the shared experts."""

    def __init__(self, hidden: int, intermediate: int, bias: bool = False):
        super().__init__()
        self.gate_proj = nn.Linear(hidden, intermediate, bias=bias)
        self.up_proj = nn.Linear(hidden, intermediate, bias=bias)
        self.down_proj = nn.Linear(intermediate, hidden, bias=bias)
        self.act_fn = nn.SiLU()  # transformers' ACT2FN["silu"]

    def forward(self, x):
        return self.down_proj(self.act_fn(self.gate_proj(x)) * self.up_proj(x))


def balanced_indices(tokens: int, top_k: int, experts: int, device):
    """[tokens, top_k] int64: token t's j-th expert is (t * top_k + j) mod experts."""
    slots = torch.arange(tokens * top_k, device=device).view(tokens, top_k)
    return slots.remainder(experts)


class TopkRouter(nn.Module):
    """DeepseekV3TopkRouter: FP32 logits, sigmoid scores, group-limited top-k."""

    def __init__(self, c: ModelConfig):
        super().__init__()
        self.c = c
        self.weight = nn.Parameter(torch.empty((c.num_experts, c.hidden_size)))
        self.register_buffer("e_score_correction_bias", torch.zeros(c.num_experts))
        self.balanced = False

    @torch.no_grad()
    def get_topk_indices(self, scores):
        n, groups = self.c.num_experts, self.c.n_group
        choice = scores.view(-1, n) + self.e_score_correction_bias.unsqueeze(0)
        group_scores = choice.view(-1, groups, n // groups).topk(2, dim=-1)[0].sum(dim=-1)
        group_idx = torch.topk(group_scores, k=self.c.topk_group, dim=-1, sorted=False)[1]
        group_mask = torch.zeros_like(group_scores)
        group_mask.scatter_(1, group_idx, 1)
        score_mask = group_mask.unsqueeze(-1).expand(-1, groups, n // groups).reshape(-1, n)
        choice = choice.masked_fill(~score_mask.bool(), 0.0)
        return torch.topk(choice, k=self.c.num_experts_per_tok, dim=-1, sorted=False)[1]

    def forward(self, hidden_states):
        c = self.c
        hidden_states = hidden_states.view(-1, c.hidden_size)
        router_logits = F.linear(hidden_states.type(torch.float32),
                                 self.weight.type(torch.float32))
        scores = router_logits.sigmoid()
        topk_indices = self.get_topk_indices(scores)
        if self.balanced:
            topk_indices = balanced_indices(scores.shape[0], c.num_experts_per_tok,
                                            c.num_experts, scores.device)
        topk_weights = scores.gather(1, topk_indices)
        if c.norm_topk_prob:
            denominator = topk_weights.sum(dim=-1, keepdim=True) + 1e-20
            topk_weights /= denominator
        topk_weights = topk_weights * c.routed_scaling_factor
        return topk_indices, topk_weights


class DeepseekMoE(nn.Module):
    """DeepseekV3MoE: routed experts combined in FP32, plus the shared experts."""

    def __init__(self, c: ModelConfig):
        super().__init__()
        self.experts = nn.ModuleList(
            [MLP(c.hidden_size, c.moe_intermediate_size) for _ in range(c.num_experts)])
        self.gate = TopkRouter(c)
        # HF builds shared_experts unconditionally; DeepSeek's own code only when
        # n_shared_experts is set. With none we build none (an MLP of width 0 keeps nothing).
        if c.n_shared_experts:
            self.shared_experts = MLP(c.hidden_size,
                                      c.moe_intermediate_size * c.n_shared_experts)
        else:
            self.shared_experts = None
        self.tokens_per_expert: List[int] = []

    def moe(self, hidden_states, topk_indices, topk_weights):
        final_hidden_states = torch.zeros_like(hidden_states, dtype=topk_weights.dtype)
        expert_mask = F.one_hot(topk_indices, num_classes=len(self.experts)).permute(2, 0, 1)
        counts = []
        for expert_idx, expert in enumerate(self.experts):
            token_indices, weight_indices = torch.where(expert_mask[expert_idx])
            counts.append(token_indices.numel())
            if token_indices.numel() > 0:
                expert_weights = topk_weights[token_indices, weight_indices]
                expert_output = expert(hidden_states[token_indices])
                weighted_output = expert_output * expert_weights.unsqueeze(-1)
                final_hidden_states.index_add_(0, token_indices, weighted_output)
        self.tokens_per_expert = counts
        return final_hidden_states.type(hidden_states.dtype)

    def forward(self, hidden_states):
        residuals = hidden_states
        orig_shape = hidden_states.shape
        topk_indices, topk_weights = self.gate(hidden_states)
        hidden_states = hidden_states.view(-1, hidden_states.shape[-1])
        hidden_states = self.moe(hidden_states, topk_indices, topk_weights).view(*orig_shape)
        if self.shared_experts is not None:
            hidden_states = hidden_states + self.shared_experts(residuals)
        return hidden_states


class Qwen3SparseMoe(nn.Module):
    """Qwen3MoeSparseMoeBlock: softmax router in FP32, top-k, loop over hit experts."""

    def __init__(self, c: ModelConfig):
        super().__init__()
        self.num_experts = c.num_experts
        self.top_k = c.num_experts_per_tok
        self.norm_topk_prob = c.norm_topk_prob
        self.gate = nn.Linear(c.hidden_size, c.num_experts, bias=False)
        self.experts = nn.ModuleList(
            [MLP(c.hidden_size, c.moe_intermediate_size) for _ in range(c.num_experts)])
        self.tokens_per_expert: List[int] = []
        self.balanced = False

    def forward(self, hidden_states):
        batch, seq, hidden_dim = hidden_states.shape
        hidden_states = hidden_states.view(-1, hidden_dim)
        router_logits = self.gate(hidden_states)
        routing_weights = F.softmax(router_logits, dim=1, dtype=torch.float)
        probabilities = routing_weights
        routing_weights, selected_experts = torch.topk(routing_weights, self.top_k, dim=-1)
        if self.balanced:
            selected_experts = balanced_indices(batch * seq, self.top_k, self.num_experts,
                                                hidden_states.device)
            routing_weights = probabilities.gather(1, selected_experts)
        if self.norm_topk_prob:
            routing_weights /= routing_weights.sum(dim=-1, keepdim=True)
        routing_weights = routing_weights.to(hidden_states.dtype)

        final_hidden_states = torch.zeros((batch * seq, hidden_dim), dtype=hidden_states.dtype,
                                          device=hidden_states.device)
        expert_mask = F.one_hot(selected_experts, num_classes=self.num_experts).permute(2, 1, 0)
        expert_hit = torch.greater(expert_mask.sum(dim=(-1, -2)), 0).nonzero()
        counts = [0] * self.num_experts
        for expert_idx in expert_hit:
            expert_layer = self.experts[expert_idx]
            idx, top_x = torch.where(expert_mask[expert_idx].squeeze(0))
            counts[int(expert_idx)] = top_x.numel()
            current_state = hidden_states[None, top_x].reshape(-1, hidden_dim)
            current_hidden_states = expert_layer(current_state) * routing_weights[top_x, idx, None]
            final_hidden_states.index_add_(0, top_x, current_hidden_states.to(hidden_states.dtype))
        self.tokens_per_expert = counts
        final_hidden_states = final_hidden_states.reshape(batch, seq, hidden_dim)
        return final_hidden_states, router_logits


class GradientCheckpointingLayer(nn.Module):
    """modeling_layers.GradientCheckpointingLayer (00029cfa): with gradient checkpointing
    on and in training, the layer runs under torch.utils.checkpoint with its keyword
    arguments bound by functools.partial and its positional ones (the hidden states)
    passed on; PreTrainedModel.gradient_checkpointing_enable() with no kwargs uses
    use_reentrant=True (modeling_utils.py), torch 1.13's default too."""

    gradient_checkpointing = False

    def __call__(self, *args, **kwargs):
        if self.gradient_checkpointing and self.training:
            return torch.utils.checkpoint.checkpoint(
                functools.partial(super().__call__, **kwargs), *args, use_reentrant=True)
        return super().__call__(*args, **kwargs)


class DecoderLayer(GradientCheckpointingLayer):
    def __init__(self, c: ModelConfig, layer_idx: int):
        super().__init__()
        self.self_attn = MLAttention(c) if c.architecture == "DeepseekV3ForCausalLM" \
            else Attention(c)
        if not c.is_moe_layer(layer_idx):
            self.mlp = MLP(c.hidden_size, c.intermediate_size, bias=c.mlp_bias)
        elif c.moe == "deepseek_v3":
            self.mlp = DeepseekMoE(c)
        else:
            self.mlp = Qwen3SparseMoe(c)
        self.input_layernorm = RMSNorm(c.hidden_size, c.rms_norm_eps)
        self.post_attention_layernorm = RMSNorm(c.hidden_size, c.rms_norm_eps)

    def forward(self, hidden_states, attention_mask=None, position_ids=None,
                cache_position=None, position_embeddings=None):
        residual = hidden_states
        hidden_states = self.input_layernorm(hidden_states)
        hidden_states, _ = self.self_attn(hidden_states, position_embeddings, attention_mask)
        hidden_states = residual + hidden_states

        residual = hidden_states
        hidden_states = self.post_attention_layernorm(hidden_states)
        hidden_states = self.mlp(hidden_states)
        if isinstance(hidden_states, tuple):  # Qwen3-MoE also returns its router logits
            hidden_states, _ = hidden_states
        return residual + hidden_states


class Model(nn.Module):
    """The decoder stack (HF's `model.`): embedding, layers, final norm, RoPE."""

    def __init__(self, c: ModelConfig):
        super().__init__()
        self.embed_tokens = nn.Embedding(c.vocab_size, c.hidden_size, c.pad_token_id)
        self.layers = nn.ModuleList([DecoderLayer(c, i) for i in range(c.num_hidden_layers)])
        self.norm = RMSNorm(c.hidden_size, c.rms_norm_eps)
        self.rotary_emb = RotaryEmbedding(c.head_dim, c.rope_theta)

    def forward(self, input_ids):
        inputs_embeds = self.embed_tokens(input_ids)
        batch, seq = input_ids.shape
        cache_position = torch.arange(0, seq, device=inputs_embeds.device)
        position_ids = cache_position.unsqueeze(0)
        causal_mask = eager_causal_mask(batch, seq, inputs_embeds.dtype, inputs_embeds.device)
        hidden_states = inputs_embeds
        position_embeddings = self.rotary_emb(hidden_states, position_ids)
        for layer in self.layers:
            # HF's decoder loop: the hidden states positional, the rest by keyword
            hidden_states = layer(hidden_states, attention_mask=causal_mask,
                                  position_ids=position_ids, cache_position=cache_position,
                                  position_embeddings=position_embeddings)
        return self.norm(hidden_states)


def causal_lm_loss(logits, labels, vocab_size: int, ignore_index: int = -100):
    """ForCausalLMLoss: FP32 logits, labels shifted left by padding with ignore_index."""
    logits = logits.float()
    labels = F.pad(labels, (0, 1), value=ignore_index)
    shift_labels = labels[..., 1:].contiguous()
    logits = logits.view(-1, vocab_size)
    shift_labels = shift_labels.view(-1)
    return F.cross_entropy(logits, shift_labels, ignore_index=ignore_index, reduction="mean")


class ForCausalLM(nn.Module):
    def __init__(self, c: ModelConfig):
        super().__init__()
        self.config = c
        self.model = Model(c)
        self.lm_head = nn.Linear(c.hidden_size, c.vocab_size, bias=False)
        if c.tie_word_embeddings:
            self.lm_head.weight = self.model.embed_tokens.weight

    def forward(self, input_ids, labels: Optional[torch.Tensor] = None):
        hidden_states = self.model(input_ids)
        logits = self.lm_head(hidden_states[:, slice(0, None), :])  # logits_to_keep = 0
        loss = None
        if labels is not None:
            loss = causal_lm_loss(logits, labels, self.config.vocab_size)
        return CausalLMOutput(loss, logits)


def _init_weights(model: nn.Module, std: float):
    """PreTrainedModel._init_weights: N(0, std) linears/embeddings/routers, ones norms."""
    for module in model.modules():
        if isinstance(module, nn.Linear):
            module.weight.data.normal_(mean=0.0, std=std)
            if module.bias is not None:
                module.bias.data.zero_()
        elif isinstance(module, nn.Embedding):
            module.weight.data.normal_(mean=0.0, std=std)
            if module.padding_idx is not None:
                module.weight.data[module.padding_idx].zero_()
        elif isinstance(module, RMSNorm):
            module.weight.data.fill_(1.0)
        elif isinstance(module, TopkRouter):
            module.weight.data.normal_(mean=0.0, std=std)


def build(c: ModelConfig, seed: int) -> ForCausalLM:
    """The model in training mode, initialised from `seed`, parameters in c.dtype.

    Buffers stay as transformers creates them: inv_freq in FP32, the router's
    e_score_correction_bias in FP32 (both used under no_grad only).
    """
    torch.manual_seed(seed)
    model = ForCausalLM(c)
    _init_weights(model, c.initializer_range)
    dtype = DTYPES[c.dtype]
    for p in model.parameters():
        p.data = p.data.to(dtype)
    model.train()
    return model


def set_balanced_routing(model: nn.Module, balanced: bool) -> None:
    """Forces (or stops forcing) balanced routing in every MoE block; see the top."""
    for module in model.modules():
        if isinstance(module, (TopkRouter, Qwen3SparseMoe)):
            module.balanced = balanced


def set_gradient_checkpointing(model: nn.Module, layers: Optional[int] = None) -> None:
    """PreTrainedModel.gradient_checkpointing_enable(): every decoder layer checkpointed
    (layers None), or only the first `layers` of them (Megatron's block method; HF has no
    such switch, the flag is per layer). 0 turns it off."""
    for i, layer in enumerate(model.model.layers):
        layer.gradient_checkpointing = layers is None or i < layers


def moe_blocks(model: nn.Module):
    """(module path, block) of every MoE block, in layer order."""
    return [(name, m) for name, m in model.named_modules()
            if isinstance(m, (DeepseekMoE, Qwen3SparseMoe))]
