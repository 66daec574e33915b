#!/usr/bin/env bash
# Side-by-side benchmark: this broker (sse-console --no-tui) against nginx + nchan, both loaded by
# sse-bench on loopback, and BENCHMARKS.md written from the medians.
#
#   scripts/bench-compare.sh            # full run: 3 repetitions, about 10 minutes
#   REPS=1 scripts/bench-compare.sh     # one repetition
#   OUT=/tmp/b.md scripts/bench-compare.sh
#   ONLY='fanout-1k|targeted-1k' OUT=/tmp/b.md scripts/bench-compare.sh   # some workloads only
#
# Each run gets a fresh broker process pinned to CPU 0 (taskset; nginx's worker inherits it) and
# sse-bench pinned to CPU 1; both brokers run every workload alternately, REPS times. Root installs
# nginx and libnginx-mod-nchan from Debian if missing. The brokers need one descriptor per
# connection: this script raises `ulimit -n` to 65536 (or the hard limit, if lower) before
# starting them, and sse-bench raises its own with setrlimit. Only 127.0.0.1 is ever loaded.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/bench-lib.sh

REPS=${REPS:-3}
OUT=${OUT:-BENCHMARKS.md}

build_release
need_nchan
bench_workdir compare
if [ "$NOFILE" -lt 12000 ]; then
  echo "warning: ulimit -n is $NOFILE; the 10,000-connection workloads will fail" >&2
fi

TUI_SOCKET="sse-bench-tui-$$"
stop_broker() {
  tmux -L "$TUI_SOCKET" kill-server 2>/dev/null || true
  stop_process
}
trap 'stop_broker; rm -rf "$WORK"' EXIT


# This broker, headless. $1: "console" for sse-console with its default loop count, or "loops:N"
# for `--loops N`.
start_ours() {
  local kind=${1:-console} loops=()
  [ "$kind" = console ] || loops=(--loops "${kind#loops:}")
  start_console "$BIN/sse-console" "${loops[@]}"
}

# This broker with its terminal console drawing, in a tmux pane (120x40) like a user's terminal.
start_tui() {
  PORT=$(free_port)
  tmux -L "$TUI_SOCKET" new-session -d -s console -x 120 -y 40 \
    "TERM=xterm-256color exec taskset -c $BROKER_CPU $BIN/sse-console --port $PORT"
  wait_port "$PORT"
  BROKER_PID=$(tmux -L "$TUI_SOCKET" display-message -p -t console '#{pane_pid}')
  STOP_PID=""
}


# workload name | sse-bench arguments | our paths | nchan paths
WORKLOADS=(
  "fanout-100|fanout -n 100 --publishers 8 --duration 5|--sub-path /connect?id={id} --pub-path /broadcast|--sub-path /sub/all --pub-path /pub/all"
  "fanout-1k|fanout -n 1000 --publishers 8 --duration 5|--sub-path /connect?id={id} --pub-path /broadcast|--sub-path /sub/all --pub-path /pub/all"
  "fanout-10k|fanout -n 10000 --publishers 8 --duration 5 --connect-batch 500|--sub-path /connect?id={id} --pub-path /broadcast|--sub-path /sub/all --pub-path /pub/all"
  "fanout-1k-20eps|fanout -n 1000 --publishers 1 --rate 20 --duration 10|--sub-path /connect?id={id} --pub-path /broadcast|--sub-path /sub/all --pub-path /pub/all"
  "targeted-1k|targeted -n 1000 --publishers 8 --duration 5|--sub-path /connect?id={id} --pub-path /broadcast?id={id}|--sub-path /sub/{id} --pub-path /pub/{id}"
  "idle-10k|idle -n 10000 --hold 3 --connect-batch 500|--sub-path /connect?id={id}|--sub-path /sub/all"
  "slow-1k|slow -n 1000 -k 10 --size 8192 --publishers 1 --rate 100 --duration 8|--sub-path /connect?id={id} --pub-path /broadcast|--sub-path /sub/all --pub-path /pub/all"
)

# run_one BROKER LABEL WORKLOAD-ENTRY REP
run_one() {
  local broker=$1 label=$2 entry=$3 rep=$4
  local name args ours nchan paths
  IFS='|' read -r name args ours nchan <<<"$entry"
  case "$broker" in
    nchan) start_nchan; paths=$nchan ;;
    tui) start_tui; paths=$ours ;;
    *) start_ours "$broker"; paths=$ours ;;
  esac
  echo "== $name on $label (rep $rep, port $PORT, pid $BROKER_PID)" >&2
  # shellcheck disable=SC2086  # word splitting of the argument lists is intended
  run_bench "$label" "$name" "$rep" $args $paths
  stop_broker
  sleep 1   # let the last connections' sockets settle
}

