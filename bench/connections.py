"""Connections that do nothing: does the page keep answering while they are open?

Side by side in one run, for camstream's own server (``python -m webapp``)
and for the ``waitress-serve`` line of docs/operations.md (plain waitress with
the same settings camstream had before it guarded its connections), each pinned to
core 0 with the test pattern:

- the page's answer time with nothing else open;
- with ``--idle`` connections that send nothing;
- with those and ``--slow`` slowloris connections sending one header line a
  second and never finishing;
- after ``--hold`` seconds, how many of them the server still holds;
- ``--burst`` stream requests at once: how many get a stream, a 503 that
  closes its connection, or no answer.

Writes docs/connections.md. Every connection goes to 127.0.0.1, and the
run is bounded by the counts and timeouts given.

    python bench/connections.py                       # about 2 minutes
    python bench/connections.py --idle 300 --slow 100 --out -
"""

from __future__ import annotations

import argparse
import http.client
import selectors
import socket
import statistics
import sys
import threading
import time
from pathlib import Path

from run import ROOT, Process, pinned, rss_mb

sys.path.insert(0, str(ROOT))
from webapp.serve.server import raise_open_file_limit

ANSWER_TIMEOUT = 10.0
WAITRESS_SERVE = ["--threads", "64", "--connection-limit", "164", "--send-bytes", "1",
                  "--channel-request-lookahead", "1", "--asyncore-use-poll", "--outbuf-high-watermark", "65536",
                  "--call", "webapp:create_app"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start(kind: str) -> tuple[Process, int]:
    port = free_port()
    if kind == "camstream":
        command = [sys.executable, "-m", "webapp", "--source", "pattern", "--port", str(port)]
        pattern = "open http://"
    else:
        command = [sys.executable, "-m", "waitress", "--listen", f"127.0.0.1:{port}", *WAITRESS_SERVE]
        pattern = "Serving on"
    return Process(pinned(0, command), pattern, stream="stderr"), port


def page_times(port: int, count: int) -> dict:
    """GET / ``count`` times, one after another; times in ms, and how many got no answer.

    Stops after three unanswered: the point is made, and each costs the timeout.
    """
    times, failures = [], 0
    for _ in range(count):
        if failures >= 3:
            break
        started = time.monotonic()
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=ANSWER_TIMEOUT)
        try:
            connection.request("GET", "/")
            response = connection.getresponse()
            response.read()
            if response.status != 200:
                failures += 1
            else:
                times.append((time.monotonic() - started) * 1000)
        except OSError:
            failures += 1
        finally:
            connection.close()
    return {
        "median": round(statistics.median(times), 1) if times else None,
        "max": round(max(times), 1) if times else None,
        "failures": failures,
    }


class Crowd:
    """``idle`` connections that send nothing and ``slow`` ones that send a header line a second."""

    def __init__(self, port: int, idle: int, slow: int) -> None:
        self.socks: list[socket.socket] = []
        self.refused = 0
        for index in range(idle + slow):
            try:
                sock = socket.create_connection(("127.0.0.1", port), timeout=2)
            except OSError:
                # The listen queue is full: the rest would wait as long each.
                self.refused = idle + slow - index
                break
            self.socks.append(sock)
            if index >= idle:
                sock.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        self.slow = self.socks[idle:]
        self.opened = len(self.socks)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._drip, daemon=True)
        self._thread.start()

    def _drip(self) -> None:
        while not self._stop.wait(1.0):
            for sock in self.slow:
                try:
                    sock.send(b"X-Drip: 1\r\n")
                except OSError:
                    pass

    def still_open(self) -> int:
        """Connections the server has not closed (nothing to read, no end of stream)."""
        count = 0
        for sock in self.socks:
            sock.setblocking(False)
            try:
                if sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b"":
                    continue
            except BlockingIOError:
                pass
            except OSError:
                continue
            count += 1
        return count

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        for sock in self.socks:
            sock.close()


