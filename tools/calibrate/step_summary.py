"""What a profiled step says: bytes before, the peak and where, after, and the checks.

`summarize(step)` turns a step_memory.StepProfile into plain data (ints, strings, lists,
dicts) for measure.py's JSON: no times (they vary run to run), only bytes, event
indices and names, so the same run gives the same output.

Where an allocation happened is its stack of profiler ranges, outermost first: the phase
("mb1.backward"), module forwards ("module:model.layers.0.mlp"), autograd nodes
("autograd::engine::evaluate_function: MmBackward0") and aten ops. `where()` condenses it
to phase, micro-batch, pass, module, autograd node and the outermost aten op.
"""

import re
from typing import Dict, List

from step_memory import StepProfile

_PHASE = re.compile(r"^mb(\d+)\.(forward|backward)$")
_NODE = "autograd::engine::evaluate_function: "
TOP_ALLOCATIONS = 12  # largest live allocations listed at the peak


def where(stack: List[str]) -> dict:
    """The phase, micro-batch, pass, module, autograd node and op of an allocation."""
    out = {"phase": stack[0] if stack else "", "microbatch": -1, "pass": "",
           "module": "", "autograd_node": "", "op": ""}
    m = _PHASE.match(out["phase"])
    if m:
        out["microbatch"], out["pass"] = int(m.group(1)), m.group(2)
    elif out["phase"] in ("optimizer.step", "zero_grad"):
        out["pass"] = "optimizer"
    innermost = 0
    for i, name in enumerate(stack):
        if name.startswith("module:"):
            out["module"], innermost = name[len("module:"):], i
        elif name.startswith(_NODE):
            out["autograd_node"], innermost = name[len(_NODE):], i
    out["op"] = next((n for n in stack[innermost:] if n.startswith("aten::")), "")
    return out


def _point_bytes(step: StepProfile, base: int, event: int) -> int:
    return base + (step.events[event].total if event >= 0 else 0)


def summarize(step: StepProfile, kept_bytes: int, kept_input_bytes: int,
              host_bytes: int = 0) -> dict:
    """`kept_bytes`: what saved_tensors.measure found one micro-batch's forward keeps,
    `kept_input_bytes` the part of it in storages that existed before the forward,
    `host_bytes` the RNG states its checkpoints stashed (allocated on the CPU here)."""
    base = sum(step.before.values())
    events = step.events
    values = [base + a.total for a in events]
    peak_i = max(range(len(values)), key=lambda i: (values[i], -i)) if values else -1
    peak_bytes = values[peak_i] if values else base
    after_bytes = values[-1] if values else base

    checks = []
    quiet = {}
    for q in step.quiet:
        value = _point_bytes(step, base, q["event"])
        quiet[q["point"]] = value
        if q["direct"] is None:
            continue
        direct = sum(q["direct"].values())
        checks.append({"point": q["point"], "profiler_bytes": value, "direct_bytes": direct,
                       "direct": dict(q["direct"]), "equal": value == direct})

    # Bytes a micro-batch's forward leaves allocated: its saved tensors (those made by
    # the forward, i.e. not the input), the RNG states its checkpoints stashed and the
    # loss scalar the loop holds.
    retained = []
    previous = quiet.get("start", base)
    for i in range(len(step.tokens_per_expert)):
        after_forward = quiet[f"mb{i}.after_forward"]
        retained.append({"microbatch": i, "bytes": after_forward - previous,
                         "expected_bytes": kept_bytes - kept_input_bytes + host_bytes + 4})
        previous = quiet[f"mb{i}.after_backward"]

    return {
        "before_bytes": base,
        "before": dict(step.before),
        "peak_bytes": peak_bytes,
        "peak": _at(step, peak_i, base) if peak_i >= 0 else {},
        "after_bytes": after_bytes,
        "phases": _phases(step, values, base),
        "forward_retained": retained,
        "checks": {"quiet_points": checks, "problems": list(step.problems),
                   "ok": not step.problems and all(c["equal"] for c in checks) and all(
                       r["bytes"] == r["expected_bytes"] for r in retained)},
        "tokens_per_expert": [dict(t) for t in step.tokens_per_expert],
        "allocator_events": len(events),
    }


def _phases(step: StepProfile, values: List[int], base: int) -> List[dict]:
    """Contiguous stretches of events with the same outermost range, in order: each
    phase's bytes at its start, its peak and its end, and the peak's place. Events
    between ranges (freeing the previous loss) form phases named ""."""
    out: List[dict] = []
    peaks: List[int] = []
    for i, a in enumerate(step.events):
        phase = a.stack[0] if a.stack else ""
        if not out or out[-1]["phase"] != phase:
            start = values[i - 1] if i else base
            out.append({"phase": phase, "start_bytes": start, "peak_bytes": start,
                        "end_bytes": start, "peak": {}})
            peaks.append(-1)
        cur = out[-1]
        cur["end_bytes"] = values[i]
        if values[i] > cur["peak_bytes"]:
            cur["peak_bytes"], peaks[-1] = values[i], i
    for cur, i in zip(out, peaks):
        if i >= 0:
            cur["peak"] = _at(step, i, base)
    return out


def _at(step: StepProfile, peak_i: int, base: int) -> dict:
    """Where allocation event `peak_i` happened and what was alive then: static state,
    gradients, this micro-batch's forward (what autograd keeps plus forward outputs still
    alive), the current phase's transients, other, and the largest live allocations with
    where they were made."""
    peak = step.events[peak_i]
    at = where(peak.stack)
    live: Dict[int, int] = {}
    for i in range(peak_i + 1):
        a = step.events[i]
        if a.size > 0:
            live[a.ptr] = i
        else:
            live.pop(a.ptr, None)
    grads = set(step.grad_allocations)
    parts = {"static": base, "gradients": 0, "forward": 0, "current_phase": 0, "other": 0}
    forward_phase = f"mb{at['microbatch']}.forward" if at["microbatch"] >= 0 else None
    listed = []
    for i in live.values():
        a = step.events[i]
        phase = a.stack[0] if a.stack else ""
        if i in grads:
            kind = "gradients"
        elif phase == at["phase"]:
            kind = "current_phase"
        elif phase == forward_phase:
            kind = "forward"
        else:
            kind = "other"
        parts[kind] += a.size
        if kind != "gradients":
            listed.append((a.size, i, kind, a))
    listed.sort(key=lambda x: (-x[0], x[1]))
    largest = [dict(where(a.stack), bytes=size, event=i, kind=kind)
               for size, i, kind, a in listed[:TOP_ALLOCATIONS]]
    return dict(at, event=peak_i, alloc_bytes=peak.size, stack=list(peak.stack),
                composition=parts, largest_live=largest)
