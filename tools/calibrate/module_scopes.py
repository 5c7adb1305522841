"""Which module is running: a stack of Hugging Face module paths kept by forward hooks.

While a ModuleScopes is entered, every module of the model pushes its path (its name in
`model.named_modules()`, "" for the root) when its forward starts and pops it when the
forward returns, so `current()` names the innermost module whose forward is running:
the module an op or a saved tensor belongs to. With `profile_ranges=True` each module
forward is also a torch.profiler range named "module:<path>" (the root: "module:").
"""

import torch

import profiler_range


class ModuleScopes:
    def __init__(self, model: torch.nn.Module, profile_ranges: bool = False):
        self._model = model
        self._profile_ranges = profile_ranges
        self._stack = []
        self._ranges = []
        self._handles = []

    def current(self) -> str:
        """The innermost running module's path; "" outside any module."""
        return self._stack[-1] if self._stack else ""

    def __enter__(self):
        for name, module in self._model.named_modules():
            self._handles.append(module.register_forward_pre_hook(self._enter_hook(name)))
            self._handles.append(module.register_forward_hook(self._exit_hook()))
        return self

    def __exit__(self, *exc):
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
        while self._ranges:  # a forward that raised leaves its ranges open
            profiler_range.exit(self._ranges.pop())
        self._stack.clear()
        return False

    def _enter_hook(self, name):
        def hook(module, inputs):
            self._stack.append(name)
            if self._profile_ranges:
                self._ranges.append(profiler_range.enter("module:" + name))
        return hook

    def _exit_hook(self):
        def hook(module, inputs, output):
            self._stack.pop()
            if self._profile_ranges:
                profiler_range.exit(self._ranges.pop())
        return hook
