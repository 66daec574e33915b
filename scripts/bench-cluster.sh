#!/usr/bin/env bash
# Cluster benchmark: 3 `sse-console --cluster` nodes sharing one PostgreSQL backplane, against one
# clustered node and one stand-alone node, loaded by `sse-bench` on loopback. Prints a Markdown
# report (tables for BENCHMARKS.md) to $OUT.
#
#   scripts/bench-cluster.sh                          # 2 repetitions, about 9 minutes
#   REPS=1 N=500 scripts/bench-cluster.sh
#   ONLY='rate|saturation' CONFIGS='cluster3 single' scripts/bench-cluster.sh
#   APPEND=1 REP_FROM=3 REPS=1 CONFIGS=cluster3 scripts/bench-cluster.sh   # add runs to the last results
#
# Every run starts fresh brokers with a table prefix of their own (dropped after the run), so the
# events table holds exactly that run's events: publishes per transaction are counted from it
# (`created_at` is `now()`, the transaction's start, so rows of one transaction share it).
# All brokers run pinned to CPU 0 (so each makes one event loop), sse-bench pinned to CPU 1,
# PostgreSQL unpinned: on a 2-core machine everything is contended, which the report says.
# Root is needed for scripts/postgres-test-db.sh (it installs and starts PostgreSQL if missing).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/cluster-lib.sh

REPS=${REPS:-2}
REP_FROM=${REP_FROM:-1}
N=${N:-1000}
RATE=${RATE:-50}               # events/s of the fixed-rate workload
RATE_SECONDS=${RATE_SECONDS:-10}
SAT_SECONDS=${SAT_SECONDS:-6}
PUBLISHERS=${PUBLISHERS:-8}
WIDE_PUBLISHERS=${WIDE_PUBLISHERS:-32}   # more publishes waiting together: larger group commits
CONFIGS=${CONFIGS:-"cluster3 cluster1 single"}
ONLY=${ONLY:-"rate|saturation|wide|targeted"}
OUT=${OUT:-.build/bench-cluster.md}
DB_URL=${DB_URL:-"postgres://sse:sse@127.0.0.1:5432/sse_test?sslmode=disable"}
BROKER_CPU=${BROKER_CPU:-0}
BENCH_CPU=${BENCH_CPU:-1}
BIN=.build/release
RUN_ID="bc$(($(date +%s) % 100000))_$$"   # table prefixes are at most 40 characters
SCRATCH=$(mktemp -d)
mkdir -p "$(dirname "$OUT")"
RESULTS="${OUT%.md}.jsonl"   # one JSON line per run, written as the runs finish
[ "${APPEND:-0}" = 1 ] || : >"$RESULTS"

psql_sse() { PGPASSWORD=sse psql -h 127.0.0.1 -U sse -d sse_test -v ON_ERROR_STOP=1 -qAt "$@"; }

echo "== building release" >&2
swift build -c release --product sse-console >&2
swift build -c release --product sse-bench >&2
echo "== PostgreSQL" >&2
scripts/postgres-test-db.sh >&2
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

NODE_PIDS=()
PREFIXES=()
cleanup() {
    for pid in "${NODE_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for prefix in "${PREFIXES[@]}"; do drop_tables "$prefix" || true; done
    rm -rf "$SCRATCH"
}
trap cleanup EXIT

drop_tables() {
    local p=$1
    drop_cluster_objects "$DB_URL" "$p"
}

# start_node NAME [PREFIX]: starts a node on a free port; sets PORT and PID. Fails if it does not
# come up (or, clustered, online) within 30 s.
start_node() {
    local name=$1 prefix=${2:-}
    local log="$SCRATCH/$name.out"
    rm -f "$log"   # not the port of the previous run's node of that name
    local args=(--no-tui --port 0)
    [ -n "$prefix" ] && args+=(--cluster "$DB_URL" --node-name "$name" --cluster-prefix "$prefix")
    taskset -c "$BROKER_CPU" "$BIN/sse-console" "${args[@]}" </dev/null >"$log" 2>"$SCRATCH/$name.err" &
    PID=$!
    NODE_PIDS+=("$PID")
    PORT=
    for _ in $(seq 1 150); do
        PORT=$(sed -n 's|^listening on http://[^:]*:\([0-9]*\)$|\1|p' "$log" 2>/dev/null | head -1)
        [ -n "$PORT" ] && break
        sleep 0.1
    done
    [ -n "$PORT" ] || { echo "node $name did not start" >&2; tail -5 "$SCRATCH/$name.err" >&2; return 1; }
    # A cluster node answers /healthz 200 once online (listening and caught up).
    for _ in $(seq 1 300); do
        curl -fs -m 2 "http://127.0.0.1:$PORT/healthz" >/dev/null && return 0
        sleep 0.1
    done
    echo "node $name not healthy: $(curl -s -m 2 "http://127.0.0.1:$PORT/healthz")" >&2
    tail -5 "$SCRATCH/$name.err" >&2
    return 1
}

