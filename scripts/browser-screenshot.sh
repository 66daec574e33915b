#!/usr/bin/env bash
# Regenerates screenshots/browser-page.png (1100x800 viewport): the broker's page (GET /) in headless Chromium, driven
# through chromedriver's WebDriver API, with a few events published over HTTP while it is open and
# one published from its own form.
#
#   scripts/browser-screenshot.sh                   # builds sse-console (debug) if needed
#   SSE_CONSOLE=.build/release/sse-console scripts/browser-screenshot.sh
#
# Needs chromium and chromium-driver (apt-get install -y chromium chromium-driver) and python3.
set -euo pipefail
cd "$(dirname "$0")/.."

work=$(mktemp -d)
binary=${SSE_CONSOLE:-}
if [ -z "$binary" ]; then
  swift build --product sse-console >"$work/build.log" 2>&1 || { cat "$work/build.log" >&2; exit 1; }
  binary=.build/debug/sse-console
fi
console_pid=""
driver_pid=""
cleanup() {
  [ -n "$driver_pid" ] && kill "$driver_pid" 2>/dev/null || true
  [ -n "$console_pid" ] && kill "$console_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# wait_for FILE PATTERN: polls a log file until an extended regex matches (bounded, 20 s).
wait_for() {
  local deadline=$(( $(date +%s) + 20 ))
  until grep -Eq "$2" "$1"; do
    [ "$(date +%s)" -lt "$deadline" ] || { echo "timed out waiting for /$2/ in $1" >&2; cat "$1" >&2; exit 1; }
    sleep 0.1
  done
}

"$binary" --no-tui --port 0 --retry 1 </dev/null >"$work/console.out" 2>"$work/console.err" &
console_pid=$!
wait_for "$work/console.out" '^listening on http://'
url=$(sed -n 's/^listening on //p' "$work/console.out")

chromedriver --port=0 >"$work/driver.out" 2>&1 &
driver_pid=$!
wait_for "$work/driver.out" 'started successfully on port [0-9]+'
driver_port=$(sed -n 's/.*started successfully on port \([0-9]*\).*/\1/p' "$work/driver.out")

mkdir -p screenshots
python3 - "$url" "$driver_port" "$work" <<'PY'
import base64, json, sys, time, urllib.request

broker, driver_port, work = sys.argv[1], sys.argv[2], sys.argv[3]

def call(method, path, body=None, base=f"http://127.0.0.1:{driver_port}"):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(base + path, data=data, method=method, headers={"Content-Type": "application/json"})
    return json.load(urllib.request.urlopen(request, timeout=30))["value"]

def publish(query, data):
    request = urllib.request.Request(f"{broker}/broadcast?{query}", data=data.encode(), method="POST")
    return urllib.request.urlopen(request, timeout=10).read()

session = call("POST", "/session", {"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": {
    "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
             "--hide-scrollbars", f"--user-data-dir={work}/profile", "--window-size=1100,1100"]}}}})["sessionId"]
try:
    s = f"/session/{session}"
    def js(script, *args):
        return call("POST", f"{s}/execute/sync", {"script": script, "args": list(args)})
    def wait(script, what):
        deadline = time.time() + 20
        while not js(script):
            if time.time() > deadline:
                raise SystemExit(f"timed out waiting for {what}")
            time.sleep(0.05)
    # Topics chosen before connecting: a chat event never reaches the page.
    call("POST", f"{s}/url", {"url": f"{broker}/?id=dashboard&types=price,news,alert&topics=price,news,alert*,message"})
    wait("return document.getElementById('state').textContent === 'open'", "the stream")
    publish("type=price", '{"acme":101.5,"globex":42.0}')
    publish("type=news", "Broker restarted without losing an event\n(replayed from Last-Event-ID)")
    publish("type=chat", "not for the dashboard: no topic of it matches")
    publish("type=price", '{"acme":101.75,"globex":41.9}')
    publish("", "a plain message event")
    publish("type=alert&id=dashboard", "only for dashboard: backlog over 80%")
    publish("type=price", '{"acme":102.0,"globex":41.8}')
    js("""document.getElementById('pub-type').value = 'news';
          document.getElementById('pub-target').value = 'dashboard';
          document.getElementById('pub-data').value = 'sent from this page\\'s form';
          document.querySelector('#publish button').click();""")
    wait("return document.querySelectorAll('#events tbody tr').length === 7 && document.getElementById('result').className !== ''", "seven events")
    png = base64.b64decode(call("GET", f"{s}/screenshot"))
    with open("screenshots/browser-page.png", "wb") as out:
        out.write(png)
    print("screenshots/browser-page.png")
finally:
    call("DELETE", f"/session/{session}")
PY
