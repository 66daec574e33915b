#!/usr/bin/env python3
"""The chart of a scripts/bench-compare.sh run, this broker beside nchan per workload: broker CPU
microseconds per delivered event (top) and latency p50 / p99 in milliseconds (bottom); bars are
the medians of the repetitions, error bars their min–max; log scales where the values span more
than a factor of 20. 1400x700 pixels.

  python3 scripts/bench_chart.py RESULTS.jsonl OUT.png

Needs matplotlib: python3 -m pip install -r scripts/requirements-bench.txt"""
import argparse
import datetime
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_summary import WORKLOADS, cpu, load, machine, median, p50, p99, paired_ratio, pick, values  # noqa: E402

try:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
except ImportError:
    sys.exit("bench_chart.py needs matplotlib: python3 -m pip install -r scripts/requirements-bench.txt")

BROKERS = [("ours", "this broker", "#1f77b4"), ("nchan", "nchan", "#ff7f0e")]
# benchmarks/nio-floor, where it ran: a dashed line across the pair (the least a broker on SwiftNIO's
# HTTP/1 codecs does).
FLOOR = "nio-floor"


def bar(ax, x, runs, key, width, face, edge, label, **style):
    """One bar: the median of the runs' values with their min–max as the error bar (none if no value)."""
    v = values(runs, key)
    if not v:
        return None
    m = median(runs, key)
    ax.bar(x, m, width, color=face, edgecolor=edge, label=label, **style)
    ax.errorbar(x, m, yerr=[[m - min(v)], [max(v) - m]], fmt="none", ecolor="black", elinewidth=1, capsize=3)
    return max(v)


def legend(ax, **options):
    """One entry per label (every workload's bars carry theirs)."""
    handles, labels = ax.get_legend_handles_labels()
    unique = dict(zip(labels, handles))
    ax.legend(unique.values(), unique.keys(), **options)


def scale(ax, tops):
    """A log scale when the values span more than a factor of 20."""
    tops = [t for t in tops if t]
    if tops and max(tops) / min(tops) > 20:
        ax.set_yscale("log")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("results")
    parser.add_argument("out")
    a = parser.parse_args()
    everything = load(a.results)
    floors = [r for r in everything if r["broker"] == FLOOR]
    runs = [r for r in everything if r["broker"] in dict((b, 0) for b, _, _ in BROKERS)]
    shown = [(name, label) for name, _, label in WORKLOADS
             if any(values(pick(runs, b, name), cpu) or values(pick(runs, b, name), p99) for b, _, _ in BROKERS)]
    if not shown:
        sys.exit(f"bench_chart.py: no run of this broker or nchan with CPU per event or latency in {a.results}")
    stamps = sorted(r["at"] for r in runs if r.get("at"))
    date = stamps[-1][:10] if stamps else datetime.date.fromtimestamp(os.path.getmtime(a.results)).isoformat()
    host = next((r["machine"] for r in runs if r.get("machine")), None) or machine()
    reps = max(r["rep"] for r in runs)

    plt.rcParams.update({"font.size": 11})
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(14, 7), dpi=100, sharex=True, layout="constrained")
    xs = range(len(shown))

    # CPU per delivered event: ours beside nchan, the ratio above each pair.
    tops = []
    for x, (name, _) in zip(xs, shown):
        highs = []
        for i, (broker, label, color) in enumerate(BROKERS):
            highs.append(bar(top, x + (i - 0.5) * 0.38, pick(runs, broker, name), cpu, 0.38, color, color, label))
        tops += highs
        floor = median(pick(floors, FLOOR, name), cpu)
        if floor is not None:
            top.hlines(floor, x - 0.42, x + 0.42, colors="black", linestyles="dashed", linewidth=1.5,
                       label="SwiftNIO floor (benchmarks/nio-floor)")
        r = paired_ratio(pick(runs, "ours", name), pick(runs, "nchan", name), cpu)
        if r is not None:
            top.annotate(f"{r:.2f}×", (x, max(h for h in highs if h)), xytext=(0, 4),
                         textcoords="offset points", ha="center", va="bottom", fontsize=10)
    scale(top, tops)
    top.margins(y=0.15)
    top.set_ylabel("broker CPU µs\nper delivered event")
    top.set_title("Broker CPU per delivered event (lower is better; ours / nchan above each pair: the median of each run's ratio)", fontsize=11)
    legend(top, loc="upper left", bbox_to_anchor=(1.005, 1), fontsize=10)
    top.grid(axis="y", alpha=0.3, which="both")

    # Latency p50 and p99: four bars per workload.
    tops = []
    for x, (name, _) in zip(xs, shown):
        for i, (broker, label, color) in enumerate(BROKERS):
            rs = pick(runs, broker, name)
            tops.append(bar(bottom, x + (2 * i - 1.5) * 0.2, rs, p50, 0.2, color, color, f"{label}, p50"))
            tops.append(bar(bottom, x + (2 * i - 0.5) * 0.2, rs, p99, 0.2, "white", color,
                            f"{label}, p99", hatch="///", linewidth=1.5))
    scale(bottom, tops)
    bottom.set_ylabel("latency (ms)")
    bottom.set_title("Latency, publish to a subscriber's read: p50 (filled) and p99 (hatched)", fontsize=11)
    legend(bottom, loc="upper left", bbox_to_anchor=(1.005, 1), fontsize=10)
    bottom.grid(axis="y", alpha=0.3, which="both")
    bottom.set_xticks(list(xs), [label for _, label in shown])
    if any(r["name"] == "idle-10k" for r in runs):
        bottom.set_xlabel("workload (idle 10k measures memory per connection: see the table)", fontsize=10)

    fig.suptitle(f"This broker vs nchan, medians of {reps} run{'s' if reps > 1 else ''} (error bars: min–max)"
                 f" — {date}, {host}", fontsize=12)
    fig.savefig(a.out, dpi=100)
    print(f"wrote {a.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
