#!/usr/bin/env bash
# The comparison run of issue 15: this broker (sse-console --no-tui) next to nginx + nchan on every
# workload, both loaded by sse-bench on loopback, in one run; BENCHMARKS.md's table (medians with
# the spread of the repetitions, ours / nchan, the goals of issue 15 and a verdict), the raw results
# (benchmarks/results.jsonl) and a chart of CPU per event and latency (benchmarks/chart.png).
#
#   scripts/bench-compare.sh                  # full run: 5 repetitions, about 20 minutes (and the build)
#   REPS=1 SKIP_BUILD=1 SCRATCH=.build-release scripts/bench-compare.sh   # one repetition, no build
#   ONLY='fanout-1k|targeted-1k' scripts/bench-compare.sh    # some workloads (a regex of names)
#   OUT=/tmp/b.md scripts/bench-compare.sh
#   BEFORE_BIN=/tmp/before/.build/release/sse-console scripts/bench-compare.sh   # and an older build
#
# Workloads (ONLY matches their names): fanout-100, fanout-1k, fanout-10k, fanout-1k-20eps,
# targeted-1k, topics-10k-1000 (10,000 subscribers over 1,000 topics; nchan: a channel per topic),
# fanout-1k-tls (TLS, HTTP/1.1), fanout-1k-h2 (h2 over TLS, 1,000 streams on 10 connections; nchan
# behind nginx's `ssl http2` listener; a certificate made with openssl for the run), idle-10k,
# slow-1k; and, this broker only, fanout-1k-2-loops (`--loops 2`) and fanout-1k-tui (the terminal
# console drawing in tmux). BEFORE_BIN: an older sse-console run as a third broker ("before") on
# every selected workload, listed apart (its losses are warnings: it is not in the table).
# On fanout-100, fanout-1k, fanout-1k-20eps, targeted-1k, topics-10k-1000, fanout-1k-tls and
# fanout-1k-h2 a third broker too, "nio-floor" (benchmarks/nio-floor: the least an SSE broker on
# SwiftNIO's HTTP/1 codecs does, with swift-nio-ssl in front for TLS and NIO's HTTP/2 multiplexer for
# h2, built here into $SCRATCH/nio-floor): the floor under this broker's figures, listed apart like
# "before".
#
# Where it writes: a full run (no ONLY, no OUT) writes BENCHMARKS.md, benchmarks/results.jsonl and
# benchmarks/chart.png. With ONLY or OUT set, the report goes to OUT (default
# ${TMPDIR:-/tmp}/bench-compare.md) and the results and chart beside it (OUT without .md, then
# .results.jsonl and .chart.png; compare_paths in bench-lib.sh), so that a partial run never
# replaces the repository's. The chart
# needs matplotlib (python3 -m pip install -r scripts/requirements-bench.txt); without it the
# script warns and leaves the chart as it was. BENCHMARKS.md's sections from "## Analysis" on are
# hand-written and kept.
#
# A lossy run is refused: if any run of this broker or of nchan lost events (completeness, or the
# healthy subscribers' in slow-1k, below 1), failed sse-bench's verification (a subscriber's events
# not exactly the accepted ones, ids repeated or going back, a publisher's events out of order), did
# not connect (or, idle, keep) every subscriber, or is missing (sse-bench failed or timed out), the
# script lists those runs, exits 1 and writes neither the report nor the results nor the chart; the
# raw results are kept beside the results file as ….refused.jsonl.
#
# Each run gets a fresh broker process pinned to CPU 0 (taskset; nginx's worker inherits it) and
# sse-bench pinned to CPU 1; the brokers run every workload alternately, REPS times. Root installs
# nginx and libnginx-mod-nchan from Debian if missing. The brokers need one descriptor per
# connection: this script raises `ulimit -n` to 65536 (or the hard limit, if lower) before
# starting them, and sse-bench raises its own with setrlimit. Only 127.0.0.1 is ever loaded.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/bench-lib.sh

REPS=${REPS:-5}
ONLY=${ONLY:-}
BEFORE_BIN=${BEFORE_BIN:-}
if [ -z "${OUT:-}" ]; then
  if [ -z "$ONLY" ]; then OUT=BENCHMARKS.md; else OUT=${TMPDIR:-/tmp}/bench-compare.md; fi
