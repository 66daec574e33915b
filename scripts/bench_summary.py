"""What the benchmark scripts' tables share: the runs of a results.jsonl (one sse-bench JSON report
per line, tagged with the broker's label, the workload's name and the repetition) and a cell of a
Markdown table: the median of the runs with the spread (min–max) in brackets.
Imported by the scripts' inline summaries: sys.path.insert(0, "scripts"); import bench_summary."""
import json
import statistics


def load(path):
    return [json.loads(line) for line in open(path) if line.strip()]


def pick(runs, broker, name):
    return [r for r in runs if r["broker"] == broker and r["name"] == name]


def values(runs, key):
    return [key(r) for r in runs if key(r) is not None]


def cell(runs, key, digits=2):
    v = values(runs, key)
    if not v:
        return "–"
    spread = f" ({min(v):.{digits}f}–{max(v):.{digits}f})" if len(v) > 1 else ""
    return f"{statistics.median(v):.{digits}f}{spread}"


def cpu(run):
    return run.get("brokerCPUMicrosPerEvent")


def p99(run):
    return run["latency"]["p99Ms"] if run.get("latency") and run["latency"]["samples"] else None


def rate(run):
    return run.get("deliveredPerSecond")


def verified(runs):
    return f"{sum(1 for r in runs if r.get('verified'))} of {len(runs)} runs"
