"""saved_tensors.measure: what autograd keeps, by hand arithmetic on small modules."""

import functools
import unittest

import calibrate_env  # noqa: F401  (sys.path, torch or skip)
import torch
import torch.utils.checkpoint
from torch import nn

import model as models
import saved_tensors


class LinearNorm(nn.Module):
    """A BF16 projection then an HF RMSNorm: proj(x) -> norm."""

    def __init__(self, h, f):
        super().__init__()
        self.proj = nn.Linear(h, f, bias=False)
        self.norm = models.RMSNorm(f, 1e-6)

    def forward(self, x):
        return self.norm(self.proj(x))


class SavedTensorsTest(unittest.TestCase):
    def test_linear_then_rmsnorm_by_hand(self):
        n, h, f = 6, 16, 24
        m = LinearNorm(h, f).to(torch.bfloat16)
        x = torch.randn(n, h).to(torch.bfloat16)
        kept = saved_tensors.measure(m, lambda: m(x).float().sum(), inputs=[x])
        # mm keeps its input x (n*h BF16) for the weight's gradient; x needs no gradient,
        # so it does not keep the weight. The norm's weight (model state) is not counted.
        # RMSNorm keeps its FP32 upcast (pow, and the multiply by rsqrt), x**2 if this
        # torch's mean keeps its input, rsqrt (FP32, one per row) and the BF16
        # normalised values (for the weight's gradient). .float() and sum keep nothing.
        expected = (2 * n * h + 4 * n * f
                    + (4 * n * f if calibrate_env.mean_keeps_its_input() else 0)
                    + 4 * n + 2 * n * f)
        self.assertEqual(kept.total_bytes, expected)
        self.assertEqual(kept.input_bytes, 2 * n * h)
        self.assertEqual(kept.model_state_bytes, 2 * f)  # norm.weight, kept by its multiply
        self.assertEqual(kept.module_self_bytes(),
                         {"proj": 2 * n * h, "norm": expected - 2 * n * h})
        self.assertEqual(kept.module_total_bytes()[""], expected)
        ops = {(t.module, t.op) for t in kept.tensors if t.counted_bytes}
        self.assertIn(("proj", "MmBackward0"), ops)
        self.assertIn(("norm", "RsqrtBackward0"), ops)
        dtypes = {t.op: t.dtype for t in kept.tensors if t.counted_bytes and t.module == "norm"}
        self.assertEqual(dtypes["PowBackward0"], "float32")
        self.assertEqual(dtypes["MulBackward0"], "bfloat16")

    def test_parameters_and_their_views_are_never_counted(self):
        n, h, f = 5, 8, 12
        m = nn.Linear(h, f, bias=False)
        x = torch.randn(n, h, requires_grad=True)
        kept = saved_tensors.measure(m, lambda: m(x).sum())
        # mm keeps x (for the weight's gradient) and weight.t() (for x's gradient).
        state = [t for t in kept.tensors if t.model_state]
        self.assertEqual([(t.op, t.shape, t.counted_bytes) for t in state],
                         [("MmBackward0", [h, f], 0)])
        self.assertEqual(kept.model_state_bytes, 4 * f * h)
        self.assertEqual(kept.total_bytes, 4 * n * h)

    def test_storage_counts_once_whatever_views_save_it(self):
        n, h = 4, 10
        x = torch.randn(n, h)

        def forward():
            e = x.requires_grad_().exp()  # ExpBackward0 keeps its result e
            half = e[:, : h // 2]  # a view of e's storage
            return (half * half).sum() + e.sin().sum()  # Mul keeps half twice, Sin keeps e

        kept = saved_tensors.measure(nn.Module(), forward)
        uses = [t for t in kept.tensors if t.kept and not t.model_state]
        self.assertEqual(sorted(t.op for t in uses),
                         ["ExpBackward0", "MulBackward0", "MulBackward0", "SinBackward0"])
        self.assertEqual({t.storage for t in uses}, {0})
        self.assertEqual(sum(t.counted_bytes for t in uses), 4 * n * h)
        self.assertEqual(sorted(t.view_bytes for t in uses),
                         [4 * n * h // 2, 4 * n * h // 2, 4 * n * h, 4 * n * h])
        self.assertEqual(kept.total_bytes, 4 * n * h)

    def test_a_dropped_branch_keeps_nothing(self):
        x = torch.randn(8, 8, requires_grad=True)

        def forward():
            torch.tanh(x * 3.0)  # TanhBackward0 keeps its result; the graph drops it
            return x.exp().sum()

        kept = saved_tensors.measure(nn.Module(), forward)
        dropped = [t for t in kept.tensors if t.op == "" and not t.kept]
        self.assertTrue(dropped)
        self.assertTrue(all(t.counted_bytes == 0 for t in dropped))
        self.assertEqual(kept.total_bytes, 4 * 8 * 8)  # exp's result only

    def test_a_reentrant_checkpoint_keeps_its_inputs_and_what_its_function_holds(self):
        n, h = 4, 6
        x = torch.randn(n, h, requires_grad=True)
        y = torch.randn(n, h)  # held by the partial, not an argument
        cos = (torch.randn(n, h), torch.randn(n, h))  # a tuple argument: ctx.inputs

        def layer(a, pair, b=None):
            return (a.exp() * b * pair[0]).sum()

        def forward():
            hidden = x.clone()  # CloneBackward0 keeps nothing
            fn = functools.partial(layer, b=y)
            return torch.utils.checkpoint.checkpoint(fn, hidden, cos, use_reentrant=True)

        kept = saved_tensors.measure(nn.Module(), forward)
        # CheckpointFunction.forward saves its tensor argument (hidden, FP32 n*h); under
        # no_grad the layer saves nothing. Its context holds the partial's y and the
        # tuple's two tensors, and the stashed CPU RNG state (host memory on a GPU).
        by_holder = {}
        for t in kept.tensors:
            by_holder.setdefault(t.holder, []).append(t)
        self.assertEqual([(t.op, t.counted_bytes) for t in by_holder["saved"]],
                         [("CheckpointFunctionBackward", 4 * n * h)])
        self.assertEqual(sorted(t.counted_bytes for t in by_holder["checkpoint"]),
                         [4 * n * h] * 3)
        rng = torch.get_rng_state().numel()
        self.assertEqual([(t.dtype, t.counted_bytes) for t in by_holder["rng_state"]],
                         [("uint8", 0)])
        self.assertEqual(kept.host_bytes, rng)
        self.assertEqual(kept.total_bytes, 4 * 4 * n * h)

    def test_graph_is_released(self):
        m = LinearNorm(8, 8)
        x = torch.randn(3, 8)
        saved_tensors.measure(m, lambda: m(x).sum())
        # Another forward can backward through the same module: nothing left hooked.
        m(x).sum().backward()
        self.assertIsNotNone(m.proj.weight.grad)


if __name__ == "__main__":
    unittest.main()
