#!/usr/bin/env bash
# Renders screenshots/cluster.png (and all-nodes.png: every node's clients, key `a`) from a real three-node cluster: n2 and n3 run headless, n1 runs
# the console in tmux; all three share one PostgreSQL backplane (a fresh table prefix, dropped at
# the end). scripts/demo_traffic.py publishes to n1 and subscribes there; curl subscribers sit on
# n2 and n3, so every node has clients and every node's last event id moves.
#
#   scripts/cluster-screenshot.sh           # SSE_TEST_POSTGRES_URL or the scripts/postgres-test-db.sh database
#
# Needs what scripts/screenshots.sh needs, plus psql for the clean-up.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/cluster-lib.sh

binary=${SSE_CONSOLE:-}
if [ -z "$binary" ]; then
  swift build --product sse-console >/dev/null
  binary=.build/debug/sse-console
fi
python3 -c 'import PIL' 2>/dev/null || pip install -q -r scripts/requirements-screenshots.txt

database=${SSE_TEST_POSTGRES_URL:-postgres://sse:sse@127.0.0.1:5432/sse_test?sslmode=disable}
prefix="shot$(od -An -N4 -tx4 /dev/urandom | tr -d ' ')"
base=${PORT:-18$(( RANDOM % 800 + 100 ))}
socket="sse-cluster-screenshot-$$"
tmux_() { tmux -L "$socket" "$@"; }
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  tmux_ kill-server 2>/dev/null || true
  wait 2>/dev/null || true
  drop_cluster_objects "$database" "$prefix" || true
}
trap cleanup EXIT

wait_for() {
  local deadline=$(( $(date +%s) + ${2:-20} ))
  until tmux_ capture-pane -p -t console | grep -Eq "$1"; do
    [ "$(date +%s)" -lt "$deadline" ] || { echo "timed out waiting for /$1/" >&2; tmux_ capture-pane -p -t console >&2; exit 1; }
    sleep 0.1
  done
}

cluster=(--cluster "$database" --cluster-prefix "$prefix")
for n in 2 3; do
  "$binary" --no-tui --port $(( base + n - 1 )) --node-name "n$n" "${cluster[@]}" </dev/null >/dev/null 2>&1 &
  pids+=($!)
done

tmux_ new-session -d -s console -x 120 -y 32 \
  "TERM=xterm-256color $binary --port $base --node-name n1 --cluster '$database' --cluster-prefix $prefix; sleep 60"
tmux_ set-option -t console status off >/dev/null
wait_for 'n1 online'
# n2 and n3 listen once they are online too: their subscribers connect after that.
for port in $(( base + 1 )) $(( base + 2 )); do
  for _ in $(seq 1 100); do curl -sf -o /dev/null "http://127.0.0.1:$port/healthz" && break; sleep 0.1; done
done

for id in kiosk-lobby kiosk-cafe; do
  curl -sN "http://127.0.0.1:$(( base + 1 ))/connect?id=$id" >/dev/null & pids+=($!)
done
for id in ops-wall grafana-bridge mobile-7731; do
  curl -sN "http://127.0.0.1:$(( base + 2 ))/connect?id=$id" >/dev/null & pids+=($!)
done
python3 scripts/demo_traffic.py --port "$base" --seconds 60 --rate 4 --stalled '' 2>/dev/null &
pids+=($!)

wait_for '^  n3 .* 3 ' 20
wait_for 'Clients [1-9]' 20
sleep 4

capture=$(mktemp)
tmux_ capture-pane -p -e -t console >"$capture"
python3 scripts/ansi2png.py "$capture" --cols 120 --rows 32 \
  --title "sse-console — node n1 of a three-node cluster" --out screenshots/cluster.png
rm -f "$capture"
echo screenshots/cluster.png

# Every node's clients: navigation mode, `a`, and `n` to give the cluster pane's rows to the table;
# rows from n2 and n3 arrive with their snapshots.
tmux_ send-keys -t console Escape
tmux_ send-keys -t console -l 'a'
wait_for 'all nodes' 10
tmux_ send-keys -t console -l 'n'

wait_for 'Clients 14 · all nodes' 15
sleep 1
capture=$(mktemp)
tmux_ capture-pane -p -e -t console >"$capture"
python3 scripts/ansi2png.py "$capture" --cols 120 --rows 32 \
  --title "sse-console — every node's clients, from node n1" --out screenshots/all-nodes.png
rm -f "$capture"
echo screenshots/all-nodes.png
tmux_ send-keys -t console -l ':quit'
tmux_ send-keys -t console Enter
