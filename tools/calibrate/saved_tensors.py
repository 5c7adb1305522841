"""What autograd keeps for backward after a forward: every saved tensor, deduplicated.

`measure(model, forward)` runs `forward()` (which returns the loss) under
torch.autograd.graph.saved_tensors_hooks and records every tensor an autograd node saves:
the module running when it was saved (ModuleScopes), its shape, dtype and bytes, and the
storage it lives in. After the forward it walks the autograd graph from the loss and asks
each node for its saved tensors, which names the node (grad_fn) that saved each one.

Counting rules:
  - a storage counts once, with its full size (untyped storage nbytes), attributed to the
    first saved tensor that uses it; views of it saved later count 0;
  - tensors whose storage is a parameter's or a buffer's (weights, weight.t(), ...) are
    model state, not activations: listed, never counted;
  - storages of the given `inputs` (the batch, which exists before the forward) count
    like any other, flagged input=True, and their sum is input_bytes;
  - only what the graph still holds counts: a tensor saved by a node the graph has
    already dropped (a branch whose output was discarded) is listed with kept=False;
  - a reentrant checkpoint (torch.utils.checkpoint's CheckpointFunction) also holds
    tensors outside its saved ones: those its function (a functools.partial) and its
    non-tensor arguments reference, and the CPU RNG state it stashed. The first count
    like saved tensors (holder "checkpoint"); the RNG state (holder "rng_state") is a
    host tensor on a GPU too (torch.get_rng_state, torch.cuda.get_rng_state return CPU
    byte tensors), so it is listed and summed in host_bytes, never counted.
Nothing is added to the computation: the pack hook stores a detached alias (same storage,
no extra bytes, no reference cycle through grad_fn) and unpack returns it.
"""

import dataclasses
import functools
import weakref
from typing import Callable, Dict, List, Sequence

import torch

from module_scopes import ModuleScopes


def storage_of(t: torch.Tensor):
    """(data_ptr, nbytes) of the whole storage `t` lives in (torch 1.13 and 2.x)."""
    if hasattr(t, "untyped_storage"):
        s = t.untyped_storage()
    else:
        s = t.storage().untyped()
    return s.data_ptr(), s.nbytes()


def dtype_name(dtype) -> str:
    return str(dtype).replace("torch.", "")


@dataclasses.dataclass
class SavedTensor:
    module: str  # HF module path running when it was saved ("" = the root module)
    op: str  # the autograd node that saved it ("" if the graph dropped it)
    shape: List[int]
    dtype: str
    view_bytes: int  # numel * element size of the saved tensor itself
    storage_bytes: int  # its whole storage
    storage: int  # index of the storage among counted storages; -1 if not counted
    counted_bytes: int  # storage_bytes for the first use of a storage, else 0
    model_state: bool  # a parameter's or buffer's storage
    input: bool  # the storage of one of the given inputs
    kept: bool  # still held by the graph at the end of the forward
    holder: str = "saved"  # "saved", "checkpoint" (a checkpoint's function or arguments),
    #                        "rng_state" (a checkpoint's stashed RNG state: host memory)

    def to_json(self) -> dict:
        return dataclasses.asdict(self)


@dataclasses.dataclass
class KeptReport:
    total_bytes: int
    input_bytes: int  # the part of total_bytes in the inputs' storages
    model_state_bytes: int  # bytes of parameter/buffer storages the graph references
    tensors: List[SavedTensor]
    host_bytes: int = 0  # the checkpoints' stashed RNG states (host memory on a GPU)

    def module_self_bytes(self) -> Dict[str, int]:
        """Counted bytes per module path, attributed to the module that saved them."""
        out: Dict[str, int] = {}
        for t in self.tensors:
            if t.counted_bytes:
                out[t.module] = out.get(t.module, 0) + t.counted_bytes
        return out

    def module_total_bytes(self) -> Dict[str, int]:
        """Counted bytes per module path including its submodules (the root "" = all)."""
        out: Dict[str, int] = {}
        for module, nbytes in self.module_self_bytes().items():
            parts = module.split(".") if module else []
            for i in range(len(parts) + 1):
                prefix = ".".join(parts[:i])
                out[prefix] = out.get(prefix, 0) + nbytes
        return out


class _Packed:
    __slots__ = ("tensor", "index", "__weakref__")

    def __init__(self, tensor, index):
        self.tensor = tensor
        self.index = index


