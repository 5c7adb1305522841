"""Shared set-up of the calibration harness tests: the harness on sys.path, torch or a
skip. ctest treats exit status 77 as "skipped" (SKIP_RETURN_CODE in tests/CMakeLists.txt).
"""

import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HARNESS = os.path.join(ROOT, "tools", "calibrate")
DATA = os.path.join(ROOT, "tests", "data", "calibrate")
sys.path.insert(0, HARNESS)

try:
    import torch  # noqa: F401
except ImportError:
    print("SKIP: python3-torch is not installed (tools/setup.sh installs it)")
    sys.exit(77)

torch.set_num_threads(1)


def mean_keeps_its_input() -> bool:
    """Whether this torch's MeanBackward saves its input (torch 1.13 does: it needs
    self.numel(); current PyTorch saves sizes only, pytorch/pytorch#109876)."""
    x = torch.ones(2, 3, requires_grad=True)
    return "_saved_self" in dir(x.pow(2).mean(-1).grad_fn)
