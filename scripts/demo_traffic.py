#!/usr/bin/env python3
"""Live demo traffic for a broker on loopback: subscribers that read, one that never reads, and
HTTP producers publishing a mix of events. Used by scripts/screenshots.sh; handy for trying the
console by hand too:

    scripts/demo_traffic.py --port 8080 --seconds 60

Loopback only; every loop is bounded by --seconds.
"""
import argparse, json, random, socket, sys, threading, time, urllib.parse, urllib.request

READERS = ["alice", "bob", "carol", "dashboard-1", "dashboard-2", "mobile-7f3a", "ops-tv", "grafana"]
# The topics some of them subscribe to (?topic=); the others get every event.
TOPICS = {"dashboard-1": ["price"], "dashboard-2": ["price", "note"], "mobile-7f3a": ["dm", "note"],
          "ops-tv": ["note", "snap*"], "grafana": ["pri*"]}


def subscribe(port, client_id, reads, deadline, agent):
    """Opens GET /connect?id=...; a reader drains the stream, a non-reader never reads a byte."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if not reads:
        # A tiny receive window so the broker's socket backs up quickly.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2048)
    s.connect(("127.0.0.1", port))
    topics = "".join(f"&topic={urllib.parse.quote(topic)}" for topic in TOPICS.get(client_id, []))
    s.sendall(f"GET /connect?id={client_id}{topics} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
              f"Accept: text/event-stream\r\nUser-Agent: {agent}\r\n\r\n".encode())
    s.settimeout(0.5)
    while time.monotonic() < deadline:
        if not reads:
            time.sleep(0.2)
            continue
        try:
            if not s.recv(65536):
                return  # kicked or shut down
        except socket.timeout:
            pass
        except OSError:
            return
    s.close()


def post(port, path, body):
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=body.encode(), method="POST")
    try:
        urllib.request.urlopen(request, timeout=2).read()
    except Exception:
        pass


def publish(port, deadline, rate):
    prices = {"ACME": 101.0, "GLOBEX": 54.2, "INITECH": 12.9}
    notes = ["deploy finished ✓", "cache warmed", "build #812 green", "日本語のテキスト", "2 lines\nof text"]
    interval = 1.0 / rate
    sequence = 0
    while time.monotonic() < deadline:
        sequence += 1
        roll = random.random()
        if roll < 0.6:
            symbol = random.choice(list(prices))
            prices[symbol] = round(prices[symbol] * random.uniform(0.99, 1.01), 2)
            path, body = "/broadcast?type=price", json.dumps({"symbol": symbol, "price": prices[symbol]})
        elif roll < 0.8:
            path, body = "/broadcast?type=note", random.choice(notes)
        elif roll < 0.9:
            target = random.choice(READERS[:4])
            path, body = f"/broadcast?type=dm&id={target}", f"hello {target}, message {sequence}"
        else:
            # Big events fill the non-reader's socket and backlog fast.
            path, body = "/broadcast?type=snapshot", json.dumps({"rows": ["x" * 60] * 500})
        post(port, path, body)
        time.sleep(interval)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--rate", type=float, default=8, help="events per second published")
    ap.add_argument("--stalled", default="stalled-laptop", help="id of the client that never reads ('' for none)")
    ap.add_argument("--burst-kib", type=int, default=0,
                    help="KiB sent to the stalled client alone at the start, to fill its socket buffers")
    args = ap.parse_args()
    deadline = time.monotonic() + args.seconds
    threads = []
    agents = ["Mozilla/5.0 (X11; Linux x86_64) Firefox/133.0", "curl/7.88.1", "Mozilla/5.0 Chrome/131.0"]
    for index, client_id in enumerate(READERS):
        threads.append(threading.Thread(target=subscribe, daemon=True,
                                        args=(args.port, client_id, True, deadline, agents[index % 3])))
    # A user with two tabs: two connections, one id.
    threads.append(threading.Thread(target=subscribe, daemon=True,
                                    args=(args.port, "alice", True, deadline, agents[0])))
    if args.stalled:
        threads.append(threading.Thread(target=subscribe, daemon=True,
                                         args=(args.port, args.stalled, False, deadline, "EventSource/stalled")))
    for thread in threads:
        thread.start()
        time.sleep(0.05)
    if args.stalled and args.burst_kib:
        time.sleep(0.3)
        chunk = json.dumps({"backfill": "y" * 32_000})
        for _ in range(max(1, args.burst_kib // 32)):
            post(args.port, f"/broadcast?type=backfill&id={args.stalled}", chunk)
    publish(args.port, deadline, args.rate)
    return 0


if __name__ == "__main__":
    sys.exit(main())