def measure(model: torch.nn.Module, forward: Callable[[], torch.Tensor],
            inputs: Sequence[torch.Tensor] = ()) -> KeptReport:
    """Runs forward() (returning the loss) and reports what its graph keeps.

    The graph is released before returning (no backward runs); the model is unchanged.
    """
    state = {storage_of(t)[0] for t in list(model.parameters()) + list(model.buffers())}
    input_ptrs = {storage_of(t)[0] for t in inputs}
    raw = []  # per saved tensor: [module, op, shape, dtype, view_bytes, ptr, nbytes]
    handles = []
    walking = {"node": None}

    def pack(t):
        ptr, nbytes = storage_of(t)
        raw.append([scopes.current(), "", list(t.shape), dtype_name(t.dtype),
                    t.numel() * t.element_size(), ptr, nbytes, "saved"])
        packed = _Packed(t.detach(), len(raw) - 1)
        handles.append(weakref.ref(packed))
        return packed

    def unpack(packed):
        if walking["node"] is not None:
            raw[packed.index][1] = walking["node"]
        return packed.tensor

    with ModuleScopes(model) as scopes:
        with torch.autograd.graph.saved_tensors_hooks(pack, unpack):
            loss = forward()
    held = _name_savers(loss, walking)
    kept = {h().index for h in handles if h() is not None}
    for holder, t in held:
        ptr, nbytes = storage_of(t)
        kept.add(len(raw))
        raw.append(["", "CheckpointFunctionBackward", list(t.shape), dtype_name(t.dtype),
                    t.numel() * t.element_size(), ptr, nbytes, holder])
    del held
    del loss  # releases the graph

    tensors = []
    seen: Dict[int, int] = {}
    model_state_ptrs = {}
    total = inputs_total = host = 0
    host_seen = set()
    for i, (module, op, shape, dtype, view_bytes, ptr, nbytes, holder) in enumerate(raw):
        is_state = ptr in state
        counted, storage = 0, -1
        if holder == "rng_state":
            if ptr not in host_seen:
                host_seen.add(ptr)
                host += nbytes
        elif i in kept and not is_state and nbytes > 0:
            if ptr not in seen:
                seen[ptr] = len(seen)
                counted = nbytes
                total += nbytes
                if ptr in input_ptrs:
                    inputs_total += nbytes
            storage = seen[ptr]
        if i in kept and is_state:
            model_state_ptrs[ptr] = nbytes
        tensors.append(SavedTensor(module, op, shape, dtype, view_bytes, nbytes, storage,
                                   counted, is_state, ptr in input_ptrs, i in kept, holder))
    return KeptReport(total, inputs_total, sum(model_state_ptrs.values()), tensors, host)


def _tensors_in(value, out):
    """Every tensor in `value`: a tensor, or nested tuples, lists, dicts and partials."""
    if isinstance(value, torch.Tensor):
        out.append(value)
    elif isinstance(value, (tuple, list)):
        for v in value:
            _tensors_in(v, out)
    elif isinstance(value, dict):
        for v in value.values():
            _tensors_in(v, out)
    elif isinstance(value, functools.partial):
        _tensors_in(value.args, out)
        _tensors_in(value.keywords, out)


def _checkpoint_held(node):
    """(holder, tensor) of what a reentrant checkpoint's context holds besides its saved
    tensors (torch/utils/checkpoint.py CheckpointFunction.forward: ctx.run_function,
    ctx.inputs for the non-tensor arguments, ctx.fwd_cpu_state)."""
    held = []
    if not hasattr(node, "run_function"):
        return held
    tensors = []
    _tensors_in(node.run_function, tensors)
    _tensors_in(getattr(node, "inputs", ()), tensors)
    held.extend(("checkpoint", t) for t in tensors)
    for name in ("fwd_cpu_state",):
        if isinstance(getattr(node, name, None), torch.Tensor):
            held.append(("rng_state", getattr(node, name)))
    for state in getattr(node, "fwd_gpu_states", ()) or ():
        held.append(("rng_state", state))
    return held


def _name_savers(loss: torch.Tensor, walking: dict):
    """Visits every node reachable from the loss and unpacks its saved tensors, so that
    the unpack hook learns which node saved each one. Returns what reentrant checkpoints
    hold besides their saved tensors (_checkpoint_held), in graph order."""
    held = []
    if loss.grad_fn is None:
        return held
    stack = [loss.grad_fn]
    visited = {}
    while stack:
        node = stack.pop()
        if id(node) in visited:
            continue
        visited[id(node)] = node  # keeps the wrapper alive so ids stay unique
        walking["node"] = node.name()
        for attr in dir(node):
            if attr.startswith("_saved_") or attr == "saved_tensors":  # custom Functions
                try:
                    getattr(node, attr)
                except RuntimeError:  # a saved value that cannot be unpacked twice
                    pass
        walking["node"] = None
        held.extend(_checkpoint_held(node))
        for next_node, _ in node.next_functions:
            if next_node is not None:
                stack.append(next_node)
    return held
