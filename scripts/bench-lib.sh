# shellcheck shell=bash
# Shared by the benchmark scripts (sourced, not run): starting and stopping the broker under test,
# and loopback ports. The caller sets WORK (a scratch directory), BROKER_CPU, and for nchan MODULE
# and NOFILE; the starters set PORT, BROKER_PID (whose /proc sse-bench reads), STOP_PID (what to
# stop afterwards) and FD_OPEN (fd 3 holds a headless console's stdin open).

# This file's folder (scripts/), for the Python helpers beside it.
BENCH_LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

# Where release builds go, and the CPUs the broker and sse-bench are pinned to, unless set.
: "${SCRATCH:=.build-bench}"
: "${BROKER_CPU:=0}"
: "${BENCH_CPU:=1}"

# alternating_order REP BROKER…: the brokers in the order given on odd repetitions, reversed on
# even ones, one per line (so that neither always runs on a machine the other has just warmed).
alternating_order() {
  local rep=$1
  shift
  if [ $((rep % 2)) = 0 ]; then printf '%s\n' "$@" | tac; else printf '%s\n' "$@"; fi
}

# Stops the broker under test and closes its stdin.
stop_process() {
  if [ -n "$STOP_PID" ]; then
    kill "$STOP_PID" 2>/dev/null || true
    wait "$STOP_PID" 2>/dev/null || true
  fi
  if [ "$FD_OPEN" = 1 ]; then exec 3>&-; FD_OPEN=0; fi
  STOP_PID=""
  BROKER_PID=""
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_port() {
  local port=$1
  for _ in $(seq 1 200); do
    if (exec 4<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
    sleep 0.05
  done
  echo "port $port never opened" >&2
  return 1
}

# An sse-console binary ($1) with more arguments ($2…), headless on a free port, pinned to
# $BROKER_CPU; its stdin is a fifo held open on fd 3 (its end would stop the command reading).
start_console() {
  local binary=$1 dir="$WORK/console.$RANDOM"
  shift
  mkdir -p "$dir"
  mkfifo "$dir/stdin"
  taskset -c "$BROKER_CPU" "$binary" --no-tui --port 0 "$@" <"$dir/stdin" >"$dir/stdout" 2>"$dir/stderr" &
  STOP_PID=$!
  BROKER_PID=$STOP_PID
  exec 3>"$dir/stdin"
  FD_OPEN=1
  for _ in $(seq 1 200); do
    if [ -s "$dir/stdout" ]; then break; fi
    sleep 0.05
  done
  PORT=$(head -n 1 "$dir/stdout" | sed -n 's|^listening on https\{0,1\}://[^:]*:\([0-9]*\)$|\1|p')
  if [ -z "$PORT" ]; then
    echo "broker did not start:" >&2
    cat "$dir/stderr" >&2
    return 1
  fi
}

# nginx + nchan with scripts/nchan.conf on a free port, pinned to $BROKER_CPU (the worker inherits
# it). With $1 = status, one more location: /nchan_status (nchan_stub_status), where sse-bench
# reads the subscriber count. With $1 = tls, nginx's own `ssl http2` listener with the certificate
# $TLS_CERT and key $TLS_KEY (h2 or http/1.1 by ALPN).
start_nchan() {
  local dir="$WORK/nchan.$RANDOM" status=()
  mkdir -p "$dir"
  PORT=$(free_port)
  [ "${1:-}" = status ] && status=(-e 's#^\( *\)location ~ \^/sub/#\1location = /nchan_status { nchan_stub_status; }\n\n\1location ~ ^/sub/#')
  [ "${1:-}" = tls ] && status=(-e "s#^\\( *\\)listen \\(.*\\) backlog=4096;#\\1listen \\2 ssl http2 backlog=4096;\\n\\1ssl_certificate $TLS_CERT;\\n\\1ssl_certificate_key $TLS_KEY;#")
  sed -e "s#@PREFIX@#$dir#g" -e "s#@PORT@#$PORT#g" -e "s#@MODULE@#$MODULE#g" \
    -e "s#@NOFILE@#$NOFILE#g" -e "s#@CONNECTIONS@#$((NOFILE - 64))#g" "${status[@]}" \
    scripts/nchan.conf >"$dir/nginx.conf"
  if [ "${1:-}" = status ] && ! grep -q nchan_stub_status "$dir/nginx.conf"; then
    echo "could not add the status location" >&2
    return 1
  fi
  taskset -c "$BROKER_CPU" "$(command -v nginx)" -p "$dir" -c "$dir/nginx.conf" >"$dir/stdout" 2>"$dir/stderr" &
  STOP_PID=$!   # the master (daemon off); it stops its worker on TERM
  wait_port "$PORT"
  BROKER_PID=""
  for _ in $(seq 1 100); do
    BROKER_PID=$(pgrep -P "$STOP_PID" | head -n 1 || true)
    if [ -n "$BROKER_PID" ]; then break; fi
    sleep 0.05
  done
  [ -n "$BROKER_PID" ] || { echo "no nchan worker" >&2; return 1; }
}

# run_bench LABEL NAME REP ARGS…: sse-bench ($BIN, pinned to $BENCH_CPU, at most 180 s) with ARGS
# against the broker started last ($PORT, $BROKER_PID); appends its JSON report, tagged with the
# broker's label, the workload's name, the repetition, the time (UTC) and the machine
# (scripts/bench_summary.py), to $RESULTS.
run_bench() {
  local label=$1 name=$2 rep=$3 json
  shift 3
  if json=$(timeout 180 taskset -c "$BENCH_CPU" "$BIN/sse-bench" "$@" --port "$PORT" --pid "$BROKER_PID" --json); then
    python3 -c 'import json, sys, time
sys.path.insert(0, sys.argv[5])
from bench_summary import machine
r = json.loads(sys.argv[1])
r.update(broker=sys.argv[2], name=sys.argv[3], rep=int(sys.argv[4]), at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), machine=machine())
print(json.dumps(r))' "$json" "$label" "$name" "$rep" "$BENCH_LIB_DIR" >>"$RESULTS"
  else
    echo "   sse-bench failed for $name on $label" >&2
  fi
}

# Release builds of sse-bench and sse-console in $SCRATCH (unless SKIP_BUILD is set); sets BIN.
build_release() {
  if [ -z "${SKIP_BUILD:-}" ]; then
    echo "== building (release, $SCRATCH)" >&2
    swift build -c release --scratch-path "$SCRATCH" --product sse-bench >&2
    swift build -c release --scratch-path "$SCRATCH" --product sse-console >&2
  fi
  BIN="$SCRATCH/release"
}

# nginx and its nchan module from Debian, installed if missing (root); sets MODULE.
need_nchan() {
  MODULE=/usr/lib/nginx/modules/ngx_nchan_module.so
  if ! command -v nginx >/dev/null 2>&1 || [ ! -f "$MODULE" ]; then
    echo "== installing nginx and libnginx-mod-nchan" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx libnginx-mod-nchan >&2
  fi
}

# A run's scratch directory /tmp/sse-bench-$1.XXXXXX (WORK, removed on exit with the broker
# stopped), its empty $RESULTS, no broker yet, and `ulimit -n` raised to 65536 or the hard limit
# (10,000 subscribers need more than the usual 1,024 descriptors); sets NOFILE.
bench_workdir() {
  ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
  NOFILE=$(ulimit -n)
  WORK=$(mktemp -d "/tmp/sse-bench-$1.XXXXXX")
  RESULTS="$WORK/results.jsonl"
  : >"$RESULTS"
  BROKER_PID=""   # the process sse-bench reads /proc of
  STOP_PID=""     # the process to stop afterwards
  FD_OPEN=0
  trap 'stop_process; rm -rf "$WORK"' EXIT
}

# Where scripts/bench-compare.sh writes, besides the report $OUT: a full run (no $ONLY) to
# BENCHMARKS.md writes benchmarks/results.jsonl and benchmarks/chart.png, any other run its results
# and chart beside OUT (OUT without .md, then .results.jsonl and .chart.png). Sets JSONL and CHART,
# and REFUSED, where the raw results of a refused run go.
# shellcheck disable=SC2034  # CHART is for the caller (bench-compare.sh)
compare_paths() {
  if [ "$OUT" = BENCHMARKS.md ] && [ -z "${ONLY:-}" ]; then
    JSONL=benchmarks/results.jsonl
    CHART=benchmarks/chart.png
  else
    JSONL="${OUT%.md}.results.jsonl"
    CHART="${OUT%.md}.chart.png"
  fi
  REFUSED="${JSONL%.jsonl}.refused.jsonl"
}

# compare_workloads REGEX: scripts/bench-compare.sh on the workloads REGEX matches (ONLY), its
# report to $OUT; sets COMPARE_STATUS (its exit status) and COMPARE_RESULTS (its results, or a
# refused run's) and copies them to $OUT_JSONL if set. Exits with its status if it left none.
compare_workloads() {
  local ONLY=$1
  COMPARE_STATUS=0
  ONLY=$ONLY OUT=$OUT scripts/bench-compare.sh || COMPARE_STATUS=$?
  compare_paths
  COMPARE_RESULTS=$JSONL
  if [ "$COMPARE_STATUS" != 0 ]; then COMPARE_RESULTS=$REFUSED; fi
  [ -f "$COMPARE_RESULTS" ] || exit "$COMPARE_STATUS"
  if [ -n "${OUT_JSONL:-}" ]; then cp "$COMPARE_RESULTS" "$OUT_JSONL"; fi
}
