#!/usr/bin/env bash
# Regenerates screenshots/*.png from a real sse-console session: the console runs in tmux, real
# subscribers and producers (scripts/demo_traffic.py) talk to its broker over loopback, keys are
# typed with send-keys, and each capture (with colours) is rendered to PNG by scripts/ansi2png.py.
#
#   scripts/screenshots.sh                 # builds the console (debug) if needed
#   SSE_CONSOLE=.build/release/sse-console scripts/screenshots.sh
#
# Needs tmux, Python with pillow (pip install -r scripts/requirements-screenshots.txt) and, for
# CJK text in the PNGs, a CJK font (apt-get install fonts-wqy-microhei).
set -euo pipefail
cd "$(dirname "$0")/.."

binary=${SSE_CONSOLE:-}
if [ -z "$binary" ]; then
  swift build --product sse-console >/dev/null
  binary=.build/debug/sse-console
fi
python3 -c 'import PIL' 2>/dev/null || pip install -q -r scripts/requirements-screenshots.txt

port=${PORT:-18$(( RANDOM % 900 + 100 ))}
socket="sse-screenshots-$$"
tmux_() { tmux -L "$socket" "$@"; }
traffic_pid=""
cleanup() {
  [ -n "$traffic_pid" ] && kill "$traffic_pid" 2>/dev/null || true
  tmux_ kill-server 2>/dev/null || true
}
trap cleanup EXIT

mkdir -p screenshots
capture_dir=$(mktemp -d)

# shot NAME TITLE: renders the pane as it is now.
shot() {
  local cols rows
  cols=$(tmux_ display-message -p -t console '#{pane_width}')
  rows=$(tmux_ display-message -p -t console '#{pane_height}')
  tmux_ capture-pane -p -e -t console >"$capture_dir/$1.ans"
  python3 scripts/ansi2png.py "$capture_dir/$1.ans" --cols "$cols" --rows "$rows" \
    --title "$2" --out "screenshots/$1.png"
  echo "screenshots/$1.png"
}

# wait_for PATTERN [SECONDS]: polls the pane until an extended regex matches (bounded).
wait_for() {
  local deadline=$(( $(date +%s) + ${2:-20} ))
  until tmux_ capture-pane -p -t console | grep -Eq "$1"; do
    [ "$(date +%s)" -lt "$deadline" ] || { echo "timed out waiting for /$1/" >&2; tmux_ capture-pane -p -t console >&2; exit 1; }
    sleep 0.1
  done
}

# A high tolerance and a large backlog so the stalled client's errors climb slowly enough to be
# seen; the header shows the settings in force.
tmux_ new-session -d -s console -x 120 -y 40 \
  "TERM=xterm-256color $binary --port $port --tolerance 8 --write-timeout 2 --max-backlog 8388608; sleep 60"
tmux_ set-option -t console status off >/dev/null
wait_for "http://127.0.0.1:$port"

python3 scripts/demo_traffic.py --port "$port" --seconds 60 --rate 4 --burst-kib 3000 2>/dev/null &
traffic_pid=$!

# 1. A client near its tolerance: the stalled laptop's sequential errors are climbing.
wait_for '^. *stalled-laptop .* [4-7]/8 ' 30
shot tolerance "sse-console — a stalled client nearing its tolerance"

# 2. Its client detail while it is still connected: facts, its misses with their reasons, and
# what it was sent (Enter on its row; the table is sorted by id).
tmux_ send-keys -t console Escape
tmux_ send-keys -t console Home
for _ in $(seq 1 20); do
  tmux_ capture-pane -p -t console | grep -Eq '^> stalled-laptop' && break
  tmux_ send-keys -t console Down
  sleep 0.1
done
tmux_ send-keys -t console Enter
wait_for 'Client stalled-laptop' 10
wait_for 'socket not writable for' 20
shot client-detail "sse-console — client detail (Enter on a client): a client missing events, and why"
tmux_ send-keys -t console Escape
wait_for 'Clients [0-9]' 10
tmux_ send-keys -t console -l ':'

# 3. The steady state a few seconds later: events flowing, the stalled client gone (over tolerance).
wait_for 'over-tol' 20
sleep 3
shot console "sse-console — live clients and events"

# 4. The command line: Tab completes a client id; the last result shows inline.
tmux_ send-keys -t console -l 'broadcastTo ca'
tmux_ send-keys -t console Tab
tmux_ send-keys -t console -l 'greeting hello from the console'
sleep 0.5
shot command-line "sse-console — typing a command (Tab completed the id)"
tmux_ send-keys -t console Enter
wait_for 'broadcastTo carol' 10

# 5. The help overlay.
tmux_ send-keys -t console F1
wait_for 'sse-console help' 10
shot help "sse-console — help (F1 or ?)"
tmux_ send-keys -t console Escape

# 6. The topics view: subscribers and traffic per topic; then back to the clients.
tmux_ send-keys -t console -l 'topics'
tmux_ send-keys -t console Enter
wait_for 'Topics [0-9]' 10
sleep 2
shot topics "sse-console — the topics view (topics, or t)"
tmux_ send-keys -t console Escape
tmux_ send-keys -t console -l 't'
wait_for 'Clients [0-9]' 10

# 7. The event detail: Enter on a log entry (the newest price, filtered to); JSON is pretty-printed.
tmux_ send-keys -t console -l ':filter price'
tmux_ send-keys -t console Enter
tmux_ send-keys -t console Escape
tmux_ send-keys -t console Tab
tmux_ send-keys -t console Enter
wait_for 'Data \(JSON' 10
shot event-detail "sse-console — event detail (Enter on a log entry)"
tmux_ send-keys -t console Escape
tmux_ send-keys -t console -l ':filter'
tmux_ send-keys -t console Enter
tmux_ send-keys -t console Escape
tmux_ send-keys -t console Tab

# 8. The rates pane under the header: the last minute of events/s in and out (half a minute of
# traffic by now, so the sparklines have a shape).
sleep 8
shot rates "sse-console — the rates pane: events/s in and out over the last minute"

# 9. The smallest supported terminal.
tmux_ resize-window -t console -x 80 -y 24
wait_for '── Log' 10
sleep 1
shot small-80x24 "sse-console — 80x24"

tmux_ send-keys -t console -l 'quit'
tmux_ send-keys -t console Enter
rm -rf "$capture_dir"
