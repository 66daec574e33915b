#!/usr/bin/env bash
# TLS and HTTP/2 (issue 13): fan-out to 1,000 subscribers over plain HTTP/1.1, over TLS HTTP/1.1,
# and over h2 (TLS, 1,000 streams on 10 connections), this broker next to nchan behind nginx's own
# `ssl http2` listener, in one run; prints a Markdown table of medians with the spread of the
# repetitions (BENCHMARKS.md, "TLS and HTTP/2") and keeps the raw results.
#
#   scripts/bench-http2.sh                                     # 3 repetitions, about 4 minutes
#   REPS=1 SKIP_BUILD=1 SCRATCH=.build-release scripts/bench-http2.sh
#
# Pinned like scripts/bench-compare.sh: the broker to CPU 0, sse-bench to CPU 1, a fresh broker per
# run, brokers alternating. Publishers speak HTTP/1.1 (over TLS in the TLS rows). Only 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/bench-lib.sh

REPS=${REPS:-3}

build_release
need_nchan

bench_workdir http2
TLS_CERT="$WORK/cert.pem"
TLS_KEY="$WORK/key.pem"
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$TLS_KEY" -out "$TLS_CERT" -days 2 -subj /CN=localhost \
  -addext "subjectAltName=IP:127.0.0.1" 2>/dev/null

# workload | transport | sse-bench arguments (nchan's paths are added for nchan)
FANOUT="fanout -n 1000 --publishers 8 --duration 5"
WORKLOADS=(
  "http1|plain|$FANOUT"
  "tls-http1|tls|$FANOUT --tls"
  "h2|tls|$FANOUT --tls --h2-streams 100"
)

# run_one BROKER(ours|nchan) ENTRY REP
run_one() {
  local broker=$1 entry=$2 rep=$3 name transport args paths=""
  IFS='|' read -r name transport args <<<"$entry"
  case "$broker" in
    ours)
      if [ "$transport" = tls ]; then
        start_console "$BIN/sse-console" --tls-cert "$TLS_CERT" --tls-key "$TLS_KEY"
      else
        start_console "$BIN/sse-console"
      fi
      ;;
    nchan)
      if [ "$transport" = tls ]; then start_nchan tls; else start_nchan; fi
      paths="--sub-path /sub/all --pub-path /pub/all"
      ;;
  esac
  echo "== $name on $broker (rep $rep, port $PORT, pid $BROKER_PID)" >&2
  # shellcheck disable=SC2086  # word splitting of the argument lists is intended
  run_bench "$broker" "$name" "$rep" $args $paths
  stop_process
  sleep 1
}

brokers=(ours nchan)
for rep in $(seq 1 "$REPS"); do
  mapfile -t order < <(alternating_order "$rep" "${brokers[@]}")
  for broker in "${order[@]}"; do
    for entry in "${WORKLOADS[@]}"; do
      run_one "$broker" "$entry" "$rep"
    done
  done
done

cp "$RESULTS" "${OUT_JSONL:-$SCRATCH/bench-http2-results.jsonl}"
python3 - "$RESULTS" "$REPS" <<'PY'
import statistics, sys
sys.path.insert(0, "scripts")
from bench_summary import cell, cpu, load, p99, rate, values, verified
runs = load(sys.argv[1])
reps = int(sys.argv[2])
pick = lambda broker, name: [r for r in runs if r["broker"] == broker and r["name"] == name]
print("| fan-out to 1,000 | broker | CPU µs / delivered event | vs plain HTTP/1.1 | delivered/s | p99 latency (ms) | verified |")
print("|---|---|--:|--:|--:|--:|---|")
titles = {"http1": "plain HTTP/1.1", "tls-http1": "TLS, HTTP/1.1", "h2": "TLS, h2 (1,000 streams on 10 connections)"}
labels = {"ours": "this broker", "nchan": "nchan (one nginx worker; `ssl http2` listener for TLS)"}
for name in ["http1", "tls-http1", "h2"]:
    for broker in ["ours", "nchan"]:
        rs = pick(broker, name)
        if not rs:
            continue
        base = values(pick(broker, "http1"), cpu)
        mine = values(rs, cpu)
        ratio = f"{statistics.median(mine) / statistics.median(base):.2f}×" if base and mine else "–"
        print(f"| {titles[name]} | {labels[broker]} | {cell(rs, cpu)} | {ratio} | {cell(rs, rate, 0)} | {cell(rs, p99)} | {verified(rs)} |")
print()
print(f"Medians of {reps} runs, (min–max) of the runs in brackets.")
PY
