"""Allocated memory over one training step, from torch.profiler's memory events.

A training step is m micro-batches of forward + backward with gradient accumulation
(loss / m), then optimizer.step() and optimizer.zero_grad(set_to_none=True). `profile`
runs one such step under the PyTorch profiler with memory events (what
torch.profiler.profile(profile_memory=True) runs: kineto, CPU activity; entered through
its torch.autograd.profiler.profile, minus the FunctionEvent list it builds on exit,
which takes seconds for a MoE step and which the harness does not read), with a profiler
range around every phase ("mb0.forward", "mb0.backward", ..., "optimizer.step",
"zero_grad"), one around every module forward ("module:<path>", ModuleScopes), and
"quiet:<point>" ranges between phases where it counts the live tensor bytes directly.
All ranges, and the optimizer's own record_function labels, are allocation-free
(profiler_range.py): the profiler adds no byte to what it measures.

The allocator reports every allocation and free made while profiling, each placed in the
profiler's event tree under the op that made it, with the reporter's running total. The
timeline is that running total on top of the bytes alive before the step (counted
directly: nothing allocated before the step may be freed during it, which the checks
below would expose). Checks, all reported:
  - the running total equals the sum of the reported sizes at every event;
  - at every quiet point with no autograd graph alive (after each backward, after the
    optimizer step, at the end) the timeline equals the direct count of live tensors;
  - no allocation happens inside a quiet range (so the points are quiet).
Nothing here writes files or prints; measure.py turns the result into JSON.
"""

import bisect
import dataclasses
import gc
from typing import Callable, Dict, List, Optional

import torch

from module_scopes import ModuleScopes
from profiler_range import NoAllocatingRecordFunction, Range
from saved_tensors import storage_of


def micro_batch_loss(model, input_ids, microbatches: int):
    """One micro-batch's forward as the step runs it: HF's loss on labels = input_ids,
    scaled for gradient accumulation. The returned output (logits) is dropped here."""
    return model(input_ids, labels=input_ids).loss / microbatches


def train_step(model, optimizer, batches, quiet: Callable[[str], None] = lambda name: None):
    m = len(batches)
    for i, input_ids in enumerate(batches):
        with Range(f"mb{i}.forward"):
            loss = micro_batch_loss(model, input_ids, m)
        quiet(f"mb{i}.after_forward")
        with Range(f"mb{i}.backward"):
            loss.backward()
        del loss
        quiet(f"mb{i}.after_backward")
    with Range("optimizer.step"):
        optimizer.step()
    quiet("after_optimizer")
    with Range("zero_grad"):
        optimizer.zero_grad(set_to_none=True)
    quiet("end")


def live_tensor_bytes(model, optimizer, inputs) -> Dict[str, int]:
    """Bytes of live tensor storages, each storage once, by what holds it: parameters,
    buffers (RoPE's inv_freq, ...), gradients, optimizer state, inputs, then any other
    tensor Python can reach."""
    seen = set()
    out = {"parameters": 0, "buffers": 0, "gradients": 0, "optimizer_state": 0, "inputs": 0,
           "other": 0}

    def add(kind, t):
        if isinstance(t, torch.Tensor):
            ptr, nbytes = storage_of(t)
            if nbytes and ptr not in seen:
                seen.add(ptr)
                out[kind] += nbytes

    params = list(model.parameters())
    for p in params:
        add("parameters", p)
    for b in model.buffers():
        add("buffers", b)
    for p in params:
        add("gradients", p.grad)
    for state in optimizer.state.values():
        for value in state.values():
            add("optimizer_state", value)
    for t in inputs:
        add("inputs", t)
    for obj in gc.get_objects():
        # type(), not isinstance(): some objects (torch.distributed's reduce_op) warn
        # when their __class__ is read
        if issubclass(type(obj), torch.Tensor):
            add("other", obj)
    return out


@dataclasses.dataclass
class Allocation:
    """One allocator event: size > 0 allocates, < 0 frees `ptr`."""
    size: int
    ptr: int
    total: int  # the reporter's running total after the event
    stack: List[str]  # enclosing profiler ranges and ops, outermost first