for rep in $(seq 1 "$REPS"); do
  for entry in "${WORKLOADS[@]}"; do
    [[ "${entry%%|*}" =~ ^(${ONLY:-.*})$ ]] || continue
    for broker in $(alternating_order "$rep" console nchan); do
      label=$([ "$broker" = console ] && echo ours || echo nchan)
      run_one "$broker" "$label" "$entry" "$rep"
    done
  done
done

# The loop-count experiment: by default sse-console makes one loop per CPU it may run on (1 here,
# pinned); two loops time-sharing that CPU, for comparison.
LOOPS_ENTRY="fanout-1k|fanout -n 1000 --publishers 8 --duration 5|--sub-path /connect?id={id} --pub-path /broadcast|"
for rep in $(seq 1 "$REPS"); do
  run_one "loops:2" "ours-2-loops" "$LOOPS_ENTRY" "$rep"
done

# The console's cost: the same fanout with the terminal console drawing (in tmux), on the same CPU.
if command -v tmux >/dev/null 2>&1; then
  for rep in $(seq 1 "$REPS"); do
    run_one "tui" "ours-tui" "$LOOPS_ENTRY" "$rep"
  done
fi

cp "$RESULTS" "$SCRATCH/bench-results.jsonl"
python3 - "$RESULTS" "$OUT" "$REPS" "$NOFILE" <<'PY'
import datetime, json, os, platform, statistics, subprocess, sys

results_path, out_path, reps, nofile = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
runs = [json.loads(line) for line in open(results_path) if line.strip()]

def values(broker, name, key):
    out = []
    for r in runs:
        if r["broker"] != broker or r["name"] != name:
            continue
        v = key(r) if callable(key) else r.get(key)
        if v is not None:
            out.append(v)
    return out

def median(broker, name, key):
    v = values(broker, name, key)
    return statistics.median(v) if v else None

def fmt(v, digits=2):
    if v is None:
        return "–"
    if isinstance(v, str):
        return v
    return f"{v:,.{digits}f}"

cpu_us = lambda r: r.get("brokerCPUMicrosPerEvent")
p50 = lambda r: r["latency"]["p50Ms"] if r.get("latency") and r["latency"]["samples"] else None
p99 = lambda r: r["latency"]["p99Ms"] if r.get("latency") and r["latency"]["samples"] else None
kib_per_conn = lambda r: r["brokerRSSPerConnectionBytes"] / 1024 if r.get("brokerRSSPerConnectionBytes") is not None else None
rss_growth = lambda r: r["brokerRSSGrowthBytes"] / 1048576 if r.get("brokerRSSGrowthBytes") is not None else None
closed = lambda r: r.get("nonReadersClosed")

# (workload, label, metric, key, digits, target-check or None, target text)
rows = []
for name, label in [("fanout-100", "fanout, N=100"), ("fanout-1k", "fanout, N=1,000"), ("fanout-10k", "fanout, N=10,000")]:
    target = {"fanout-1k": (3.0, "≤ 3.0"), "fanout-10k": (7.0, "≤ 7.0")}.get(name)
    rows += [
        (name, label, "broker CPU µs / delivered event", cpu_us, 3, (lambda v, t=target: v <= t[0]) if target else None, target[1] if target else ""),
        (name, label, "delivered events/s", "deliveredPerSecond", 0, None, ""),
        (name, label, "published events/s", "publishedPerSecond", 0, None, ""),
        (name, label, "completeness", "completeness", 6, None, "1.0"),
        (name, label, "latency p50 / p99 (ms)", lambda r: f"{p50(r):.2f} / {p99(r):.2f}" if p50(r) is not None else None, 0, None, ""),
    ]
