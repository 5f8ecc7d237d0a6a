"""Fuzzing the pushed streams: many clients send random and structured garbage to /ws and /events of a real
server process, while bystanders watch. Afterwards the bystanders still get every frame, /healthz answers
at once, no viewer was closed by an error, every slot is back, and the server's memory is where it was.

Bounded: a fixed number of connections per attacker thread and a deadline; all on 127.0.0.1.
"""

import json
import random
import socket
import struct
import sys
import threading
import time
import urllib.request

import pytest
import websocket

from tests.config.test_cli import env, running  # noqa: F401 - a fixture
from tests.helpers import MjpegReader, wait_until
from tests.viewers.test_websocket import KEY
from tests.viewers.test_websocket import client_frame as masked

pytestmark = pytest.mark.slow

ATTACKERS = 8
CONNECTIONS_EACH = 40
DEADLINE_SECONDS = 20.0


def garbage_frames(rng: random.Random) -> bytes:
    """A random run of frames, proper and improper."""
    pieces = []
    for _ in range(rng.randint(1, 12)):
        kind = rng.randrange(12)
        if kind == 0:
            pieces.append(masked(rng.randrange(16), rng.randbytes(rng.randrange(200))))
        elif kind == 1:
            depth = rng.randint(1000, 30000)
            pieces.append(masked(0x1, b"[" * depth + b"]" * depth))
        elif kind == 2:
            pieces.append(masked(0x9, rng.randbytes(rng.randrange(126))) * rng.randint(10, 2000))
        elif kind == 3:
            pieces.append(masked(0x1, json.dumps({"fps": rng.choice([0, -1, 1e308, 10**400, "x", None, True, [1]]),
                                                   "overlay": rng.choice([True, False, 1, None])}).encode()))
        elif kind == 4:
            pieces.append(masked(0x1, b'{"fps":', fin=False) + masked(0x9, b"") + masked(0x0, b" 5}"))
        elif kind == 5:
            pieces.append(masked(0x8, struct.pack("!H", rng.choice([1000, 1002, 999, 5000, 65535]))) +
                          masked(0x1, b'{"fps": 1}'))
        elif kind == 6:
            pieces.append(masked(0x1, b"x", length=2**63 - 1))
        elif kind == 7:
            pieces.append(masked(0x1, rng.randbytes(300), rsv=rng.randint(1, 7)))
        elif kind == 8:
            pieces.append(masked(0x1, b'{"fps": 2}', mask=False))
        elif kind == 9:
            pieces.append(masked(0x0, rng.randbytes(50), fin=rng.random() < 0.5))
        elif kind == 10:
            pieces.append(masked(0x1, b"\xff\xfe\xfd not text"))
        else:
            pieces.append(rng.randbytes(rng.randrange(1, 4000)))
    return b"".join(pieces)


def attack_once(port: int, rng: random.Random) -> None:
    """One connection: a WebSocket, an /events stream or a bare request, then garbage, a little reading, gone."""
    with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
        target = rng.choice(["ws-a", "ws-b", "events", "events-a", "bare"])
        if target.startswith("ws"):
            sock.sendall(f"GET /ws/{target[3:]} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                         f"Connection: Upgrade\r\nSec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n"
                         .encode())
        elif target.startswith("events"):
            path = "/events" + ("?camera=a" if target == "events-a" else "")
            last = rng.choice(["", "Last-Event-ID: 99999999999999999999\r\n", "Last-Event-ID: -5\r\n",
                               "Last-Event-ID: x\r\n"])
            sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{last}\r\n".encode())
        if rng.random() < 0.3:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        try:
            for _ in range(rng.randint(1, 4)):
                sock.sendall(garbage_frames(rng) if target != "bare" else rng.randbytes(rng.randrange(1, 5000)))
                if rng.random() < 0.5:
                    sock.recv(65536)
        except OSError:
            pass  # the server hung up on us: as it should, often
        if rng.random() < 0.3:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # leave with a reset


