#!/usr/bin/env bash
# Topics (issue 12): the filtered fan-out next to the unfiltered one, before and after topics, and
# nchan with a channel per topic, in one run; prints a Markdown table of medians with the spread of
# the repetitions (BENCHMARKS.md, "Topics") and keeps the raw results.
#
#   BEFORE_BIN=/path/to/old/sse-console scripts/bench-topics.sh    # 3 repetitions, about 5 minutes
#   REPS=1 SKIP_BUILD=1 SCRATCH=.build-release BEFORE_BIN=… scripts/bench-topics.sh
#
# BEFORE_BIN is an sse-console built from the commit before topics (without it, the "before" rows
# are left out): git worktree add /tmp/before <commit> && (cd /tmp/before && swift build -c release
# --product sse-console). Pinned like scripts/bench-compare.sh: the broker to CPU 0, sse-bench to
# CPU 1, a fresh broker per run, brokers alternating. Only 127.0.0.1 is loaded.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/bench-lib.sh

REPS=${REPS:-3}
BEFORE_BIN=${BEFORE_BIN:-}

build_release
need_nchan

bench_workdir topics


# workload | sse-bench arguments (ours; nchan's paths are added for nchan)
FANOUT_1K="fanout-1k|fanout -n 1000 --publishers 8 --duration 5"
FANOUT_10K="fanout-10k|fanout -n 10000 --publishers 8 --duration 5 --connect-batch 500"
TOPICS_10K="topics-10k-1000|topics -n 10000 --topics 1000 --publishers 8 --duration 5 --connect-batch 500"

# run_one BROKER(before|after|nchan) ENTRY REP
run_one() {
  local broker=$1 entry=$2 rep=$3 name args paths=""
  IFS='|' read -r name args <<<"$entry"
  case "$broker" in
    before) start_console "$BEFORE_BIN" ;;
    after) start_console "$BIN/sse-console" ;;
    nchan)
      start_nchan
      case "$name" in
        topics*) paths="--sub-path /sub/{topic} --pub-path /pub/{topic}" ;;
        *) paths="--sub-path /sub/all --pub-path /pub/all" ;;
      esac
      ;;
  esac
  echo "== $name on $broker (rep $rep, port $PORT, pid $BROKER_PID)" >&2
  # shellcheck disable=SC2086  # word splitting of the argument lists is intended
  run_bench "$broker" "$name" "$rep" $args $paths
  stop_process
  sleep 1
}

brokers=(after nchan)
[ -n "$BEFORE_BIN" ] && brokers=(before after nchan)
for rep in $(seq 1 "$REPS"); do
  # Alternate the order of the brokers from one repetition to the next.
  mapfile -t order < <(alternating_order "$rep" "${brokers[@]}")
  for broker in "${order[@]}"; do
    if [ "$broker" = nchan ]; then
      run_one nchan "$TOPICS_10K" "$rep"
      continue
    fi
    run_one "$broker" "$FANOUT_1K" "$rep"
    run_one "$broker" "$FANOUT_10K" "$rep"
    [ "$broker" = after ] && run_one after "$TOPICS_10K" "$rep"
  done
done

cp "$RESULTS" "${OUT_JSONL:-$SCRATCH/bench-topics-results.jsonl}"
python3 - "$RESULTS" "$REPS" <<'PY'
import sys
sys.path.insert(0, "scripts")
from bench_summary import cell, cpu, load, p99, rate, verified
runs = load(sys.argv[1])
reps = int(sys.argv[2])
pick = lambda broker, name: [r for r in runs if r["broker"] == broker and r["name"] == name]
print(f"| workload | broker | CPU µs / delivered event | delivered/s | p99 latency (ms) | verified (every subscriber exactly its events, in order) |")
print("|---|---|--:|--:|--:|---|")
labels = {"before": "ours, before topics", "after": "ours, with topics", "nchan": "nchan (a channel per topic)"}
for name, title in [("fanout-1k", "fanout, 1,000 subscribers"), ("fanout-10k", "fanout, 10,000 subscribers"),
                    ("topics-10k-1000", "topics: 10,000 subscribers over 1,000 topics")]:
    for broker in ["before", "after", "nchan"]:
        rs = pick(broker, name)
        if not rs:
            continue
        print(f"| {title} | {labels[broker]} | {cell(rs, cpu)} | {cell(rs, rate, 0)} | {cell(rs, p99)} | {verified(rs)} |")
print()
print(f"Medians of {reps} runs, (min–max) of the runs in brackets.")
PY