fi
compare_paths
[[ "$REPS" =~ ^[1-9][0-9]*$ ]] || { echo "REPS must be a positive number" >&2; exit 2; }

build_release
FLOOR_BIN="$SCRATCH/nio-floor/release/NIOFloor"
FLOOR_WORKLOADS='fanout-100|fanout-1k|fanout-1k-20eps|targeted-1k|topics-10k-1000|fanout-1k-tls|fanout-1k-h2'
if [ -z "${SKIP_BUILD:-}" ] || [ ! -x "$FLOOR_BIN" ]; then
  echo "== building the SwiftNIO floor (release, $SCRATCH/nio-floor)" >&2
  swift build -c release --package-path benchmarks/nio-floor --scratch-path "$SCRATCH/nio-floor" >&2
fi
need_nchan
bench_workdir compare
if [ "$NOFILE" -lt 12000 ]; then
  echo "warning: ulimit -n is $NOFILE; the 10,000-connection workloads will fail" >&2
fi
EXPECTED="$WORK/expected"   # one line per run started: label, workload, repetition
: >"$EXPECTED"

TUI_SOCKET="sse-bench-tui-$$"
stop_broker() {
  tmux -L "$TUI_SOCKET" kill-server 2>/dev/null || true
  stop_process
}
trap 'stop_broker; rm -rf "$WORK"' EXIT

# This broker with its terminal console drawing, in a tmux pane (120x40) like a user's terminal.
start_tui() {
  PORT=$(free_port)
  tmux -L "$TUI_SOCKET" new-session -d -s console -x 120 -y 40 \
    "TERM=xterm-256color exec taskset -c $BROKER_CPU $BIN/sse-console --port $PORT"
  wait_port "$PORT"
  BROKER_PID=$(tmux -L "$TUI_SOCKET" display-message -p -t console '#{pane_pid}')
  STOP_PID=""
}

# A self-signed certificate for 127.0.0.1, made once per run (TLS_CERT, TLS_KEY; nchan's too).
make_tls_cert() {
  TLS_CERT="$WORK/cert.pem"
  TLS_KEY="$WORK/key.pem"
  [ -f "$TLS_CERT" ] && return 0
  openssl req -x509 -newkey rsa:2048 -nodes -keyout "$TLS_KEY" -out "$TLS_CERT" -days 2 -subj /CN=localhost \
    -addext "subjectAltName=IP:127.0.0.1" 2>/dev/null
}


# workload name | transport (plain or tls) | sse-bench arguments | our paths | nchan paths
OURS="--sub-path /connect?id={id} --pub-path /broadcast"
NCHAN="--sub-path /sub/all --pub-path /pub/all"
FANOUT_1K="fanout -n 1000 --publishers 8 --duration 5"
WORKLOADS=(
  "fanout-100|plain|fanout -n 100 --publishers 8 --duration 5|$OURS|$NCHAN"
  "fanout-1k|plain|$FANOUT_1K|$OURS|$NCHAN"
  "fanout-10k|plain|fanout -n 10000 --publishers 8 --duration 5 --connect-batch 500|$OURS|$NCHAN"
  "fanout-1k-20eps|plain|fanout -n 1000 --publishers 1 --rate 20 --duration 10|$OURS|$NCHAN"
  "targeted-1k|plain|targeted -n 1000 --publishers 8 --duration 5|--sub-path /connect?id={id} --pub-path /broadcast?id={id}|--sub-path /sub/{id} --pub-path /pub/{id}"
  "topics-10k-1000|plain|topics -n 10000 --topics 1000 --publishers 8 --duration 5 --connect-batch 500|--sub-path /connect?id={id}&topic={topic} --pub-path /broadcast?type={topic}|--sub-path /sub/{topic} --pub-path /pub/{topic}"
  "fanout-1k-tls|tls|$FANOUT_1K --tls|$OURS|$NCHAN"
  "fanout-1k-h2|tls|$FANOUT_1K --tls --h2-streams 100|$OURS|$NCHAN"
  "idle-10k|plain|idle -n 10000 --hold 3 --connect-batch 500|--sub-path /connect?id={id}|--sub-path /sub/all"
  "slow-1k|plain|slow -n 1000 -k 10 --size 8192 --publishers 1 --rate 100 --duration 8|$OURS|$NCHAN"
)
# fanout-1k for this broker alone, as ours-2-loops and ours-tui.
OURS_FANOUT_1K="fanout-1k|plain|$FANOUT_1K|$OURS|"