stop_nodes() {
    for pid in "${NODE_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${NODE_PIDS[@]}"; do
        for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null || true
    done
    NODE_PIDS=()
}

# PostgreSQL processes working for these nodes: the backends of their connections (matched by
# client port), and the server's background processes (WAL writer, checkpointer, …).
postgres_pids() {
    local ports=()
    for pid in "$@"; do
        while read -r port; do ports+=("$port"); done < <(
            ss -tnpH state established "( dport = :5432 )" 2>/dev/null |
                awk -v p="pid=$pid," 'index($0, p) { n = split($3, a, ":"); print a[n] }')
    done
    local list
    list=$(IFS=,; echo "${ports[*]:-0}")
    runuser -u postgres -- psql -qAt -c \
        "SELECT pid FROM pg_stat_activity WHERE client_port IN ($list) OR backend_type <> 'client backend'" | paste -sd, -
}

run_one() {   # run_one CONFIG WORKLOAD REP
    local config=$1 workload=$2 rep=$3
    local prefix="" nodes=1 urls=() pids=()
    case "$config" in
        cluster3) nodes=3 ;;
        cluster1) nodes=1 ;;
        single) nodes=1 ;;
    esac
    if [ "$config" != single ]; then
        prefix="${RUN_ID}_${config}_${workload:0:3}_${rep}"
        PREFIXES+=("$prefix")
    fi
    for i in $(seq 1 "$nodes"); do
        if ! start_node "n$i" "$prefix"; then
            echo "   skipped: $config $workload rep $rep (a node did not come up)" >&2
            stop_nodes
            [ -n "$prefix" ] && drop_tables "$prefix"
            return 0
        fi
        urls+=("http://127.0.0.1:$PORT")
        pids+=("$PID")
    done
    # One publish per node opens its publishing connection before the pids of the backends are read.
    for url in "${urls[@]}"; do curl -fs -X POST --data warmup "$url/broadcast" >/dev/null || true; done
    sleep 0.5
    local aux=""
    [ -n "$prefix" ] && aux=$(postgres_pids "${pids[@]}")
    local url_list pid_list
    url_list=$(IFS=,; echo "${urls[*]}")
    pid_list=$(IFS=,; echo "${pids[*]}")
    local args
    case "$workload" in
        rate) args=(fanout -n "$N" --publishers 1 --rate "$RATE" --duration "$RATE_SECONDS") ;;
        saturation) args=(fanout -n "$N" --publishers "$PUBLISHERS" --duration "$SAT_SECONDS") ;;
        wide) args=(fanout -n "$N" --publishers "$WIDE_PUBLISHERS" --duration "$SAT_SECONDS") ;;
        targeted) args=(targeted -n "$N" --publishers "$PUBLISHERS" --duration "$SAT_SECONDS") ;;
    esac
    local head_before=0
    [ -n "$prefix" ] && head_before=$(psql_sse -c "SELECT coalesce(max(id), 0) FROM ${prefix}_events")
    echo "== $config $workload rep $rep (nodes ${urls[*]}, pids ${pids[*]}, postgres ${aux:-–})" >&2
    local json load
    load=$(cut -d' ' -f1 /proc/loadavg)
    if json=$(timeout 120 taskset -c "$BENCH_CPU" "$BIN/sse-bench" "${args[@]}" --url "$url_list" --publish-to all \
        --pid "$pid_list" ${aux:+--aux-pid "$aux"} --json); then
        local tx="null" events="null"
        if [ -n "$prefix" ]; then
            read -r events tx < <(psql_sse -F ' ' -c \
                "SELECT count(*), count(DISTINCT (node, created_at)) FROM ${prefix}_events WHERE id > $head_before")
        fi
        python3 -c 'import json,sys; r=json.loads(sys.argv[1]); r.update(config=sys.argv[2], name=sys.argv[3], rep=int(sys.argv[4]), dbEvents=json.loads(sys.argv[5]), dbTransactions=json.loads(sys.argv[6]), loadAverage=float(sys.argv[7])); print(json.dumps(r))' \
            "$json" "$config" "$workload" "$rep" "$events" "$tx" "$load" >>"$RESULTS"
        python3 -c 'import json,sys; r=json.loads(sys.argv[1]); l=r.get("latency") or {}; print("   published %s, delivered/s %.0f, verified %s, p50 %s ms, p99 %s ms, broker CPU %.1f %%, postgres CPU %s %%, failed publishes %s" % (r.get("published"), r.get("deliveredPerSecond") or 0, r.get("verified"), l.get("p50Ms"), l.get("p99Ms"), r.get("brokerCPUPercent") or 0, "%.1f" % r["auxCPUPercent"] if r.get("auxCPUPercent") is not None else "–", r.get("publishFailures")))' "$json" >&2
    else
        echo "   sse-bench failed for $config $workload" >&2
    fi
    stop_nodes
    [ -n "$prefix" ] && drop_tables "$prefix"
    sleep 1
}

