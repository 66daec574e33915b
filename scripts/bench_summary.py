"""What the benchmark scripts' reports share: the runs of a results.jsonl (one sse-bench JSON report
per line, tagged with the broker's label, the workload's name, the repetition, the time and the
machine), the metrics read from a run, a cell of a Markdown table (the median of the runs with the
spread, min–max, in brackets), ratios (of two medians, and paired by repetition), the workloads of scripts/bench-compare.sh with their titles, and
what makes a run lossy (`problems`).
Imported by scripts/bench_compare_report.py, scripts/bench_chart.py and the scripts' inline
summaries: sys.path.insert(0, "scripts"); import bench_summary."""
import json
import os
import platform
import statistics


def load(path):
    return [json.loads(line) for line in open(path) if line.strip()]


def pick(runs, broker, name):
    return [r for r in runs if r["broker"] == broker and r["name"] == name]


def values(runs, key):
    return [key(r) for r in runs if key(r) is not None]


def median(runs, key):
    v = values(runs, key)
    return statistics.median(v) if v else None


def ratio(a, b):
    return a / b if a is not None and b not in (None, 0) else None


def paired_ratio(runs, base_runs, key):
    """The median over the repetitions of run / base run of the same repetition. The brokers of a
    repetition run back to back, so this cancels the machine's drift between repetitions (±20-35 %
    on the VM of the recorded runs, in nchan's figures as in ours), which the ratio of the two
    medians does not: the same build's ratio to nchan moved from 0.47 to 0.51 between two runs by
    medians, and stayed at 0.44 by repetitions. Without a repetition in common: the ratio of the
    medians."""
    by_rep = {r["rep"]: key(r) for r in base_runs if key(r) is not None}
    pairs = [ratio(key(r), by_rep.get(r["rep"])) for r in runs if key(r) is not None]
    pairs = [x for x in pairs if x is not None]
    return statistics.median(pairs) if pairs else ratio(median(runs, key), median(base_runs, key))


def cell(runs, key, digits=2):
    v = values(runs, key)
    if not v:
        return "–"
    spread = f" ({min(v):,.{digits}f}–{max(v):,.{digits}f})" if len(v) > 1 else ""
    return f"{statistics.median(v):,.{digits}f}{spread}"


def cpu(run):
    return run.get("brokerCPUMicrosPerEvent")


def p50(run):
    return run["latency"]["p50Ms"] if run.get("latency") and run["latency"]["samples"] else None


def p99(run):
    return run["latency"]["p99Ms"] if run.get("latency") and run["latency"]["samples"] else None


def rate(run):
    return run.get("deliveredPerSecond")


def kib_per_connection(run):
    v = run.get("brokerRSSPerConnectionBytes")
    return v / 1024 if v is not None else None


def rss_growth_mib(run):
    v = run.get("brokerRSSGrowthBytes")
    return v / 1048576 if v is not None else None


def verified(runs):
    return f"{sum(1 for r in runs if r.get('verified'))} of {len(runs)} runs"


# The workloads of scripts/bench-compare.sh in the order of its table: name, title, short label
# (the chart's axis).
WORKLOADS = [
    ("fanout-100", "fanout to 100", "fanout\n100"),
    ("fanout-1k", "fanout to 1,000", "fanout\n1k"),
    ("fanout-10k", "fanout to 10,000", "fanout\n10k"),
    ("fanout-1k-20eps", "20 events/s to 1,000", "20 ev/s\nto 1k"),
    ("targeted-1k", "targeted, 1,000 subscribers (one HTTP publish per event)", "targeted\n1k"),
    ("topics-10k-1000", "topics: 10,000 subscribers over 1,000 topics", "topics\n10k/1k"),
    ("fanout-1k-tls", "fanout to 1,000 over TLS (HTTP/1.1)", "fanout 1k\nTLS"),
    ("fanout-1k-h2", "fanout to 1,000 over h2/TLS (1,000 streams on 10 connections)", "fanout 1k\nh2/TLS"),
    ("slow-1k", "slow: 1,000 subscribers, 10 not reading, 8 KiB events", "slow\n1k"),
    ("idle-10k", "idle, 10,000 connections", "idle\n10k"),
]
TITLES = {name: title for name, title, _ in WORKLOADS}


def problems(run):
    """Why a run cannot stand in a comparison: events lost (completeness, or the healthy
    subscribers' in the slow workload, below 1), sse-bench's verification failed (a subscriber's
    set of events not exactly the accepted ones, ids repeated or going back, a publisher's events
    out of order), or not every subscriber connected (or, idle, stayed connected). Empty if none."""
    out = []
    n, connected = run.get("subscribers"), run.get("subscribersConnected")
    if n is not None and connected is not None and connected < n:
        out.append(f"{connected} of {n} subscribers connected")
    for key, what in (("completeness", "completeness"), ("healthyCompleteness", "healthy completeness")):
        v = run.get(key)
        if v is not None and v < 1:
            out.append(f"{what} {v:.6f}")
    if run.get("verified") is False:
        out.append(f"not verified ({run.get('subscribersWithWrongSet', '?')} subscribers with a wrong event set, "
                   f"{run.get('subscribersOutOfOrder', '?')} out of order)")
    for key, what in (("duplicateIDs", "ids repeated"), ("idsOutOfOrder", "ids going back"),
                      ("publisherOrderViolations", "publisher order violations")):
        if run.get(key):
            out.append(f"{what}: {run[key]}")
    if run.get("workload") == "idle" and run.get("subscribersClosed"):
        out.append(f"{run['subscribersClosed']} idle connections closed")
    return out


def machine():
    """This machine in a few words: CPUs, CPU model, kernel."""
    model = platform.processor() or "unknown CPU"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} CPUs, {model}, {platform.system()} {platform.release()}"
