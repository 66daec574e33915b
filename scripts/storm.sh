#!/usr/bin/env bash
# Storms: this broker (sse-console --no-tui, built from this tree), optionally a second sse-console
# binary (the "before" column), and nginx + nchan, each loaded by `sse-bench storm …` on loopback:
#
#   reset        N idle subscribers reset at once (SO_LINGER 0 + close: RST); a probe's
#                publish→receive latency before and in the 2 s after; when the broker noticed.
#   connect      N subscribers connecting within one second; probe latency meanwhile; when the
#                broker had registered them all; failures.
#   overload-R   32 keep-alive publishers pipelining 16 requests each for 10 s to R reading
#                subscribers (R = 10,000 and 3,000): answers, completeness, readers cut, RSS.
#
#   scripts/storm.sh                                          # ours + nchan, N=10,000: ~3 min after the build
#   BEFORE_BIN=/work/before-bin/sse-console scripts/storm.sh  # + a "before" column: ~4 min
#   N=3000 READERS="3000" OUT=/tmp/storm.md scripts/storm.sh  # smaller
#   ONLY='reset|connect' BROKERS='ours nchan' scripts/storm.sh
#   SKIP_BUILD=1 …                                            # use the binaries already in $SCRATCH/release
#
# Each storm takes 10–20 s per broker; nchan's overload runs take ~50 s (its publishers wait for
# the fan-out; requests still unanswered 30 s after the 10 s of publishing are abandoned). The
# first (cold) release build takes 10–30 min depending on the machine.
#
# Every storm gets a fresh broker process pinned to CPU 0 (taskset; nginx's worker inherits it) and
# sse-bench pinned to CPU 1. Root installs nginx and libnginx-mod-nchan from Debian if missing.
# `ulimit -n` is raised to 65536 (or the hard limit). Only 127.0.0.1 is loaded; every sse-bench
# run is bounded (its own options, and `timeout`). Writes a markdown table with the machine on top
# and the raw JSON lines at the end to $OUT (default $SCRATCH/storm-results.md).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/bench-lib.sh

OUT=${OUT:-$SCRATCH/storm-results.md}
N=${N:-10000}
READERS=${READERS:-10000 3000}
DURATION=${DURATION:-10}
PUBLISHERS=${PUBLISHERS:-32}
DEPTH=${DEPTH:-16}
BEFORE_BIN=${BEFORE_BIN:-}
if [ -z "${BROKERS:-}" ]; then
  BROKERS="ours${BEFORE_BIN:+ before} nchan"
fi
START=$(date +%s)

build_release
[ -x "$BIN/sse-bench" ] || { echo "no $BIN/sse-bench" >&2; exit 1; }
if [ -n "$BEFORE_BIN" ] && [ ! -x "$BEFORE_BIN" ]; then
  echo "BEFORE_BIN=$BEFORE_BIN is not an executable" >&2
  exit 1
fi

MODULE=/usr/lib/nginx/modules/ngx_nchan_module.so
[[ " $BROKERS " == *" nchan "* ]] && need_nchan

bench_workdir storm
if [ "$NOFILE" -lt $((N + 2000)) ]; then
  echo "warning: ulimit -n is $NOFILE; $N connections will not fit" >&2
fi





# Where subscribers and publishers go; for reset and connect also the probe and the count.
OURS_PATHS="--sub-path /connect?id={id} --pub-path /broadcast"
OURS_PROBE="--count-url /metrics"
NCHAN_PATHS="--sub-path /sub/all --pub-path /pub/all"
NCHAN_PROBE="--probe-sub-path /sub/{id} --probe-pub-path /pub/{id} --count-url /nchan_status"

# storm name | sse-bench arguments
STORMS=(
  "reset|storm reset -n $N --connect-batch 500"
  "connect|storm connect -n $N"
)
for r in $READERS; do
  STORMS+=("overload-$r|storm overload -n $r --publishers $PUBLISHERS --depth $DEPTH --duration $DURATION --connect-batch 500")
done

