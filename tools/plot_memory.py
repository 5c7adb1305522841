#!/usr/bin/python3
"""Draws memory over one training step, per pipeline rank, for `stepsim plot`.

Fed by what `stepsim plot` writes for it: the CSV timeline (columns of
traces/timeline_csv.h, bytes), the steps each rank ran and its gradient
reduction (rank,step,kind,start_us,end_us; kind F, B, W, BW, DP, OPT the
optimizer step, or AG the weights' all-gather after it under ZeRO-1/2) and the
report JSON (peaks, capacities). Per rank, a panel
of memory stacked by category in GiB (2^30 bytes), the peak marked with its
op, the caching allocator's reserved bytes as a line over the stack (when the
CSV has its `reserved` column: allocator.kind CACHING), the device capacity
as a line, and the schedule's steps as a strip below. Prints, per rank, the
highest total it drew, and the highest reserved, in bytes, so that tests can
hold them to the report.

    /usr/bin/python3 tools/plot_memory.py --timeline T.csv --steps S.csv \\
        --report R.json --ranks 0,3 --out memory.png
"""

import argparse
import json
import sys

import matplotlib

matplotlib.use("Agg")  # files only, no display
matplotlib.rcParams["svg.hashsalt"] = "stepsim"
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402
import pandas as pd  # noqa: E402

GIB = float(1 << 30)
COLORS = {"weights": "#4c72b0", "gradients": "#8172b3", "optimizer": "#64b5cd",
          "activations": "#dd8452", "recompute": "#c44e52",
          "output_grads": "#e377c2", "comm": "#55a868",
          "workspace": "#ccb974", "framework": "#8c8c8c"}
OTHER_COLORS = ["#937860", "#da8bc3", "#4c4c4c"]
RESERVED_COLOR = "#222222"
STEP_COLORS = {"F": "#6baed6", "B": "#fd8d3c", "W": "#74c476", "BW": "#9e9ac8",
               "DP": "#969696", "OPT": "#bcbd22", "AG": "#636363"}
