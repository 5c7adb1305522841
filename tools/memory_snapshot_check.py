#!/usr/bin/python3
"""Reads a stepsim memory snapshot with torch's own code and prints its totals.

    /usr/bin/python3 tools/memory_snapshot_check.py SNAPSHOT

Loads the pickle, runs torch.cuda._memory_viz on it (torch 1.13's `stats`,
`segments` and `memory` take the segment list; today's `segsum`, `segments`,
`memory` and `trace` take the whole dict) and prints one JSON object:
segments, reserved_bytes (the segments' total_size, as _memory_viz adds
them), allocated_bytes (blocks in state active_allocated), requested_bytes
(what those blocks asked for), trace_entries, flamegraph_lines, and
rewinds: whether walking the trace back from the segments, as the viewer's
"Allocator State History" does, meets every block and segment where the
trace says and ends with nothing allocated (the trace starts at time 0).
The flamegraph text is kept as text (no flamegraph.pl is fetched).
"""
import json
import pickle
import sys

from torch.cuda import _memory_viz


def _subtract(ranges, addr, size):
    """Removes [addr, addr + size) from one of `ranges`; False if none holds it."""
    for i, (a, n) in enumerate(ranges):
        if a <= addr and addr + size <= a + n:
            rest = [(a, addr - a), (addr + size, a + n - addr - size)]
            ranges[i:i + 1] = [r for r in rest if r[1] > 0]
            return True
    return False


def rewinds(data):
    """Undoes the trace from the last event to the first, like MemoryViz.js."""
    blocks = {b["address"]: b["requested_size"] for s in data["segments"]
              for b in s["blocks"] if b["state"] == "active_allocated"}
    ranges = [(s["address"], s["total_size"]) for s in data["segments"]]
    for e in reversed(data["device_traces"][0]):
        action, addr, size = e["action"], e.get("addr"), e["size"]
        if action == "alloc":
            if blocks.pop(addr, None) != size:
                return False
        elif action == "free_completed":
            if addr in blocks:
                return False
            blocks[addr] = size
        elif action in ("segment_alloc", "segment_map"):
            if not _subtract(ranges, addr, size):
                return False
        elif action in ("segment_free", "segment_unmap"):
            ranges.append((addr, size))
    return not blocks and not ranges


def main(path):
    with open(path, "rb") as f:
        data = pickle.load(f)
    segments = data["segments"]
    keep_text = lambda lines: lines  # noqa: E731 - instead of flamegraph.pl
    if hasattr(_memory_viz, "stats"):  # torch 1.13: a list of segments
        stats = _memory_viz.stats(segments)
        reserved = stats["total_size"].value
        allocated = stats["active_allocated"].value if "active_allocated" in stats else 0
        lines = _memory_viz.segments(segments, format_flamegraph=keep_text)
        _memory_viz.memory(segments, format_flamegraph=keep_text)
    else:  # today's torch: the whole snapshot dict
        _memory_viz.segsum(data)
        _memory_viz.trace(data)
        lines = _memory_viz.segments(data, format_flamegraph=keep_text)
        _memory_viz.memory(data, format_flamegraph=keep_text)
        reserved = sum(s["total_size"] for s in segments)
        allocated = sum(b["size"] for s in segments for b in s["blocks"]
                        if b["state"] == "active_allocated")
    requested = sum(b["requested_size"] for s in segments for b in s["blocks"]
                    if b["state"] == "active_allocated")
    print(json.dumps({
        "segments": len(segments),
        "reserved_bytes": reserved,
        "allocated_bytes": allocated,
        "requested_bytes": requested,
        "trace_entries": sum(len(t) for t in data["device_traces"]),
        "flamegraph_lines": len(lines.splitlines()),
        "rewinds": rewinds(data),
    }, sort_keys=True))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
