"""A torch.profiler range that allocates no tensor.

torch 1.13's record_function allocates a 4-byte tensor in its constructor and a handle
tensor on entry (torch.ops.profiler._record_function_enter), which would show up in the
very memory events the harness measures. These ranges use the ScriptObject handle of
_record_function_enter_new (what record_function uses from torch 2.0 on) instead.
"""

import torch


def enter(name: str):
    """Opens the range `name`; returns the handle to pass to exit()."""
    return torch.ops.profiler._record_function_enter_new(name, None)


def exit(handle) -> None:  # noqa: A001 - pairs with enter()
    torch.ops.profiler._record_function_exit._RecordFunction(handle)


class Range:
    """`with Range("mb0.forward"):` - a profiler range around the block. Takes
    record_function's arguments, so that it can stand in for it (`args` is dropped)."""

    def __init__(self, name: str, args=None):
        self._name = name
        self._handle = None

    def __enter__(self):
        self._handle = enter(self._name)
        return self

    def __exit__(self, *exc):
        exit(self._handle)
        return False


class NoAllocatingRecordFunction:
    """While entered, torch.autograd.profiler.record_function is Range, so that library
    code that labels itself (optimizer.step, zero_grad) allocates nothing either."""

    def __enter__(self):
        self._saved = torch.autograd.profiler.record_function
        torch.autograd.profiler.record_function = Range
        return self

    def __exit__(self, *exc):
        torch.autograd.profiler.record_function = self._saved
        return False
