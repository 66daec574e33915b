#!/usr/bin/env python3
"""An HTTP/2 client for the broker's tests, driven line by line on stdin (Python's `h2`, a protocol
implementation independent of the server's swift-nio-http2).

    h2client.py PORT [--tls] [--window BYTES]

One connection (h2c with prior knowledge, or TLS with ALPN h2, certificate not verified). Commands,
one per line; each answers one line on stdout:

    open ID [stall]     GET /connect?id=ID on a new stream  -> "open ID STATUS"
                        (stall: the stream's window is never replenished; the connection's is)
    post PATH BODY      POST PATH                            -> "response STATUS BODY"
    count N             until every open stream not reset or stalled has N events -> "count N"
    reset-of ID         until stream ID is reset by the server -> "reset ID CODE"
    report              -> "report JSON" ({id: {"events": [ids], "reset": code|null}}, "goaway": code|null)
    rapid-reset K       opens K streams and resets each at once, then pings -> "rapid-reset GOAWAY|none"
    goaway              until the server's GOAWAY           -> "goaway CODE"
    settings            the server's SETTINGS -> "settings max_concurrent_streams=N max_header_list_size=N"
    big-header N        a request with an N-byte header     -> "big-header status=S reset=R goaway=G"

A wait that has not finished after 20 s answers "timeout ..." with the report.
"""
import json
import select
import socket
import ssl
import sys
import time

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings

port = int(sys.argv[1])
use_tls = "--tls" in sys.argv
window = 65535
if "--window" in sys.argv:
    window = int(sys.argv[sys.argv.index("--window") + 1])

raw = socket.create_connection(("127.0.0.1", port))
if use_tls:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_alpn_protocols(["h2"])
    raw = context.wrap_socket(raw, server_hostname="localhost")
    assert raw.selected_alpn_protocol() == "h2", raw.selected_alpn_protocol()
sock = raw
conn = h2.connection.H2Connection(config=h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
conn.initiate_connection()
conn.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: window})
sock.sendall(conn.data_to_send())

streams = {}  # stream id -> state
by_name = {}  # client id -> stream id
goaway = None
pong = False
inbound = b""
settings_received = False


def out(line):
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def report():
    return json.dumps(
        {
            "streams": {
                s["name"]: {"events": s["events"], "reset": s["reset"], "status": s["status"]}
                for s in streams.values()
                if s["name"]
            },
            "goaway": goaway,
        }
    )


def new_stream(name, method, path, body=None, stall=False):
    sid = conn.get_next_available_stream_id()
    headers = [(":method", method), (":scheme", "https" if use_tls else "http"), (":authority", f"127.0.0.1:{port}"), (":path", path)]
    conn.send_headers(sid, headers, end_stream=body is None)
    if body is not None:
        conn.send_data(sid, body.encode(), end_stream=True)
    streams[sid] = {"name": name, "status": None, "events": [], "buffer": b"", "body": b"", "reset": None, "ended": False, "stall": stall}
    if name:
        by_name[name] = sid
    return sid


def parse_events(s):
    while b"\n\n" in s["buffer"]:
        block, s["buffer"] = s["buffer"].split(b"\n\n", 1)
        for line in block.split(b"\n"):
            if line.startswith(b"id:"):
                s["events"].append(line[3:].strip().decode())


def pump(timeout):
    """Reads and handles what arrives within `timeout` seconds."""
    global goaway, pong, inbound, settings_received
    readable, _, _ = select.select([sock], [], [], timeout)
    if not readable:
        return
    try:
        data = sock.recv(65536)
    except OSError:
        data = b""
    if not data:
        if goaway is None:
            goaway = -1  # closed without a GOAWAY
        return
    inbound += data
    events = []
    # Frame by frame, so that a GOAWAY is seen even when frames behind it make h2 (closed by then) throw.
    while len(inbound) >= 9:
        length = int.from_bytes(inbound[0:3], "big")
        if len(inbound) < 9 + length:
            break
        frame, inbound = inbound[: 9 + length], inbound[9 + length :]
        if frame[3] == 0x7 and goaway is None:
            goaway = int.from_bytes(frame[13:17], "big")
        if conn.state_machine.state == h2.connection.ConnectionState.CLOSED:
            # h2 stops at the first GOAWAY; a graceful one is followed by a PING that the server
            # waits for before its final GOAWAY: acknowledged here by hand.
            if frame[3] == 0x6 and not frame[4] & 0x1:
                sock.sendall(b"\x00\x00\x08\x06\x01\x00\x00\x00\x00" + frame[9:17])
            continue
        events += conn.receive_data(frame)
    for event in events:
        if isinstance(event, h2.events.ResponseReceived):
            s = streams.get(event.stream_id)
            if s:
                s["status"] = int(dict(event.headers)[":status"])
        elif isinstance(event, h2.events.DataReceived):
            s = streams.get(event.stream_id)
            if s and s["stall"]:
                # The connection's window is given back; the stream's never is.
                conn.increment_flow_control_window(event.flow_controlled_length)
            else:
                conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            if s:
                if s["name"] is not None and s["status"] == 200:
                    s["buffer"] += event.data
                    parse_events(s)
                else:
                    s["body"] += event.data
        elif isinstance(event, h2.events.StreamReset):
            s = streams.get(event.stream_id)
            if s:
                s["reset"] = int(event.error_code)
        elif isinstance(event, h2.events.StreamEnded):
            s = streams.get(event.stream_id)
            if s:
                s["ended"] = True
        elif isinstance(event, h2.events.RemoteSettingsChanged):
            settings_received = True
        elif isinstance(event, h2.events.PingAckReceived):
            pong = True
    flush()