STEP_LABELS = {"DP": "DP reduction", "OPT": "optimizer step", "AG": "weights all-gather"}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timeline", required=True)
    parser.add_argument("--steps", required=True)
    parser.add_argument("--report", required=True)
    parser.add_argument("--ranks", required=True, help="comma-separated pipeline ranks")
    parser.add_argument("--out", required=True, help="FILE.png or FILE.svg")
    args = parser.parse_args()

    timeline = pd.read_csv(args.timeline)
    # The stacked categories: the columns between "op" and "total".
    columns = list(timeline.columns)
    categories = columns[columns.index("op") + 1:columns.index("total")]
    reserved = "reserved" in columns
    colors = [COLORS.get(c, OTHER_COLORS[i % len(OTHER_COLORS)]) for i, c in enumerate(categories)]
    steps = pd.read_csv(args.steps)
    with open(args.report, encoding="utf-8") as f:
        report = json.load(f)
    ranks = [int(r) for r in args.ranks.split(",")]
    by_rank = {int(r["pp_rank"]): r for r in report["ranks"]}
    # (rank, seq) is the CSV's key: one series per rank, in order.
    pivot = timeline.pivot(index="seq", columns="rank", values="total")
    assert pivot.shape[1] == len(by_rank), "a total column per rank"

    fig, axes = plt.subplots(
        2 * len(ranks), 1, figsize=(11, 3.2 * len(ranks)), sharex=True, squeeze=False,
        gridspec_kw={"height_ratios": [6, 1] * len(ranks), "hspace": 0.15})
    step_ms = float(report["step_time_us"]) / 1e3
    for i, rank in enumerate(ranks):
        ax, strip = axes[2 * i][0], axes[2 * i + 1][0]
        rows = timeline[timeline["rank"] == rank].sort_values("seq")
        t = rows["time_us"].to_numpy() / 1e3
        ax.stackplot(t, *[rows[c].to_numpy() / GIB for c in categories], step="post",
                     labels=categories, colors=colors, linewidth=0)
        drawn_max = int(rows[categories].sum(axis=1).max())
        top_gib = drawn_max / GIB
        if reserved:
            ax.step(t, rows["reserved"].to_numpy() / GIB, where="post", color=RESERVED_COLOR,
                    linewidth=1.1, zorder=4)
            reserved_max = int(rows["reserved"].max())
            top_gib = max(top_gib, reserved_max / GIB)
        r = by_rank[rank]
        peak_ms = float(r["peak_time_us"]) / 1e3
        peak_gib = int(r["peak_bytes"]) / GIB
        ax.plot([peak_ms], [peak_gib], marker="v", color="black", markersize=7, zorder=5)
        over = "" if r["fits"] else ", over capacity"
        ax.annotate(f"peak {peak_gib:.2f} GiB{over}\n{r['peak_op']} ({r['peak_step'] or '-'})",
                    (peak_ms, peak_gib), textcoords="offset points", xytext=(8, 6), fontsize=8)
        capacity = int(r["capacity_bytes"]) / GIB
        top_gib = max(top_gib, peak_gib)
        if capacity < 2 * top_gib:
            ax.axhline(capacity, color="black", linestyle="--", linewidth=1)
            ax.text(step_ms, capacity, f"capacity {capacity:.2f} GiB ", va="bottom", ha="right",
                    fontsize=8)
            ax.set_ylim(0, max(capacity, top_gib) * 1.12)
        else:  # a line far above the data would flatten it
            ax.text(step_ms, top_gib * 1.2, f"capacity {capacity:.2f} GiB (off scale) ",
                    va="top", ha="right", fontsize=8)
            ax.set_ylim(0, top_gib * 1.25)
        ax.set_ylabel(f"rank {rank}\nGiB")
        ax.grid(axis="y", alpha=0.3)
        mine = steps[steps["rank"] == rank]
        for kind, color in STEP_COLORS.items():
            spans = mine[mine["kind"] == kind]
            strip.broken_barh(list(zip(spans["start_us"] / 1e3,
                                       (spans["end_us"] - spans["start_us"]) / 1e3)),
                              (0, 1), facecolors=color, edgecolor="white", linewidth=0.3)
        strip.set_yticks([])
        strip.set_ylabel("steps", rotation=0, ha="right", va="center", fontsize=8)
        print(f"rank {rank}: drew at most {drawn_max} bytes, peak marked at "
              f"{float(r['peak_time_us']):.3f} us")
        if reserved:
            print(f"rank {rank}: drew reserved at most {reserved_max} bytes")
    handles = [Patch(color=color, label=c) for c, color in zip(categories, colors)]
    if reserved:
        handles.append(Line2D([], [], color=RESERVED_COLOR, linewidth=1.1, label="reserved"))
    handles += [Patch(color=STEP_COLORS[k], label=STEP_LABELS.get(k, f"step {k}"))
                for k in STEP_COLORS]
    axes[0][0].legend(handles=handles, loc="lower left", bbox_to_anchor=(0, 1.02),
                      ncol=len(handles), fontsize=7, frameon=False, handlelength=1.2,
                      columnspacing=0.9)
    axes[0][0].set_title(f"{report['model']} ({report['scenario']}): {report['schedule']}, "
                         f"PP{report['pp']}, {report['microbatches']} micro-batches: memory by "
                         f"category (GiB = 2^30 bytes)", fontsize=10, pad=22)
    axes[-1][0].set_xlabel("ms")
    axes[-1][0].set_xlim(0, step_ms)
    # Same input, same bytes: no date in an SVG, and its ids from a fixed salt.
    svg = args.out.endswith(".svg")
    fig.savefig(args.out, dpi=110, bbox_inches="tight", metadata={"Date": None} if svg else None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