rows += [
    ("fanout-1k-20eps", "fanout 20 ev/s, N=1,000", "broker CPU µs / delivered event", cpu_us, 3, lambda v: v <= 8.0, "≤ 8"),
    ("fanout-1k-20eps", "fanout 20 ev/s, N=1,000", "latency p50 (ms)", p50, 3, None, ""),
    ("fanout-1k-20eps", "fanout 20 ev/s, N=1,000", "latency p99 (ms)", p99, 3, lambda v: v <= 10.0, "≤ 10"),
    ("fanout-1k-20eps", "fanout 20 ev/s, N=1,000", "completeness", "completeness", 6, None, "1.0"),
    ("targeted-1k", "targeted, N=1,000", "broker CPU µs / delivered event", cpu_us, 3, lambda v: v <= 15.0, "≤ 15"),
    ("targeted-1k", "targeted, N=1,000", "delivered events/s", "deliveredPerSecond", 0, None, ""),
    ("targeted-1k", "targeted, N=1,000", "completeness", "completeness", 6, None, "1.0"),
    ("targeted-1k", "targeted, N=1,000", "latency p99 (ms)", p99, 3, None, ""),
    ("idle-10k", "idle, 10,000 connections", "broker RSS per connection (KiB)", kib_per_conn, 2, lambda v: v <= 8.0, "≤ 8"),
    ("slow-1k", "slow, N=1,000, K=10, 8 KiB", "broker RSS growth (MiB)", rss_growth, 1, lambda v: v <= 16.0, "≤ 16"),
    ("slow-1k", "slow, N=1,000, K=10, 8 KiB", "non-readers closed (of 10)", closed, 0, lambda v: v >= 10, "10"),
    ("slow-1k", "slow, N=1,000, K=10, 8 KiB", "healthy completeness", "healthyCompleteness", 6, None, "1.0"),
    ("slow-1k", "slow, N=1,000, K=10, 8 KiB", "events published", "published", 0, None, ""),
]

def cpu_model():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"

lines = []
w = lines.append
w("# Benchmarks")
w("")
w("This broker (`sse-console --no-tui`, default configuration) side by side with nginx + nchan")
w("(`scripts/nchan.conf`: one worker, EventSource subscribers, one channel all subscribers join for")
w("broadcasts, a channel per subscriber for targeted events), both loaded by `sse-bench` on loopback.")
w("Generated by `scripts/bench-compare.sh`; the numbers below are from one run of it.")
w("")
w(f"- Date: {datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}")
w(f"- Machine: {os.cpu_count()} CPUs (`nproc` {subprocess.run(['nproc'], capture_output=True, text=True).stdout.strip()}), {cpu_model()}, Linux {platform.release()}, `ulimit -n` {nofile}")
w(f"- nginx: {subprocess.run(['nginx', '-v'], capture_output=True, text=True).stderr.strip()}; nchan: Debian libnginx-mod-nchan {subprocess.run(['dpkg-query', '-W', '-f', '${Version}', 'libnginx-mod-nchan'], capture_output=True, text=True).stdout.strip()}")
w(f"- Each broker process runs pinned to CPU 0 (`taskset`; nginx's worker inherits it), sse-bench pinned to CPU 1. Every run starts a fresh broker. {reps} repetitions, brokers alternating; medians shown.")
w("- **Broker CPU per delivered event** = (utime + stime of the broker process, or of the nchan worker, over the run, from `/proc/<pid>/stat`) / events received by all subscribers. Latency: publisher send time (CLOCK_MONOTONIC, in the event data) to the subscriber's read, in sse-bench's process (HdrHistogram).")
w("- Saturation workloads use 8 keep-alive publishers (one request in flight each) for 5 s; this broker answers 202 once the event is queued, nchan once it is written to every subscriber. The bench itself has one core: at saturation it can be the bottleneck (its CPU time is in the raw results).")
w("")
w("| workload | metric | ours | nchan | ours / nchan | target (ours) | verdict |")
w("| --- | --- | ---: | ---: | ---: | ---: | --- |")
for name, label, metric, key, digits, check, target in rows:
    o = median("ours", name, key)
    n = median("nchan", name, key)
    if isinstance(o, str) or isinstance(n, str):
        # strings (p50 / p99 pairs): median of each part
        def pair(b):
            a = values(b, name, p50); c = values(b, name, p99)
            return f"{statistics.median(a):.2f} / {statistics.median(c):.2f}" if a and c else None
        o, n, ratio = pair("ours"), pair("nchan"), None
    else:
        ratio = (o / n) if (o is not None and n not in (None, 0)) else None
    verdict = ""
    if check is not None and o is not None and not isinstance(o, str):
        verdict = "met" if check(o) else "**missed**"
    w(f"| {label} | {metric} | {fmt(o, digits)} | {fmt(n, digits)} | {fmt(ratio, 2)} | {target} | {verdict} |")

loops = [(lbl, values(lbl, "fanout-1k", cpu_us), values(lbl, "fanout-1k", "deliveredPerSecond"), values(lbl, "fanout-1k", p99))
         for lbl in ("ours", "ours-2-loops")]
