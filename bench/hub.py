"""A hub relaying a peer's camera: what it costs the hub, against the peer serving the same viewers itself.

Two camstreams (``python -m webapp``) on 127.0.0.1: a peer with a 1280x720
30 fps H.264 file camera (passed through, this script makes it once with
PyAV) and a pattern camera, on core 1; a hub with the peer as ``--peer p=``,
on core 0. For 1 and ``--viewers`` MSE viewers (raw WebSocket clients) and
MJPEG viewers, each for ``--seconds``: first at the peer itself (the peer's
CPU), then the same viewers of ``p.clip`` / ``p.pattern`` at the hub (the
hub's CPU, and the peer's, which then serves the hub's one connection).
Then the latency relaying adds: the same fMP4 fragment, by its bytes, at a
reader of the peer and at a reader of the hub, on one clock.

    python bench/hub.py                       # about 3 minutes
    python bench/hub.py --seconds 5 --viewers 5 --out -
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import websocket
from report import publish
from run import ROOT, Process, cpu_seconds, pinned

sys.path.insert(0, str(ROOT))
from tests.helpers import MjpegReader  # the tests' MJPEG client, once the checkout is on the path

WIDTH, HEIGHT, FPS = 1280, 720, 30
# Seconds before measuring: viewers connect, the hub opens its one connection to the peer, fragments flow.
WARM_UP = 3.0
# Seconds after viewers leave: both servers let go of idle cameras (--idle-timeout 1) before the next row.
SETTLE = 2.5


def make_clip(path: Path) -> None:
    """10 s of a scrolling noise picture, H.264 (GOP 1 s, no B-frames) in MP4, made once."""
    if path.exists():
        return
    output = av.open(str(path), "w")
    stream = output.add_stream("libx264", rate=FPS, options={"g": str(FPS), "bf": "0", "preset": "ultrafast",
                                                             "tune": "zerolatency"})
    stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
    stream.time_base = Fraction(1, FPS)
    base = np.random.default_rng(1).integers(0, 255, (HEIGHT, WIDTH, 3), np.uint8)
    for index in range(10 * FPS):
        frame = av.VideoFrame.from_ndarray(np.roll(base, index * 4, axis=1), format="bgr24")
        frame.pts = index
        output.mux(stream.encode(frame))
    output.mux(stream.encode())
    output.close()


def camstream(core: int, arguments: list[str], folder: Path) -> tuple[Process, int]:
    server = Process(pinned(core, [sys.executable, "-m", "webapp", "--port", "0", "--idle-timeout", "1",
                                   "--storage", str(folder), *arguments]),
                     r"open http://localhost:(\d+)/", stream="stderr")
    assert server.match is not None
    return server, int(server.match.group(1))


Start = Callable[[threading.Event], list[threading.Thread]]


def mse_viewers(url: str, count: int, arrivals: dict[str, float] | None = None) -> Start:
    """``count`` WebSocket readers of ``url``; ``arrivals``: when each binary message was first seen, by its hash."""
    def start(stop: threading.Event) -> list[threading.Thread]:
        def read() -> None:
            socket = websocket.create_connection(url, timeout=20)
            try:
                while not stop.is_set():
                    message = socket.recv()
                    if arrivals is not None and isinstance(message, bytes):
                        arrivals.setdefault(hashlib.sha1(message).hexdigest(), time.monotonic())
            finally:
                socket.close()
        return _threads(read, count)
    return start


def mjpeg_viewers(url: str, count: int) -> Start:
    def start(stop: threading.Event) -> list[threading.Thread]:
        def read() -> None:
            with MjpegReader(url) as reader:
                for _ in reader.frames():
                    if stop.is_set():
                        break
        return _threads(read, count)
    return start


def _threads(target: Callable[[], None], count: int) -> list[threading.Thread]:
    started = [threading.Thread(target=target, daemon=True) for _ in range(count)]
    for thread in started:
        thread.start()
    return started


def measure(start: Start, pids: list[int], seconds: float) -> list[float]:
    """Each process's CPU, % of one core, while the viewers ``start`` makes watch."""
    stop = threading.Event()
    viewers = start(stop)
    time.sleep(WARM_UP)
    before, began = [cpu_seconds(pid) for pid in pids], time.monotonic()
    time.sleep(seconds)
    after, ended = [cpu_seconds(pid) for pid in pids], time.monotonic()
    stop.set()
    for viewer in viewers:
        viewer.join(5)
    time.sleep(SETTLE)
    return [(late - early) / (ended - began) * 100 for early, late in zip(before, after, strict=True)]