@dataclasses.dataclass
class StepProfile:
    before: Dict[str, int]  # live bytes by holder before the step
    events: List[Allocation]
    quiet: List[dict]  # {"point", "event" (index of the last event before it), "direct"}
    tokens_per_expert: List[Dict[str, List[int]]]  # per micro-batch: MoE path -> counts
    grad_allocations: List[int]  # event indices of the allocations that became grads
    problems: List[str]  # failed checks, in words


class _MemoryProfile(torch.autograd.profiler.profile):
    """The profiler with memory events; on exit it keeps the raw results only."""

    def __init__(self):
        super().__init__(use_kineto=True, use_cpu=True, profile_memory=True)

    def __exit__(self, *exc):
        self.kineto_results = torch.autograd.profiler._disable_profiler()
        return False


def _flatten(roots):
    """(allocations as (time, order, Allocation)), (ranges as (name, start, end)) of the
    profiler's event tree; each allocation carries its ancestors' names."""
    events, ranges = [], []
    todo = [(root, ()) for root in reversed(roots)]
    while todo:
        node, stack = todo.pop()
        fields = node.extra_fields
        if type(fields).__name__.endswith("Allocation"):
            events.append((node.start_time_ns, len(events),
                           Allocation(int(fields.alloc_size), int(fields.ptr),
                                      int(fields.total_allocated), list(stack))))
            continue
        ranges.append((node.name, node.start_time_ns, node.end_time_ns))
        inner = stack + (node.name,)
        todo.extend((child, inner) for child in reversed(node.children))
    return events, ranges


def profile(model, optimizer, batches) -> StepProfile:
    """Profiles one training step over `batches` (one input_ids tensor per micro-batch).

    Run one step before (a warm-up) so that the optimizer state exists. The returned
    events are in allocation order.
    """
    before = live_tensor_bytes(model, optimizer, batches)
    quiet_points = []
    tokens = []
    blocks = [(name, m) for name, m in model.named_modules() if hasattr(m, "tokens_per_expert")]
    grad_ptrs = {}

    def quiet(point):
        with Range("quiet:" + point):
            if point.endswith("after_forward"):
                tokens.append({name: list(m.tokens_per_expert) for name, m in blocks})
                quiet_points.append({"point": point, "direct": None})
                return
            direct = live_tensor_bytes(model, optimizer, batches)
            quiet_points.append({"point": point, "direct": direct})
            if point.endswith("after_backward"):
                grad_ptrs[point] = {storage_of(p.grad)[0] for p in model.parameters()
                                    if p.grad is not None}

    with NoAllocatingRecordFunction(), _MemoryProfile() as prof:
        quiet("start")
        with ModuleScopes(model, profile_ranges=True):
            train_step(model, optimizer, batches, quiet)

    events, ranges = _flatten(prof.kineto_results.experimental_event_tree())
    events.sort(key=lambda e: (e[0], e[1]))
    times = [t for t, _, _ in events]
    allocations = [a for _, _, a in events]
    problems = []

    running = 0
    for i, a in enumerate(allocations):
        running += a.size
        if running != a.total:
            problems.append(f"event {i}: reported total {a.total} != running sum {running}")
            break

    for name, start, end in ranges:
        if not name.startswith("quiet:"):
            continue
        point = name[len("quiet:"):]
        q = next(q for q in quiet_points if q["point"] == point and "event" not in q)
        q["event"] = bisect.bisect_right(times, start) - 1
        inside = bisect.bisect_right(times, end) - 1
        if inside != q["event"]:
            problems.append(f"quiet point {point}: {inside - q['event']} allocator events "
                            "inside it")

    # The allocations that became gradients: live at a quiet point after a backward,
    # at an address that a parameter's .grad had there.
    live = {}
    grads = set()
    backward_points = {}
    for q in quiet_points:
        if q["point"].endswith("after_backward"):
            backward_points.setdefault(q["event"], []).append(q["point"])
    for i, a in enumerate(allocations):
        if a.size > 0:
            live[a.ptr] = i
        else:
            live.pop(a.ptr, None)
        for point in backward_points.get(i, []):
            grads.update(live[ptr] for ptr in grad_ptrs[point] if ptr in live)
    return StepProfile(before, allocations, quiet_points, tokens, sorted(grads), problems)