if any(v for _, v, _, _ in loops[1:]):
    w("")
    w("## Event loops on one CPU")
    w("")
    w("`sse-console` makes one event loop per CPU in its affinity mask (`BrokerServer.defaultLoopCount`;")
    w("NIO's `System.coreCount` counts cgroup and cpuset limits but not `taskset`), so pinned to CPU 0 it")
    w("runs one loop. fanout N=1,000 as above, against `--loops 2` — two loops time-sharing the CPU:")
    w("")
    w("| broker process | loops | CPU µs / event (median) | delivered/s (median) | p99 ms (median) | runs |")
    w("| --- | ---: | ---: | ---: | ---: | ---: |")
    names = {"ours": ("sse-console", "1 (default)"), "ours-2-loops": ("sse-console --loops 2", "2")}
    for lbl, cpu, rate, lat in loops:
        if cpu:
            w(f"| {names[lbl][0]} | {names[lbl][1]} | {statistics.median(cpu):.3f} | {statistics.median(rate):,.0f} | {statistics.median(lat):.2f} | {len(cpu)} |")

tui = [(lbl, values(lbl, "fanout-1k", cpu_us), values(lbl, "fanout-1k", "deliveredPerSecond"), values(lbl, "fanout-1k", p99))
       for lbl in ("ours", "ours-tui")]
if tui[1][1] and tui[0][1]:
    w("")
    w("## The console's cost")
    w("")
    w("fanout N=1,000 as above with `sse-console` headless and with its terminal console drawing in a")
    w("120x40 tmux pane (the UI thread shares the broker's CPU; its CPU time is in the figure):")
    w("")
    w("| broker process | CPU µs / event (median) | delivered/s (median) | p99 ms (median) | runs |")
    w("| --- | ---: | ---: | ---: | ---: |")
    for (lbl, cpu, rate, lat), name in zip(tui, ("sse-console --no-tui", "sse-console (terminal console)")):
        w(f"| {name} | {statistics.median(cpu):.3f} | {statistics.median(rate):,.0f} | {statistics.median(lat):.2f} | {len(cpu)} |")
    cost = statistics.median(tui[1][1]) / statistics.median(tui[0][1]) - 1
    through = statistics.median(tui[1][2]) / statistics.median(tui[0][2]) - 1
    w("")
    w(f"With the console drawing, CPU per delivered event changes by {cost * 100:+.1f}% and delivered/s by "
      f"{through * 100:+.1f}% (target: the console costs at most 10%).")

w("")
w("## Every run")
w("")
w("| workload | broker | rep | CPU µs/event | delivered/s | completeness | p50 ms | p99 ms | broker CPU % | bench CPU s | RSS growth MiB | KiB/conn | non-readers closed | published |")
w("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
for r in sorted(runs, key=lambda r: (r["name"], r["broker"], r["rep"])):
    cells = [r["name"], r["broker"], str(r["rep"]), fmt(cpu_us(r), 3), fmt(r.get("deliveredPerSecond"), 0),
             fmt(r.get("completeness"), 6), fmt(p50(r), 2), fmt(p99(r), 2), fmt(r.get("brokerCPUPercent"), 1),
             fmt(r.get("benchCPUSeconds"), 2), fmt(rss_growth(r), 1), fmt(kib_per_conn(r), 2),
             fmt(closed(r), 0), fmt(r.get("published"), 0)]
    w("| " + " | ".join(cells) + " |")
w("")
w("## Reproduce")
w("")
w("```sh")
w("scripts/bench-compare.sh                 # builds release into .build-bench, installs nginx + nchan, ~10 min")
w("REPS=1 OUT=/tmp/bench.md scripts/bench-compare.sh")
w("# one workload by hand (broker: ulimit -n 65536 first for 10k connections):")
w("swift build -c release --scratch-path .build-bench --product sse-bench")
w(".build-bench/release/sse-bench fanout -n 1000 --publishers 8 --duration 5 --port 8080 --pid <broker pid>")
w(".build-bench/release/sse-bench fanout -n 1000 --sub-path /sub/all --pub-path /pub/all --port <nginx port> --pid <nchan worker pid>")
w("```")
# Hand-written analysis (from a line "## Analysis" on) survives regeneration.
kept = ""
if os.path.exists(out_path):
    previous = open(out_path).read()
    at = previous.find("\n## Analysis")
    if at >= 0:
        kept = previous[at:]
open(out_path, "w").write("\n".join(lines) + "\n" + kept)
PY
echo "== wrote $OUT (raw results: $SCRATCH/bench-results.jsonl)" >&2
