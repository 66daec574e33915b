#!/usr/bin/env bash
# TLS and HTTP/2 (issue 13): fan-out to 1,000 subscribers over plain HTTP/1.1, over TLS HTTP/1.1,
# and over h2 (TLS, 1,000 streams on 10 connections), this broker next to nchan behind nginx's own
# `ssl http2` listener: the workloads fanout-1k, fanout-1k-tls and fanout-1k-h2 of
# scripts/bench-compare.sh (which runs them, checks them and keeps the raw results), then a Markdown
# table of BENCHMARKS.md's "TLS and HTTP/2" section (each against its broker's plain HTTP/1.1).
#
#   scripts/bench-http2.sh                                     # 3 repetitions, about 4 minutes
#   REPS=1 SKIP_BUILD=1 SCRATCH=.build-release scripts/bench-http2.sh
#
# The comparison's report goes to OUT (default ${TMPDIR:-/tmp}/bench-http2.md), its results and
# chart beside it (bench-compare.sh says where); OUT_JSONL, if set, gets a copy of the results. A
# run that lost events is refused as there (exit 1), its table printed all the same.
set -euo pipefail
cd "$(dirname "$0")/.."

. scripts/bench-lib.sh

OUT=${OUT:-${TMPDIR:-/tmp}/bench-http2.md}
compare_workloads 'fanout-1k|fanout-1k-tls|fanout-1k-h2'

python3 - "$COMPARE_RESULTS" <<'PY'
import statistics, sys
sys.path.insert(0, "scripts")
from bench_summary import cell, cpu, load, p99, pick, rate, values, verified
runs = load(sys.argv[1])
print("| fan-out to 1,000 | broker | CPU µs / delivered event | vs plain HTTP/1.1 | delivered/s | p99 latency (ms) | verified |")
print("|---|---|--:|--:|--:|--:|---|")
titles = {"fanout-1k": "plain HTTP/1.1", "fanout-1k-tls": "TLS, HTTP/1.1", "fanout-1k-h2": "TLS, h2 (1,000 streams on 10 connections)"}
labels = {"ours": "this broker", "nchan": "nchan (one nginx worker; `ssl http2` listener for TLS)"}
for name in titles:
    for broker in labels:
        rs = pick(runs, broker, name)
        if not rs:
            continue
        base = values(pick(runs, broker, "fanout-1k"), cpu)
        mine = values(rs, cpu)
        ratio = f"{statistics.median(mine) / statistics.median(base):.2f}×" if base and mine else "–"
        print(f"| {titles[name]} | {labels[broker]} | {cell(rs, cpu)} | {ratio} | {cell(rs, rate, 0)} | {cell(rs, p99)} | {verified(rs)} |")
print()
print(f"Medians of {max(r['rep'] for r in runs)} runs, (min–max) of the runs in brackets.")
PY
exit "$COMPARE_STATUS"