def wait_until(condition, what):
    deadline = time.monotonic() + 20
    while not condition():
        if time.monotonic() > deadline:
            out(f"timeout {what} {report()}")
            return False
        pump(0.05)
    return True


def flush():
    pending = conn.data_to_send()
    if pending:
        try:
            sock.sendall(pending)
        except OSError:
            pass


out("connected")
readers = [sock, sys.stdin.buffer]
stdin_buffer = b""
while True:
    readable, _, _ = select.select(readers, [], [], 0.1)
    if sock in readable:
        pump(0)
        if goaway == -1 and sock in readers:
            readers.remove(sock)
    if sys.stdin.buffer not in readable:
        continue
    chunk = sys.stdin.buffer.read1(4096)
    if not chunk:
        break
    stdin_buffer += chunk
    while b"\n" in stdin_buffer:
        line, stdin_buffer = stdin_buffer.split(b"\n", 1)
        words = line.decode().split(" ", 2)
        command = words[0]
        if command == "open":
            name = words[1]
            sid = new_stream(name, "GET", f"/connect?id={name}", stall=len(words) > 2 and words[2] == "stall")
            flush()
            if wait_until(lambda: streams[sid]["status"] is not None or streams[sid]["reset"] is not None, f"open {name}"):
                out(f"open {name} {streams[sid]['status']}")
        elif command == "post":
            sid = new_stream(None, "POST", words[1], body=words[2] if len(words) > 2 else "")
            flush()
            if wait_until(lambda: streams[sid]["ended"] or streams[sid]["reset"] is not None, "post"):
                out(f"response {streams[sid]['status']} {streams[sid]['body'].decode()}")
        elif command == "count":
            n = int(words[1])
            live = lambda: [s for s in streams.values() if s["name"] and s["status"] == 200 and s["reset"] is None and not s["stall"]]
            if wait_until(lambda: all(len(s["events"]) >= n for s in live()), f"count {n}"):
                out(f"count {n}")
        elif command == "reset-of":
            sid = by_name[words[1]]
            if wait_until(lambda: streams[sid]["reset"] is not None, f"reset-of {words[1]}"):
                out(f"reset {words[1]} {streams[sid]['reset']}")
        elif command == "report":
            out(f"report {report()}")
        elif command == "rapid-reset":
            for i in range(int(words[1])):
                if goaway is not None:
                    break
                sid = new_stream(None, "GET", f"/connect?id=rapid{i}")
                conn.reset_stream(sid)
                try:
                    flush()
                except OSError:
                    break
                pump(0)
            pong = False
            if goaway is None:
                try:
                    conn.ping(b"rapidrst")
                    flush()
                except Exception:
                    pass
                wait_until(lambda: pong or goaway is not None, "rapid-reset ping")
            out(f"rapid-reset {goaway if goaway is not None else 'none'}")
        elif command == "settings":
            wait_until(lambda: settings_received, "settings")
            remote = conn.remote_settings
            out(f"settings max_concurrent_streams={remote.max_concurrent_streams} max_header_list_size={remote.max_header_list_size}")
        elif command == "big-header":
            sid = conn.get_next_available_stream_id()
            headers = [(":method", "GET"), (":scheme", "http"), (":authority", f"127.0.0.1:{port}"), (":path", "/connect?id=big"), ("x-flood", "a" * int(words[1]))]
            streams[sid] = {"name": "big", "status": None, "events": [], "buffer": b"", "body": b"", "reset": None, "ended": False, "stall": False}
            conn.send_headers(sid, headers, end_stream=True)
            flush()
            if wait_until(lambda: streams[sid]["status"] is not None or streams[sid]["reset"] is not None or goaway is not None, "big-header"):
                out(f"big-header status={streams[sid]['status']} reset={streams[sid]['reset']} goaway={goaway}")
        elif command == "goaway":
            if wait_until(lambda: goaway is not None, "goaway"):
                out(f"goaway {goaway}")
        else:
            out(f"error unknown command {command}")