# run_one BROKER STORM-ENTRY
run_one() {
  local broker=$1 entry=$2 name args paths probe json
  IFS='|' read -r name args <<<"$entry"
  case "$broker" in
    ours) start_console "$BIN/sse-console"; paths=$OURS_PATHS; probe=$OURS_PROBE ;;
    before) start_console "$BEFORE_BIN"; paths=$OURS_PATHS; probe=$OURS_PROBE ;;
    nchan) start_nchan status; paths=$NCHAN_PATHS; probe=$NCHAN_PROBE ;;
  esac
  case "$name" in
    overload-*) ;;   # no probe, no count
    *) paths="$paths $probe" ;;
  esac
  echo "== $name on $broker (port $PORT, pid $BROKER_PID) [$(( $(date +%s) - START )) s]" >&2
  # shellcheck disable=SC2086  # word splitting of the argument lists is intended
  if json=$(timeout 300 taskset -c "$BENCH_CPU" "$BIN/sse-bench" $args $paths --port "$PORT" --pid "$BROKER_PID" --json); then
    python3 -c 'import json,sys; r=json.loads(sys.argv[1]); r.update(broker=sys.argv[2], name=sys.argv[3]); print(json.dumps(r, sort_keys=True))' \
      "$json" "$broker" "$name" >>"$RESULTS"
  else
    echo "   sse-bench failed for $name on $broker" >&2
  fi
  stop_process
  sleep 2   # let the sockets of the last run settle (TIME_WAIT, the broker's port)
}

for entry in "${STORMS[@]}"; do
  [[ "${entry%%|*}" =~ ^(${ONLY:-.*})$ ]] || continue
  for broker in $BROKERS; do
    run_one "$broker" "$entry"
  done
done

ELAPSED=$(( $(date +%s) - START ))
cp "$RESULTS" "$SCRATCH/storm-results.jsonl"
python3 - "$RESULTS" "$OUT" "$BROKERS" "$NOFILE" "$ELAPSED" "${BEFORE_BIN:-}" <<'PY'
import datetime, json, os, platform, subprocess, sys

results_path, out_path, brokers, nofile, elapsed, before_bin = sys.argv[1:7]
brokers = brokers.split()
runs = {}
lines_raw = [line.strip() for line in open(results_path) if line.strip()]
for line in lines_raw:
    r = json.loads(line)
    runs[(r["name"], r["broker"])] = r

def cpu_model():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"

def ms(v, digits=1):
    return "–" if v is None else f"{v:,.{digits}f} ms"

def mib(v):
    return "–" if v is None else f"{v / 1048576:,.0f}"

def window(r, name):
    for w in r.get("probe") or []:
        if w["name"] == name:
            return w
    return None

def lat(w):
    if not w or not w["latency"]["samples"]:
        return "–"
    l = w["latency"]
    return f"{l['maxMs']:,.1f} / {l['p99Ms']:,.1f} / {l['p50Ms']:,.2f}"

def probe_rows(name, windows):
    rows = []
    for wname, label in windows:
        rows.append((f"probe latency {label}: max / p99 / p50 (ms)", lambda r, w=wname: lat(window(r, w))))
        rows.append((f"probe publishes {label}: sent, answer max (ms)",
                     lambda r, w=wname: "–" if not window(r, w) else f"{window(r, w)['published']} in {window(r, w)['seconds']:.1f} s, {window(r, w)['answerMaxMs']:,.1f}"))
    return rows