for rep in $(seq "$REP_FROM" $((REP_FROM + REPS - 1))); do
    for workload in rate saturation wide targeted; do
        [[ "$workload" =~ ^(${ONLY})$ ]] || continue
        for config in $CONFIGS; do
            run_one "$config" "$workload" "$rep"
        done
    done
done

python3 - "$RESULTS" "$OUT" "$N" "$RATE" "$PUBLISHERS" "$WIDE_PUBLISHERS" <<'PY'
import json, statistics, sys
path, out, n, rate, publishers, wide = sys.argv[1:7]
runs = [json.loads(l) for l in open(path) if l.strip()]
names = {"cluster3": "3 nodes + PostgreSQL", "cluster1": "1 node + PostgreSQL", "single": "1 node, stand-alone"}
workloads = {
    "rate": f"fanout, {rate} ev/s, N={int(n):,}",
    "saturation": f"fanout, saturation ({publishers} publishers), N={int(n):,}",
    "wide": f"fanout, saturation ({wide} publishers), N={int(n):,}",
    "targeted": f"targeted, saturation ({publishers} publishers), N={int(n):,}",
}

def med(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None

def f(v, d=2):
    return "–" if v is None else f"{v:,.{d}f}"

lines = []
w = lines.append
w("| workload | brokers | published/s | delivered/s | p50 ms | p99 ms | every event once, in order | broker CPU % (sum) | broker µs / delivered event | PostgreSQL CPU % | publishes / transaction | runs |")
w("| --- | --- | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: |")
for wl in ("rate", "saturation", "wide", "targeted"):
    for cfg in ("cluster3", "cluster1", "single"):
        rs = [r for r in runs if r["name"] == wl and r["config"] == cfg]
        if not rs:
            continue
        lat = lambda k: med([r["latency"][k] for r in rs if r.get("latency") and r["latency"]["samples"]])
        ok = sum(1 for r in rs if r.get("verified"))
        per_tx = med([r["dbEvents"] / r["dbTransactions"] for r in rs if r.get("dbTransactions")])
        w(f"| {workloads[wl]} | {names[cfg]} | {f(med([r.get('publishedPerSecond') for r in rs]), 0)} | {f(med([r.get('deliveredPerSecond') for r in rs]), 0)} "
          f"| {f(lat('p50Ms'))} | {f(lat('p99Ms'))} | {ok} of {len(rs)} runs "
          f"| {f(med([r.get('brokerCPUPercent') for r in rs]), 0)} | {f(med([r.get('brokerCPUMicrosPerEvent') for r in rs]), 3)} "
          f"| {f(med([r.get('auxCPUPercent') for r in rs]), 0)} | {f(per_tx, 1)} | {len(rs)} |")
w("")
w("Every run:")
w("")
w("| workload | brokers | rep | published | delivered/s | complete subs | dup / back / pub-order | p50 ms | p99 ms | p99 per node ms | CPU s per node | PostgreSQL CPU s | events / transactions | bench CPU s | load avg |")
w("| --- | --- | ---: | ---: | ---: | ---: | --- | ---: | ---: | --- | --- | ---: | --- | ---: | ---: |")
for r in sorted(runs, key=lambda r: (r["name"], r["config"], r["rep"])):
    lat = r.get("latency") or {}
    by_url = " / ".join(f"{l['p99Ms']:.2f}" for l in r.get("latencyByURL") or [])
    per_pid = " / ".join(f"{c:.2f}" for c in r.get("brokerCPUSecondsByPID") or []) or f(r.get("brokerCPUSeconds"))
    tx = f"{r['dbEvents']:,} / {r['dbTransactions']:,}" if r.get("dbTransactions") else "–"
    w(f"| {r['name']} | {r['config']} | {r['rep']} | {r.get('published', 0):,} | {f(r.get('deliveredPerSecond'), 0)} "
      f"| {r.get('completeSubscribers')} of {r.get('subscribers')} | {r.get('duplicateIDs')} / {r.get('idsOutOfOrder')} / {r.get('publisherOrderViolations')} "
      f"| {f(lat.get('p50Ms'))} | {f(lat.get('p99Ms'))} | {by_url or '–'} | {per_pid} | {f(r.get('auxCPUSeconds'))} | {tx} | {f(r.get('benchCPUSeconds'))} | {f(r.get('loadAverage'), 1)} |")
open(out, "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
echo "== wrote $OUT (raw: ${OUT%.md}.jsonl)" >&2