# run_one LABEL(ours|nchan|before|nio-floor|ours-2-loops|ours-tui) WORKLOAD-ENTRY REP
run_one() {
  local label=$1 entry=$2 rep=$3 name transport args ours nchan paths tls=() argv=()
  IFS='|' read -r name transport args ours nchan <<<"$entry"
  if [ "$transport" = tls ]; then
    make_tls_cert
    tls=(--tls-cert "$TLS_CERT" --tls-key "$TLS_KEY")
  fi
  paths=$ours
  case "$label" in
    nchan)
      if [ "$transport" = tls ]; then start_nchan tls; else start_nchan; fi
      paths=$nchan
      ;;
    before) start_console "$BEFORE_BIN" "${tls[@]}" ;;
    nio-floor) start_console "$FLOOR_BIN" "${tls[@]}" ;;
    ours-2-loops) start_console "$BIN/sse-console" --loops 2 ;;
    ours-tui) start_tui ;;
    *) start_console "$BIN/sse-console" "${tls[@]}" ;;
  esac
  echo "$label $name $rep" >>"$EXPECTED"
  echo "== $name on $label (rep $rep, port $PORT, pid $BROKER_PID)" >&2
  read -r -a argv <<<"$args $paths"   # split on blanks (no globbing of the paths' `?`)
  run_bench "$label" "$name" "$rep" "${argv[@]}"
  stop_broker
  sleep 1   # let the last connections' sockets settle
}

selected() { [[ "$1" =~ ^(${ONLY:-.*})$ ]]; }

brokers=(ours nchan)
if [ -n "$BEFORE_BIN" ]; then brokers+=(before); fi
started=$(date +%s)
for rep in $(seq 1 "$REPS"); do
  mapfile -t order < <(alternating_order "$rep" "${brokers[@]}")
  for entry in "${WORKLOADS[@]}"; do
    if ! selected "${entry%%|*}"; then continue; fi
    for broker in "${order[@]}"; do
      run_one "$broker" "$entry" "$rep"
    done
    if [[ "${entry%%|*}" =~ ^($FLOOR_WORKLOADS)$ ]]; then run_one nio-floor "$entry" "$rep"; fi
  done
  # The loop-count experiment: by default sse-console makes one loop per CPU it may run on (1
  # here, pinned); two loops time-sharing that CPU, for comparison.
  if selected fanout-1k-2-loops; then run_one ours-2-loops "$OURS_FANOUT_1K" "$rep"; fi
  # The console's cost: the same fanout with the terminal console drawing (in tmux), same CPU.
  if selected fanout-1k-tui && command -v tmux >/dev/null 2>&1; then run_one ours-tui "$OURS_FANOUT_1K" "$rep"; fi
done
echo "== $(wc -l <"$EXPECTED") runs in $((($(date +%s) - started + 30) / 60)) min" >&2

mkdir -p "$(dirname "$JSONL")" "$(dirname "$CHART")" "$(dirname "$OUT")"
if ! python3 scripts/bench_compare_report.py check "$RESULTS" "$EXPECTED"; then
  cp "$RESULTS" "$REFUSED"
  echo "refused: $OUT, $JSONL and $CHART not written; the raw results are in $REFUSED" >&2
  exit 1
fi
cp "$RESULTS" "$JSONL"
wrote="$OUT, $JSONL and $CHART"
if ! python3 -c 'import matplotlib' 2>/dev/null; then
  echo "warning: no matplotlib (python3 -m pip install -r scripts/requirements-bench.txt); $CHART not updated" >&2
  wrote="$OUT and $JSONL"
elif ! python3 scripts/bench_chart.py "$JSONL" "$CHART"; then
  echo "warning: the chart failed; $CHART not updated" >&2
  wrote="$OUT and $JSONL"
fi
python3 scripts/bench_compare_report.py write "$JSONL" "$OUT" --chart "$CHART" --reps "$REPS" --nofile "$NOFILE"
echo "== wrote $wrote" >&2
