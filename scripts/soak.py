#!/usr/bin/env python3
"""Churn soak for sse-console (not a unit test): thousands of clients connecting, reading, stalling
and dropping for minutes while producers publish. Loopback only, bounded in time.

    scripts/soak.py [--minutes 3] [--binary .build/debug/sse-console] [--churners 1500] ...

Kinds of clients, each kept at its count for the whole run:
  healthy   connect once and read everything; at the end each must have received every event
            published after it connected (events lost by healthy clients must be 0)
  churners  connect, read for 0.2-3 s, drop the connection, reconnect
  stallers  connect with a small receive buffer and stop reading, so the broker disconnects them
            over tolerance; then reconnect
  loris     send half a request head and wait: the header timeout closes them (408)
  refused   ask for an invalid id (400) or publish without the token (401)

Every 5 s it samples the broker's RSS (/proc/PID/status) and open descriptors (/proc/PID/fd). At the
end it stops every client and waits for the descriptors to return to the baseline taken before the
first client. Exit code 0 only if no healthy client lost an event, the descriptors returned to
baseline and RSS plateaued (second-half growth under --rss-slack-mb).
"""
import argparse
import asyncio
import os
import random
import re
import resource
import signal
import socket
import subprocess
import sys
import time

TOKEN = "soak-publish-token"


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--minutes", type=float, default=3.0)
    p.add_argument("--binary", default=".build/debug/sse-console")
    p.add_argument("--healthy", type=int, default=200)
    p.add_argument("--churners", type=int, default=1500)
    p.add_argument("--stallers", type=int, default=300)
    p.add_argument("--loris", type=int, default=50)
    p.add_argument("--rate", type=float, default=40.0, help="events per second (broadcasts; 1 in 10 targeted)")
    p.add_argument("--payload", type=int, default=4000, help="bytes per event (big enough that a staller's socket buffers fill)")
    p.add_argument("--rss-slack-mb", type=float, default=16.0)
    return p.parse_args()


def raise_fd_limit():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


class Stats:
    def __init__(self):
        self.connects = 0
        self.churn_drops = 0
        self.staller_kicks = 0
        self.loris_closed = 0
        self.refused = {}
        self.published = []  # (event id, time sent)
        self.errors = 0


def proc_rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def proc_fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


async def open_stream(port, path, rcvbuf=None, headers=""):
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.setblocking(False)
    loop = asyncio.get_running_loop()
    writer = None
    try:
        await loop.sock_connect(sock, ("127.0.0.1", port))
        reader, writer = await asyncio.open_connection(sock=sock, limit=1 << 20)
        writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n{headers}\r\n".encode())
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        return reader, writer, head
    except BaseException:  # cancelled or failed half-way: never leave the socket open
        if writer is not None:
            writer.transport.abort()
        else:
            sock.close()
        raise


class Healthy:
    """Reads every byte and records the ids of the events it saw."""

    def __init__(self, index):
        self.id = f"healthy-{index}"
        self.ids = set()
        self.connected_at = None
        self.ended = False

    async def run(self, port, stop):
        # `stop` here is the readers' stop: set only after the producers stopped and the last events drained.
        reader, writer, head = await open_stream(port, f"/connect?id={self.id}")
        assert b" 200 " in head.split(b"\r\n")[0], head
        buffer = b""
        while b"\n\n" not in buffer:  # the preamble: registered from here on
            buffer += await reader.read(65536)
        self.connected_at = time.monotonic()
        while not stop.is_set():
            try:
                chunk = await asyncio.wait_for(reader.read(65536), 1.0)
            except asyncio.TimeoutError:
                continue
            if not chunk:
                self.ended = True
                break
            buffer += chunk
            *lines, buffer = buffer.split(b"\n")
            for line in lines:
                if line.startswith(b"id: "):
                    self.ids.add(int(line[4:]))
        writer.close()


