#!/usr/bin/env bash
# Topics (issue 12): the filtered fan-out next to the unfiltered one, and nchan with a channel per
# topic: the workloads fanout-1k, fanout-10k and topics-10k-1000 of scripts/bench-compare.sh (which
# runs them, checks them and keeps the raw results), then a Markdown table of medians with the
# spread of the repetitions (BENCHMARKS.md, "Topics").
#
#   scripts/bench-topics.sh                                    # 3 repetitions, about 6 minutes
#   REPS=1 SKIP_BUILD=1 SCRATCH=.build-release BEFORE_BIN=… scripts/bench-topics.sh
#
# BEFORE_BIN, optional, is an older sse-console (e.g. built from the commit before topics: git
# worktree add /tmp/before <commit> && (cd /tmp/before && swift build -c release --product
# sse-console)), run as a third broker: its rows are "before" (a build without topics fails the
# topics workload's verification, which is a warning, not a refusal). The comparison's report goes
# to OUT (default ${TMPDIR:-/tmp}/bench-topics.md), its results and chart beside it; OUT_JSONL, if
# set, gets a copy of the results. A run that lost events is refused as there (exit 1), its table
# printed all the same.
set -euo pipefail
cd "$(dirname "$0")/.."

. scripts/bench-lib.sh

OUT=${OUT:-${TMPDIR:-/tmp}/bench-topics.md}
compare_workloads 'fanout-1k|fanout-10k|topics-10k-1000'

python3 - "$COMPARE_RESULTS" <<'PY'
import sys
sys.path.insert(0, "scripts")
from bench_summary import cell, cpu, load, p99, pick, rate, verified
runs = load(sys.argv[1])
print("| workload | broker | CPU µs / delivered event | delivered/s | p99 latency (ms) | verified (every subscriber exactly its events, in order) |")
print("|---|---|--:|--:|--:|---|")
labels = {"before": "ours, before (BEFORE_BIN)", "ours": "ours", "nchan": "nchan (a channel per topic)"}
for name, title in [("fanout-1k", "fanout, 1,000 subscribers"), ("fanout-10k", "fanout, 10,000 subscribers"),
                    ("topics-10k-1000", "topics: 10,000 subscribers over 1,000 topics")]:
    for broker in labels:
        rs = pick(runs, broker, name)
        if rs:
            print(f"| {title} | {labels[broker]} | {cell(rs, cpu)} | {cell(rs, rate, 0)} | {cell(rs, p99)} | {verified(rs)} |")
print()
print(f"Medians of {max(r['rep'] for r in runs)} runs, (min–max) of the runs in brackets.")
PY
exit "$COMPARE_STATUS"