sections = []
sections.append(("reset", "reset: idle subscribers reset at once (RST)", probe_rows("reset", [("before", "before"), ("after reset", "2 s after the reset")]) + [
    ("subscribers connected / reset", lambda r: f"{r['subscribersConnected']:,} / {r.get('reset', 0):,}"),
    ("broker noticed after", lambda r: ms(r.get("noticedMs"), 0) if r.get("noticedMs") is not None else "not within the timeout"),
    ("noticed within 1 s", lambda r: "yes" if r.get("noticedWithin1s") else "**no**"),
]))
sections.append(("connect", "connect: subscribers connecting within one second", probe_rows("connect", [("before", "before"), ("during", "during the second"), ("next", "the next second")]) + [
    ("streams started / asked", lambda r: f"{r['subscribersConnected']:,} / {r['subscribers']:,}"),
    ("failures", lambda r: ", ".join(f"{k}: {v}" for k, v in sorted((r.get("connectFailuresByKind") or {}).items())) or "0"),
    ("all streams started (bench)", lambda r: ms(r.get("benchAllStartedMs"), 0)),
    ("all registered (broker count)", lambda r: ms(r.get("brokerAllRegisteredMs"), 0) if r.get("brokerAllRegisteredMs") is not None else "not within the timeout"),
]))
for name in sorted({k[0] for k in runs if k[0].startswith("overload-")}, key=lambda s: -int(s.split("-")[1])):
    readers = int(name.split("-")[1])
    sections.append((name, f"overload: producers faster than the fan-out, {readers:,} readers", [
        ("answers", lambda r: ", ".join(f"{k}: {v:,}" for k, v in sorted(r.get("statuses", {}).items()))),
        ("accepted events/s", lambda r: f"{r.get('acceptedPerSecond', 0):,.0f}"),
        ("readers disconnected by the broker", lambda r: f"{r.get('readersDisconnected', 0):,} of {r['subscribersConnected']:,}"),
        ("complete readers", lambda r: "–" if r.get("completeReaders") is None else f"{r['completeReaders']:,}"),
        ("completeness", lambda r: "–" if r.get("completeness") is None else f"{r['completeness']:.3f}"),
        ("refused but received (should be 0)", lambda r: f"{r.get('refusedReceived', 0):,}"),
        ("publisher connections closed by the broker", lambda r: f"{r.get('publishersClosedByBroker', 0):,}"),
        ("last answer after (s)", lambda r: "–" if r.get("lastAnswerSeconds") is None else f"{r['lastAnswerSeconds']:.1f}"),
        ("latency p50 / p99 / max (ms)", lambda r: "–" if not r.get("latency") or not r["latency"]["samples"] else f"{r['latency']['p50Ms']:,.0f} / {r['latency']['p99Ms']:,.0f} / {r['latency']['maxMs']:,.0f}"),
        ("publish answer p99 / max (ms)", lambda r: "–" if not r.get("publishAnswer") else f"{r['publishAnswer']['p99Ms']:,.1f} / {r['publishAnswer']['maxMs']:,.1f}"),
        ("broker RSS before → after (peak), MiB", lambda r: f"{mib(r.get('brokerRSSBeforeBytes'))} → {mib(r.get('brokerRSSAfterBytes'))} ({mib(r.get('brokerRSSPeakBytes'))})"),
        ("broker CPU (s)", lambda r: "–" if r.get("brokerCPUSeconds") is None else f"{r['brokerCPUSeconds']:.1f}"),
        ("drained", lambda r: "yes" if r.get("drained") else "no"),
    ]))

labels = {"ours": "this tree", "before": "before (BEFORE_BIN)", "nchan": "nchan"}
out = []
w = out.append
w("# Storms")
w("")
w(f"- Date: {datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}; `scripts/storm.sh`, {int(elapsed) // 60} min {int(elapsed) % 60} s")
w(f"- Machine: `nproc` {subprocess.run(['nproc'], capture_output=True, text=True).stdout.strip()}, {cpu_model()}, Linux {platform.release()}, `ulimit -n` {nofile}")
try:
    nginx = subprocess.run(['nginx', '-v'], capture_output=True, text=True).stderr.strip()
    nchan = subprocess.run(['dpkg-query', '-W', '-f', '${Version}', 'libnginx-mod-nchan'], capture_output=True, text=True).stdout.strip()
    w(f"- nginx: {nginx}; nchan: Debian libnginx-mod-nchan {nchan}")
except OSError:
    pass
if before_bin:
    w(f"- before: `{before_bin}`")
w("- Broker pinned to CPU 0, sse-bench to CPU 1 (`taskset`); a fresh broker per storm.")
w("")
for key, title, rows in sections:
    present = [b for b in brokers if (key, b) in runs]
    if not present:
        continue
    w(f"## {title}")
    w("")
    w("| | " + " | ".join(labels.get(b, b) for b in present) + " |")
    w("| --- |" + " ---: |" * len(present))
    for label, f in rows:
        cells = []
        for b in present:
            try:
                cells.append(str(f(runs[(key, b)])))
            except (KeyError, TypeError, ValueError):
                cells.append("–")
        w(f"| {label} | " + " | ".join(cells) + " |")
    notes = [(b, n) for b in present for n in runs[(key, b)].get("notes") or []]
    if notes:
        w("")
        for b, n in notes:
            w(f"- {labels.get(b, b)}: {n}")
    w("")
w("## Raw results (one JSON line per run)")
w("")
w("```json")
out.extend(lines_raw)
w("```")
open(out_path, "w").write("\n".join(out) + "\n")
PY
echo "== wrote $OUT (raw results: $SCRATCH/storm-results.jsonl) in $ELAPSED s" >&2
