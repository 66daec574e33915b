#!/usr/bin/env bash
# What the consoles' all-nodes clients table costs, on release binaries as deployed: three real
# sse-console nodes of one cluster on the local PostgreSQL, SSE_MEASURE_CLIENTS (default 10,000) idle
# subscribers on each (one `sse-bench idle` per node), WINDOW seconds (default 20) with nobody
# watching, then WINDOW seconds with node m1's terminal console (in tmux, 120x40) showing every
# node's clients (`a`). Prints, per window: each node's CPU, its UI thread's, PostgreSQL's, WAL
# bytes/s and snapshot rows written; and each node's snapshot size. Bounded: about two minutes.
#
#     SSE_TEST_POSTGRES_URL=postgres://sse:sse@127.0.0.1:5432/sse_test?sslmode=disable scripts/measure-all-nodes.sh
#     (SKIP_BUILD=1 uses what is built; SCRATCH=.build-release is the default scratch path)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/cluster-lib.sh
: "${SSE_TEST_POSTGRES_URL:?set SSE_TEST_POSTGRES_URL (see scripts/postgres-test-db.sh)}"
SCRATCH=${SCRATCH:-.build-release}
N=${SSE_MEASURE_CLIENTS:-10000}
WINDOW=${WINDOW:-20}
if [ -z "${SKIP_BUILD:-}" ]; then
    swift build -c release --scratch-path "$SCRATCH" --product sse-console >/dev/null
    swift build -c release --scratch-path "$SCRATCH" --product sse-bench >/dev/null
fi
BIN=$SCRATCH/release
URL=$SSE_TEST_POSTGRES_URL
PSQL_URL=${URL%%\?*}
PREFIX=measure$(date +%s)
WORK=$(mktemp -d)
SESSION=measure-all-nodes-$$
ulimit -n "$(ulimit -Hn)"
sql() { psql "$PSQL_URL" -qAt -c "$1"; }
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    tmux kill-session -t "$SESSION" 2>/dev/null || true
    sleep 1
    drop_cluster_objects "$URL" "$PREFIX" || true
    rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
ports=("$(free_port)" "$(free_port)" "$(free_port)")
common=(--host 127.0.0.1 --cluster "$URL" --cluster-prefix "$PREFIX" --heartbeat 60)

# m1 with the terminal console; m2 and m3 headless (stdin held open).
tmux new-session -d -s "$SESSION" -x 120 -y 40 \
    "TERM=xterm-256color $BIN/sse-console --port ${ports[0]} ${common[*]} --node-name m1 2>$WORK/m1.err; sleep 600"
for i in 2 3; do
    sleep 600 | "$BIN/sse-console" --no-tui --port "${ports[$((i - 1))]}" "${common[@]}" --node-name "m$i" \
        >"$WORK/m$i.out" 2>"$WORK/m$i.err" &
    pids+=($!)
done
wait_for() {  # what, seconds, command...
    local what=$1 seconds=$2
    shift 2
    for _ in $(seq 1 $((seconds * 10))); do
        if "$@" >/dev/null 2>&1; then return 0; fi
        sleep 0.1
    done
    echo "timed out waiting for $what" >&2
    exit 1
}
for port in "${ports[@]}"; do wait_for "the node on $port" 60 curl -sf -o /dev/null "http://127.0.0.1:$port/"; done
m1=$(for pid in $(pgrep -x sse-console); do
    tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "--node-name m1" && echo "$pid"; done | head -1)
node_pids=("$m1" "${pids[@]}")
pids+=("$m1")

for i in 0 1 2; do
    "$BIN/sse-bench" idle --url "http://127.0.0.1:${ports[$i]}" -n "$N" --hold $((2 * WINDOW + 40)) \
        --connect-batch 500 --settle 1 --id-prefix "n$((i + 1))c" >"$WORK/bench$i.out" 2>&1 &
    pids+=($!)
done
presence() { [ "$(sql "SELECT count(*) FROM ${PREFIX}_presence")" = "$((3 * N))" ]; }
wait_for "$((3 * N)) connections in the presence table" 120 presence

ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
ui_ticks() {
    for task in /proc/"$1"/task/*; do
        if [ "$(cat "$task/comm")" = "sse-console-ui" ]; then awk '{print $14 + $15}' "$task/stat"; return; fi
    done
    echo 0
}
pg_ticks() { for pid in $(pgrep -u postgres); do awk '{print $14 + $15}' "/proc/$pid/stat" 2>/dev/null; done | awk '{s += $1} END {print s + 0}'; }
wal() { sql "SELECT (pg_current_wal_lsn() - '0/0'::pg_lsn)::int8"; }
snapshot_writes() { sql "SELECT coalesce(sum(n_tup_upd + n_tup_ins), 0) FROM pg_stat_user_tables WHERE relname = '${PREFIX}_client_snapshots'"; }
hz=$(getconf CLK_TCK)

measure() {  # label
    local label=$1 start_wal start_pg start_ui start_rows
    local -a start
    for pid in "${node_pids[@]}"; do start+=("$(ticks "$pid")"); done
    start_ui=$(ui_ticks "$m1") start_pg=$(pg_ticks) start_wal=$(wal) start_rows=$(snapshot_writes)
    sleep "$WINDOW"  # the measurement window
    sleep 0.6         # pg_stat counters are flushed at most every 500 ms
    local line="$label:"
    for i in 0 1 2; do
        line+=" m$((i + 1)) $(awk -v a="${start[$i]}" -v b="$(ticks "${node_pids[$i]}")" -v hz="$hz" -v w="$WINDOW" \
            'BEGIN {printf "%.1f%%", 100 * (b - a) / hz / w}') ·"
    done
    line+=" m1 UI thread $(awk -v a="$start_ui" -v b="$(ui_ticks "$m1")" -v hz="$hz" -v w="$WINDOW" 'BEGIN {printf "%.1f%%", 100 * (b - a) / hz / w}')"
    line+=" · PostgreSQL $(awk -v a="$start_pg" -v b="$(pg_ticks)" -v hz="$hz" -v w="$WINDOW" 'BEGIN {printf "%.1f%%", 100 * (b - a) / hz / w}')"
    line+=" · WAL $(awk -v a="$start_wal" -v b="$(wal)" -v w="$WINDOW" 'BEGIN {printf "%.1f KB/s", (b - a) / 1000 / w}')"
    line+=" · snapshot rows written $(($(snapshot_writes) - start_rows))"
    echo "$line (CPU in % of one core)"
}

echo "all-nodes table cost: 3 nodes x $N clients, release build, ${WINDOW}s windows, $(nproc) CPUs"
measure "nobody watching"
tmux send-keys -t "$SESSION" Escape a
others_shown() { tmux capture-pane -p -t "$SESSION" | grep -q "m2" && tmux capture-pane -p -t "$SESSION" | grep -q "m3"; }
wait_for "m1's table showing m2 and m3" 30 others_shown
measure "m1 shows every node's clients"
echo "snapshots (node, connections, bytes stored, bytes as text):"
sql "SELECT node_id, clients, pg_column_size(body), octet_length(body) FROM ${PREFIX}_client_snapshots ORDER BY node_id" | sed 's/^/  /'
tmux capture-pane -p -t "$SESSION" | head -12 | sed 's/^/  | /'