def attacker(port: int, seed: int, deadline: float) -> None:
    rng = random.Random(seed)
    for _ in range(CONNECTIONS_EACH):
        if time.monotonic() > deadline:
            return
        try:
            attack_once(port, rng)
        except OSError:
            pass


def rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))


def fetch(url: str, timeout: float = 10) -> dict:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return json.load(response)


class Counting:
    """A bystander reading in a thread of its own and counting what it gets."""

    def __init__(self, read) -> None:
        self.count = 0
        self.error: BaseException | None = None
        self._read = read
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                self._read()
                self.count += 1
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            if not self._stop.is_set():
                self.error = exc

    def stop(self) -> None:
        self._stop.set()


def test_garbage_from_many_clients_leaves_the_others_served_and_memory_where_it_was(running):  # noqa: F811
    server = running([sys.executable, "-m", "webapp", "--camera", "a=pattern", "--camera", "b=pattern",
                      "--fps", "10", "--width", "320", "--port", "0"], env())
    port = int(server.wait_for_line(r"open http://localhost:(\d+)/").group(1))
    base = f"http://127.0.0.1:{port}"
    pid = server.process.pid

    mjpeg = MjpegReader(base + "/video_feed/a")
    frames = mjpeg.frames()
    ws = websocket.create_connection(f"ws://127.0.0.1:{port}/ws/b", timeout=10)

    def binary_frame() -> None:
        while ws.recv_data()[0] != websocket.ABNF.OPCODE_BINARY:
            pass

    watching = [Counting(lambda: next(frames)), Counting(binary_frame)]
    assert wait_until(lambda: all(w.count >= 10 for w in watching), 30)
    # One round first, so what the server allocates once (imports, caches, thread stacks) is in the baseline.
    attacker(port, 0, time.monotonic() + 10)
    assert wait_until(lambda: fetch(base + "/healthz")["streams"] == 2, 30)
    baseline = rss_kb(pid)
    captured = lambda name: fetch(f"{base}/api/cameras/{name}")["frames_captured"]
    before = [w.count for w in watching], [captured("a"), captured("b")]

    deadline = time.monotonic() + DEADLINE_SECONDS
    threads = [threading.Thread(target=attacker, args=(port, seed, deadline)) for seed in range(1, ATTACKERS + 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(DEADLINE_SECONDS + 30)
    assert not any(thread.is_alive() for thread in threads)

    # The window: the attack and the camera's next 20 frames, so a frame or two at its edges weighs little.
    made_by_now = captured("a")
    assert wait_until(lambda: captured("a") >= made_by_now + 20, 30)
    after = [w.count for w in watching], [captured("a"), captured("b")]
    for got_before, got_after, made_before, made_after in zip(before[0], after[0], before[1], after[1], strict=True):
        made = made_after - made_before
        assert got_after - got_before >= 0.8 * made - 2, \
            f"a bystander got {got_after - got_before} of the {made} frames its camera made during the attack"
    assert all(w.error is None for w in watching), [w.error for w in watching]

    assert wait_until(lambda: fetch(base + "/healthz")["streams"] == 2, 30), "every attacker's slot is back"
    answered = []
    for _ in range(3):
        started = time.monotonic()
        health = fetch(base + "/healthz", timeout=5)
        answered.append(time.monotonic() - started)
    assert min(answered) < 1.0, f"/healthz took {answered} s"
    assert health["viewer_errors"] == 0, "no viewer was closed by an error the checks did not foresee"
    grown = rss_kb(pid) - baseline
    print(f"fuzz: {after[1][0] - before[1][0]} frames made, bystanders got {[a - b for a, b in zip(after[0], before[0])]},"
          f" healthz {answered}, RSS {baseline} kB -> {baseline + grown} kB")
    assert grown < 30 * 1024, f"the server's memory grew by {grown} kB"
    for w in watching:
        w.stop()
    ws.close()
    mjpeg.close()
    assert server.process.poll() is None
    lines = []
    while not server.lines.empty():
        lines.append(server.lines.get())
    assert not any("Traceback" in line for line in lines), "".join(lines)