async def churner(port, stop, stats):
    writer = None
    while not stop.is_set():
        try:
            reader, writer, _ = await open_stream(port, f"/connect?id=churn-{random.randrange(1 << 30)}")
            stats.connects += 1
            deadline = time.monotonic() + random.uniform(0.2, 3.0)
            while time.monotonic() < deadline and not stop.is_set():
                try:
                    if not await asyncio.wait_for(reader.read(65536), deadline - time.monotonic()):
                        break
                except asyncio.TimeoutError:
                    break
            stats.churn_drops += 1
        except (OSError, asyncio.IncompleteReadError):
            stats.errors += 1
            await asyncio.sleep(0.1)
        finally:
            if writer is not None:
                if random.random() < 0.5:  # half of them reset instead of closing
                    writer.transport.abort()
                else:
                    writer.close()
                writer = None


async def staller(port, stop, stats):
    writer = None
    while not stop.is_set():
        try:
            reader, writer, _ = await open_stream(port, f"/connect?id=stall-{random.randrange(1 << 30)}", rcvbuf=4096)
            stats.connects += 1
            writer.transport.pause_reading()  # never reads again: the broker must cut it off
            sock = writer.get_extra_info("socket")
            # Wait until the broker closes it (poll the socket state without reading payload).
            deadline = time.monotonic() + 150
            while not stop.is_set() and time.monotonic() < deadline:
                await asyncio.sleep(1.0)
                try:
                    info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 1)
                    if info[0] in (8, 7):  # TCP_CLOSE_WAIT, TCP_CLOSE: the peer hung up
                        stats.staller_kicks += 1
                        break
                except OSError:
                    break
        except (OSError, asyncio.IncompleteReadError):
            stats.errors += 1
            await asyncio.sleep(0.1)
        finally:
            if writer is not None:
                writer.transport.abort()
                writer = None


async def loris(port, stop, stats):
    writer = None
    while not stop.is_set():
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET /connect?id=loris HTTP/1.1\r\nHost: x\r\n")
            await writer.drain()
            answer = await asyncio.wait_for(reader.read(), 60)
            if b" 408 " in answer:
                stats.loris_closed += 1
        except (OSError, asyncio.TimeoutError):
            stats.errors += 1
            await asyncio.sleep(0.1)
        finally:
            if writer is not None:
                writer.transport.abort()
                writer = None