def burst(port: int, count: int) -> dict:
    """``count`` stream requests at once: how many got a stream, a 503 and then their connection
    closed, a 503 with the connection kept open, or no answer within the timeout."""
    outcome = {"streams": 0, "503, closed": 0, "503, kept open": 0, "no answer": 0}
    selector = selectors.DefaultSelector()
    for index in range(count):
        try:
            sock = socket.create_connection(("127.0.0.1", port), timeout=2)
        except OSError:
            outcome["no answer"] += count - index
            break
        sock.sendall(b"GET /video_feed HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        sock.setblocking(False)
        selector.register(sock, selectors.EVENT_READ, {"data": b""})
    # Streams stay open until the end, so each one holds its slot as a real viewer would.
    watching: list[socket.socket] = []
    deadline = time.monotonic() + ANSWER_TIMEOUT
    while selector.get_map() and time.monotonic() < deadline:
        for key, _ in selector.select(timeout=0.5):
            sock, state = key.fileobj, key.data
            try:
                data = sock.recv(65536)
            except OSError:
                data = b""
            if state["data"].startswith(b"HTTP/1.1 503") and not data:
                outcome["503, closed"] += 1
            elif not data:
                outcome["no answer"] += 1
            else:
                state["data"] += data
                if state["data"].startswith(b"HTTP/1.1 200"):
                    outcome["streams"] += 1
                    selector.unregister(sock)
                    watching.append(sock)
                    continue
                if state["data"].startswith(b"HTTP/1.1 503"):
                    continue  # wait for the server to close it
                outcome["no answer"] += 1
            selector.unregister(sock)
            sock.close()
    for key in list(selector.get_map().values()):
        served = key.data["data"].startswith(b"HTTP/1.1 503")
        outcome["503, kept open" if served else "no answer"] += 1
        key.fileobj.close()
    for sock in watching:
        sock.close()
    return outcome


def measure(kind: str, args: argparse.Namespace) -> dict:
    server, port = start(kind)
    try:
        result = {"kind": kind, "alone": page_times(port, args.requests)}
        crowd = Crowd(port, args.idle, 0)
        result["idle"] = page_times(port, args.requests)
        crowd.close()
        time.sleep(1)  # let the server see them go before the next crowd
        crowd = Crowd(port, args.idle, args.slow)
        result["idle+slow"] = page_times(port, args.requests)
        time.sleep(args.hold)  # hold them, as an attacker would
        result["held"] = crowd.still_open()
        result["opened"] = crowd.opened
        result["after"] = page_times(port, args.requests)
        result["rss"] = round(rss_mb(server.popen.pid), 1)
        crowd.close()
        time.sleep(1)  # as above
        result["burst"] = burst(port, args.burst)
        return result
    finally:
        server.stop()


def cell(times: dict) -> str:
    if times["median"] is None:
        return f"no answer ({times['failures']} of them)"
    failed = f", {times['failures']} unanswered" if times["failures"] else ""
    return f"{times['median']} / {times['max']}{failed}"


def report(results: list[dict], args: argparse.Namespace) -> str:
    lines = [
        "# Idle and slowloris connections",
        "",
        (f"Produced by `python bench/connections.py` on {time.strftime('%Y-%m-%d')}: each server pinned to "
         f"core 0, the test pattern, {args.requests} page loads one after another in each state, "
         f"{ANSWER_TIMEOUT:g} s allowed for each (after three unanswered, no more are tried). `camstream`: "
         "`python -m webapp`; `waitress-serve`: waitress with the settings camstream gave it before (164 "
         "connections, idle ones kept 120 s)."),
        "",
        (f"| server | page alone, ms median / max | with {args.idle} idle | with {args.idle} idle + {args.slow} "
         f"slowloris | still held after {args.hold:g} s | page then | RSS MB |"),
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for result in results:
        lines.append(f"| {result['kind']} | {cell(result['alone'])} | {cell(result['idle'])} | "
                     f"{cell(result['idle+slow'])} | {result['held']} of {result['opened']} opened | {cell(result['after'])} | "
                     f"{result['rss']} |")
    lines += [
        "",
        (f"Then {args.burst} stream requests at once (`GET /video_feed`, 1000 viewers allowed), "
         f"each given {ANSWER_TIMEOUT:g} s to answer:"),
        "",
        "| server | " + " | ".join(results[0]["burst"]) + " |",
        "| --- |" + " --- |" * len(results[0]["burst"]),
    ]
    for result in results:
        lines.append(f"| {result['kind']} | " + " | ".join(str(n) for n in result["burst"].values()) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--idle", type=int, default=1000)
    parser.add_argument("--slow", type=int, default=300)
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--hold", type=float, default=20.0)
    parser.add_argument("--burst", type=int, default=1500)
    parser.add_argument("--out", default=str(ROOT / "docs" / "connections.md"), help="markdown file, or - for stdout")
    args = parser.parse_args()
    raise_open_file_limit(4 * (args.idle + args.slow + args.burst) + 256)
    results = [measure(kind, args) for kind in ("camstream", "waitress-serve")]
    text = report(results, args)
    if args.out == "-":
        print(text)
    else:
        Path(args.out).write_text(text)
        print(text)


if __name__ == "__main__":
    main()