def added_latency(peer: int, hub: int, seconds: float) -> list[float]:
    """Milliseconds between a fragment's arrival at a reader of the peer and at a reader through the hub."""
    direct: dict[str, float] = {}
    relayed: dict[str, float] = {}
    stop = threading.Event()
    readers = (mse_viewers(f"ws://127.0.0.1:{peer}/mse/clip", 1, direct)(stop)
               + mse_viewers(f"ws://127.0.0.1:{hub}/mse/p.clip", 1, relayed)(stop))
    time.sleep(seconds)
    stop.set()
    for reader in readers:
        reader.join(5)
    return [(relayed[key] - direct[key]) * 1000 for key in direct if key in relayed]


def run(args: argparse.Namespace) -> str:
    folder = Path(tempfile.mkdtemp(prefix="camstream-bench-hub-"))
    clip = Path(args.source_dir) / "camstream-bench-hub-720p.mp4"
    make_clip(clip)
    peer, peer_port = camstream(1, ["--camera", f"clip={clip}", "--camera", "pattern=pattern"], folder / "peer")
    hub, hub_port = camstream(0, ["--camera", "x=pattern", "--peer", f"p=http://127.0.0.1:{peer_port}"], folder / "hub")
    rows = []
    try:
        time.sleep(4)  # the hub's first poll of the peer has made p.clip and p.pattern
        for kind, peer_path, hub_path, viewers in (
                ("MSE", f"ws://127.0.0.1:{peer_port}/mse/clip", f"ws://127.0.0.1:{hub_port}/mse/p.clip", mse_viewers),
                ("MJPEG", f"http://127.0.0.1:{peer_port}/video_feed/pattern",
                 f"http://127.0.0.1:{hub_port}/video_feed/p.pattern", mjpeg_viewers)):
            for count in (1, args.viewers):
                direct = measure(viewers(peer_path, count), [peer.pid], args.seconds)[0]
                through = measure(viewers(hub_path, count), [hub.pid, peer.pid], args.seconds)
                rows.append((f"{count} {kind} viewer(s)", direct, *through))
                print(f"{rows[-1][0]}: peer alone {direct:.1f} %, hub {through[0]:.1f} %, peer behind it "
                      f"{through[1]:.1f} %", file=sys.stderr, flush=True)
        gaps = sorted(added_latency(peer_port, hub_port, args.latency_seconds))
    finally:
        hub.stop()
        peer.stop()
    return report(rows, gaps, args)


def report(rows: list[tuple], gaps: list[float], args: argparse.Namespace) -> str:
    lines = [
        "## A hub relaying a peer's camera (bench/hub.py)",
        "",
        (f"Two camstreams on 127.0.0.1: a peer (core 1, with the clients) with a {WIDTH}x{HEIGHT} {FPS} fps H.264 "
        "file camera passed through and a 640x480 pattern camera, and a hub (core 0) given the peer with "
        f"`--peer p=...`. {args.seconds:g} s a row. CPU in % of one core: the peer serving the viewers itself, "
        "then the same viewers at the hub (the hub's CPU, and the peer's, which then serves the hub's one "
        "connection of that kind). MSE viewers are raw WebSocket clients of `/mse` (fMP4 relayed without "
        "decoding); MJPEG viewers read `/video_feed` (relayed byte for byte). Other work shared the machine's "
        "two cores while this ran: read the numbers as sizes, not to the percent."),
        "",
        "| viewers | peer alone: peer CPU % | through the hub: hub CPU % | through the hub: peer CPU % |",
        "| --- | --- | --- | --- |",
    ]
    lines += [f"| {name} | {direct:.1f} | {hub:.1f} | {peer:.1f} |" for name, direct, hub, peer in rows]
    if gaps:
        p95 = gaps[min(len(gaps) - 1, int(len(gaps) * 0.95))]
        lines += ["", (f"Latency relaying adds, the same fragment at a reader of the peer and at a reader through the "
                  f"hub, over {len(gaps)} fragments: median {statistics.median(gaps):.2f} ms, 95th percentile "
                  f"{p95:.2f} ms.")]
    lines += ["", f"Command: `python bench/hub.py --seconds {args.seconds:g} --viewers {args.viewers}`"]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--viewers", type=int, default=20)
    parser.add_argument("--latency-seconds", type=float, default=12)
    parser.add_argument("--source-dir", default=tempfile.gettempdir(), help="where the H.264 file is kept")
    parser.add_argument("--out", default=str(ROOT / "docs" / "benchmarks.md"))
    args = parser.parse_args()
    publish(args.out, "hub", run(args))


if __name__ == "__main__":
    main()