async def refused(port, stop, stats):
    while not stop.is_set():
        await asyncio.sleep(0.2)
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            if random.random() < 0.5:
                writer.write(b"GET /connect?id=" + b"x" * 200 + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            else:
                writer.write(b"POST /broadcast HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nConnection: close\r\n\r\nx")
            await writer.drain()
            status = (await reader.read()).split(b" ", 2)[1].decode()
            stats.refused[status] = stats.refused.get(status, 0) + 1
            writer.close()
        except (OSError, IndexError):
            stats.errors += 1


async def producer(port, stop, stats, rate, payload, healthy):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    body = ("x" * payload).encode()
    interval = 1.0 / rate
    next_at = time.monotonic()
    count = 0
    while not stop.is_set():
        count += 1
        target = f"&id={random.choice(healthy).id}" if count % 10 == 0 else ""
        sent_at = time.monotonic()
        writer.write(
            f"POST /broadcast?type=soak{target} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n".encode() + body
        )
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        length = int(re.search(rb"(?i)content-length: (\d+)", head).group(1))
        response = await reader.readexactly(length)
        if b" 202 " in head.split(b"\r\n")[0]:
            event_id = int(re.search(rb'"id":"(\d+)"', response).group(1))
            stats.published.append((event_id, sent_at, target))
        next_at += interval
        await asyncio.sleep(max(0, next_at - time.monotonic()))
    writer.close()


async def main():
    args = parse_args()
    limit = raise_fd_limit()
    server = subprocess.Popen(
        [args.binary, "--no-tui", "--port", "0", "--log-level", "warning", "--publish-token", TOKEN,
         "--write-timeout", "2", "--tolerance", "3", "--heartbeat", "5", "--header-timeout", "2",
         "--max-backlog", "65536", "--history", "100"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit)),
    )
    line = server.stdout.readline().decode()
    port = int(re.search(r":(\d+)$", line.strip()).group(1))
    pid = server.pid
    await asyncio.sleep(0.5)
    baseline_fds, baseline_rss = proc_fds(pid), proc_rss_mb(pid)
    print(f"broker pid {pid} on port {port}; fd limit {limit}; baseline {baseline_fds} fds, {baseline_rss:.1f} MiB RSS")

    stats = Stats()
    stop = asyncio.Event()
    readers_stop = asyncio.Event()
    healthy = [Healthy(i) for i in range(args.healthy)]
    readers = [asyncio.create_task(h.run(port, readers_stop)) for h in healthy]
    tasks = []
    while any(h.connected_at is None for h in healthy):
        await asyncio.sleep(0.1)
    tasks += [asyncio.create_task(churner(port, stop, stats)) for _ in range(args.churners)]
    tasks += [asyncio.create_task(staller(port, stop, stats)) for _ in range(args.stallers)]
    tasks += [asyncio.create_task(loris(port, stop, stats)) for _ in range(args.loris)]
    tasks += [asyncio.create_task(refused(port, stop, stats))]
    producers = [asyncio.create_task(producer(port, stop, stats, args.rate / 2, args.payload, healthy)) for _ in range(2)]

    samples = []
    started = time.monotonic()
    end = started + args.minutes * 60
    print(f"{'t(s)':>6} {'RSS MiB':>8} {'fds':>6} {'events':>7} {'connects':>9} {'stall-closed':>12} {'408':>5}")
    while time.monotonic() < end:
        await asyncio.sleep(min(5, max(0, end - time.monotonic())))
        sample = (time.monotonic() - started, proc_rss_mb(pid), proc_fds(pid))
        samples.append(sample)
        print(f"{sample[0]:6.0f} {sample[1]:8.1f} {sample[2]:6d} {len(stats.published):7d} {stats.connects:9d} "
              f"{stats.staller_kicks:12d} {stats.loris_closed:5d}", flush=True)

    # Stop publishing first and let the last events drain to the healthy clients.
    last_sent = time.monotonic()
    stop.set()
    await asyncio.gather(*producers, return_exceptions=True)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await asyncio.sleep(3)  # the last events reach the healthy readers
    readers_stop.set()
    await asyncio.gather(*readers, return_exceptions=True)

    # Descriptors back to baseline once every client is gone.
    deadline = time.monotonic() + 30
    while proc_fds(pid) > baseline_fds and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    final_fds, final_rss = proc_fds(pid), proc_rss_mb(pid)

    lost = 0
    for h in healthy:
        expected = {eid for eid, sent, target in stats.published
                    if sent > h.connected_at and (not target or target == f"&id={h.id}")}
        missing = expected - h.ids
        if missing:
            print(f"{h.id} missed {len(missing)} events, e.g. {sorted(missing)[:5]}")
        lost += len(missing)
    ended_early = sum(h.ended for h in healthy)

    half = [rss for t, rss, _ in samples if t >= args.minutes * 30]
    growth = (max(half) - min(half)) if half else 0.0
    peak_fds = max(fds for _, _, fds in samples) if samples else 0
    server.stdin.write(b"quit\n")
    server.stdin.flush()
    try:
        exit_code = server.wait(timeout=15)
    except subprocess.TimeoutExpired:
        server.kill()
        exit_code = "killed"

    print()
    print(f"duration                     {args.minutes:.1f} min")
    print(f"events published             {len(stats.published)} ({args.rate:g}/s, {args.payload} B, 1 in 10 targeted)")
    print(f"stream connects              {stats.connects + args.healthy} (churn drops {stats.churn_drops}, "
          f"stallers cut off {stats.staller_kicks}, slow-loris 408 {stats.loris_closed})")
    print(f"refused (sampled)            {dict(sorted(stats.refused.items()))}; client-side errors {stats.errors}")
    print(f"RSS MiB                      baseline {baseline_rss:.1f}, peak {max(s[1] for s in samples):.1f}, "
          f"end {final_rss:.1f}; second-half range {growth:.1f}")
    print(f"fds                          baseline {baseline_fds}, peak {peak_fds}, after clients left {final_fds}")
    print(f"healthy clients              {args.healthy}, streams ended early {ended_early}, events lost {lost}")
    print(f"broker exit code on quit     {exit_code}")
    ok = lost == 0 and ended_early == 0 and final_fds <= baseline_fds and growth <= args.rss_slack_mb and exit_code == 0
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
