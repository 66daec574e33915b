#!/usr/bin/env bash
# The cost of `--history-file`: sse-console --no-tui with and without it, loaded by sse-bench on
# loopback, alternating, REPS times each; prints a Markdown table of medians (BENCHMARKS.md,
# "Durable history") and keeps the raw results.
#
#   scripts/bench-history.sh                     # 3 repetitions, about 3 minutes
#   REPS=2 SCRATCH=.build scripts/bench-history.sh
#
# Pinned like scripts/bench-compare.sh: the broker to CPU 0, sse-bench to CPU 1. Each run gets a
# fresh broker and, with the option, a fresh history file in a temporary directory (same disk as
# /tmp). Only 127.0.0.1 is loaded.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/bench-lib.sh

REPS=${REPS:-3}

build_release
bench_workdir history
stop_broker() { stop_process; }

# $1: "off", or "on" for a fresh --history-file.
start_broker() {
  local extra=()
  [ "$1" = on ] && extra=(--history-file "$WORK/history.$RANDOM.sqlite")
  start_console "$BIN/sse-console" "${extra[@]}"
}

# name | sse-bench arguments
WORKLOADS=(
  "fanout-100|fanout -n 100 --publishers 8 --duration 5 --sub-path /connect?id={id} --pub-path /broadcast"
  "fanout-1k|fanout -n 1000 --publishers 8 --duration 5 --sub-path /connect?id={id} --pub-path /broadcast"
  "targeted-1k|targeted -n 1000 --publishers 8 --duration 5 --sub-path /connect?id={id} --pub-path /broadcast?id={id}"
  # A fixed rate: the same work with and without the file, so the broker's CPU time is the cost.
  "targeted-1k-5keps|targeted -n 1000 --publishers 8 --rate 5000 --duration 5 --sub-path /connect?id={id} --pub-path /broadcast?id={id}"
)

for rep in $(seq 1 "$REPS"); do
  for entry in "${WORKLOADS[@]}"; do
    IFS='|' read -r name args <<<"$entry"
    for mode in off on; do
      echo "== rep $rep: $name, history $mode" >&2
      start_broker "$mode"
      # shellcheck disable=SC2086
      json=$(timeout 180 taskset -c "$BENCH_CPU" "$BIN/sse-bench" $args --port "$PORT" --pid "$BROKER_PID" --json)
      python3 -c 'import json,sys; r=json.loads(sys.argv[1]); r.update(mode=sys.argv[2], name=sys.argv[3], rep=int(sys.argv[4])); print(json.dumps(r))' \
        "$json" "$mode" "$name" "$rep" >>"$RESULTS"
      stop_broker
    done
  done
done

cp "$RESULTS" "$SCRATCH/bench-history-results.jsonl"
echo "raw results: $SCRATCH/bench-history-results.jsonl" >&2
python3 - "$RESULTS" "$REPS" <<'PY'
import json, statistics, sys
runs = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
reps = sys.argv[2]
def med(name, mode, key):
    values = [r[key] for r in runs if r["name"] == name and r["mode"] == mode and r.get(key) is not None]
    return statistics.median(values) if values else float("nan")
print(f"| workload | history file | published events/s | delivered events/s | broker CPU µs / delivered event | broker CPU µs / published event | broker CPU % | p99 ms | completeness | runs |")
print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
for name in dict.fromkeys(r["name"] for r in runs):
    for mode in ("off", "on"):
        pub = med(name, mode, "publishedPerSecond")
        sel = [r for r in runs if r["name"] == name and r["mode"] == mode]
        per_pub = statistics.median(r["brokerCPUSeconds"] * 1e6 / r["published"] for r in sel if r.get("published"))
        p99 = statistics.median(r["latency"]["p99Ms"] for r in sel if r.get("latency"))
        print(f"| {name} | {mode} | {pub:,.0f} | {med(name, mode, 'deliveredPerSecond'):,.0f} | "
              f"{med(name, mode, 'brokerCPUMicrosPerEvent'):.3f} | {per_pub:.2f} | {med(name, mode, 'brokerCPUPercent'):.1f} | {p99:.2f} | {med(name, mode, 'completeness'):.6f} | {len(sel)} |")
    off, on = med(name, "off", "brokerCPUMicrosPerEvent"), med(name, "on", "brokerCPUMicrosPerEvent")
    print(f"<!-- {name}: broker CPU per delivered event with the history file {100 * (on - off) / off:+.1f}% -->")
PY
