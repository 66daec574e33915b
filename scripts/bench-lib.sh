# Shared by scripts/bench-compare.sh and scripts/storm.sh (sourced, not run): stopping the broker
# under test, and loopback ports. The caller sets STOP_PID, BROKER_PID and FD_OPEN (fd 3 holds a
# headless console's stdin open).

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
