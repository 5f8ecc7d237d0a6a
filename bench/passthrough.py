"""An H.264 RTSP camera, 1920x1080 at 30 fps: what camstream costs passing it through, beside today's MJPEG path.

The camera is GStreamer's RTSP server from Debian (system python,
python3-gi) looping an H.264 file this script makes once with PyAV; it runs
on core 1 with the clients, camstream (``python -m webapp``) on core 0.
Side by side in one run, each for ``--seconds``: 1 and ``--viewers`` MSE
viewers (raw WebSocket clients that count what they get), 1 HLS reader, 1
MJPEG viewer, and ``ffmpeg -c copy`` to HLS as the floor. Then how old
each frame is when it reaches an MSE client (against a direct RTSP client
of the same camera, in this process, so on one clock), and how long a new
MSE viewer waits for its first keyframe, with the camera idle and running.

    python bench/passthrough.py                       # about 2 minutes
    python bench/passthrough.py --seconds 5 --viewers 10 --out -
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import selectors
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import websocket
from report import publish
from run import ROOT, Process, cpu_seconds, pinned

SYSTEM_PYTHON = "/usr/bin/python3"
WIDTH, HEIGHT, FPS, GOP = 1920, 1080, 30, 60
# Seconds before measuring: the camera connects, new viewers get their first GOP at once, the source settles.
WARM_UP = 8


def make_source(path: Path, seconds: int, bitrate: int, size: tuple[int, int] = (WIDTH, HEIGHT)) -> None:
    """An H.264 elementary stream of a moving scene of ``size``, made once (it takes a while at 1080p)."""
    if path.exists():
        return
    width, height = size
    output = av.open(str(path), "w", format="h264")
    stream = output.add_stream("libx264", rate=FPS, options={"preset": "veryfast", "g": str(GOP),
                                                             "bf": "0", "tune": "zerolatency"})
    stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
    stream.bit_rate = bitrate
    stream.time_base = Fraction(1, FPS)
    ys, xs = np.mgrid[0:height, 0:width]
    for index in range(seconds * FPS):
        image = np.zeros((height, width, 3), np.uint8)
        image[..., 0] = (xs + index * 8) % 256
        image[..., 1] = (ys + index * 4) % 256
        image[..., 2] = ((xs // 64 + ys // 64 + index // 15) % 2) * 200
        frame = av.VideoFrame.from_ndarray(image, format="bgr24")
        frame.pts = index
        output.mux(stream.encode(frame))
    output.mux(stream.encode())
    output.close()


def rtsp_server(source: Path) -> Process:
    pipeline = (f'multifilesrc location={source} loop=true caps="video/x-h264,stream-format=byte-stream,'
                f'framerate={FPS}/1" ! h264parse ! rtph264pay name=pay0 pt=96 config-interval=-1')
    return Process(pinned(1, [SYSTEM_PYTHON, str(ROOT / "tests" / "rtsp_server.py"), "0", f"/cam={pipeline}"]),
                   r"ready (\d+)")


class MseClients:
    """``count`` raw WebSocket clients of /mse, read on one thread: bytes and messages each."""

    def __init__(self, port: int, name: str, count: int) -> None:
        self.selector = selectors.DefaultSelector()
        self.bytes = [0] * count
        self.messages = [0] * count
        self.sockets = []
        key = base64.b64encode(os.urandom(16)).decode()
        for index in range(count):
            sock = socket.create_connection(("127.0.0.1", port), timeout=10)
            sock.sendall(f"GET /mse/{name} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                         f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
                         .encode())
            sock.setblocking(False)
            self.selector.register(sock, selectors.EVENT_READ, [index, b""])
            self.sockets.append(sock)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        while not self.stop.is_set():
            for key, _ in self.selector.select(0.2):
                index, pending = key.data
                try:
                    data = key.fileobj.recv(262144)
                except BlockingIOError:
                    continue
                if not data:
                    self.selector.unregister(key.fileobj)
                    continue
                self.bytes[index] += len(data)
                pending = pending + data if len(pending) < 16 else pending[-16:] + data
                self.messages[index] += data.count(b"moof")
                key.data[1] = pending[-16:]

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5)
        for sock in self.sockets:
            sock.close()


def hls_reader(base: str, name: str, stop: threading.Event, counts: dict) -> None:
    seen: set[str] = set()
    while not stop.is_set():
        try:
            text = urllib.request.urlopen(f"{base}/hls/{name}/index.m3u8", timeout=20).read().decode()
        except urllib.error.HTTPError as exc:
            counts["errors"].append(f"{exc.code} {exc.read()[:200]!r}")
            stop.wait(1.0)
            continue
        for line in text.splitlines():
            if line.endswith(".m4s") and line not in seen:
                seen.add(line)
                counts["bytes"] += len(urllib.request.urlopen(f"{base}/hls/{name}/{line}", timeout=20).read())
                counts["segments"] += 1
        stop.wait(1.0)


def mjpeg_reader(base: str, name: str, stop: threading.Event, counts: dict) -> None:
    with urllib.request.urlopen(f"{base}/video_feed/{name}", timeout=20) as response:
        while not stop.is_set():
            chunk = response.read(65536)
            if not chunk:
                return
            counts["bytes"] += len(chunk)
            counts["frames"] += chunk.count(b"\r\n--frame")


def _tail(data: bytes) -> bytes:
    """The last bytes of a frame, alike in the camera's Annex B packet and in an fMP4 fragment's ``mdat``."""
    return data[-32:]


def frame_ages(port: int, url: str, seconds: float) -> list[float]:
    """Seconds each frame reached an MSE client of camstream after it reached a direct RTSP client of the camera.

    Both read in this process, so the times are on one clock; the direct client goes through FFmpeg's RTSP
    demuxer as camstream does, so the difference is what camstream adds: muxing, fan-out and its socket.
    """
    direct: dict[bytes, float] = {}
    stop = threading.Event()

    def read_direct() -> None:
        source = av.open(url, options={"rtsp_transport": "tcp"}, timeout=10)
        try:
            for packet in source.demux(source.streams.video[0]):
                if stop.is_set():
                    return
                if packet.size:
                    direct[_tail(bytes(packet))] = time.monotonic()
        finally:
            source.close()

    thread = threading.Thread(target=read_direct, daemon=True)
    thread.start()
    ws = websocket.create_connection(f"ws://127.0.0.1:{port}/mse/cam", timeout=20)
    ages = []
    try:
        ws.recv()
        ws.recv()
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            fragment = ws.recv()
            received = time.monotonic()
            sent = direct.get(_tail(fragment))
            if sent is not None:
                ages.append(received - sent)
    finally:
        ws.close()
        stop.set()
        thread.join(10)
    return ages


def first_keyframe(port: int) -> float:
    """Seconds from a new /mse connection to its first fragment (a keyframe)."""
    started = time.monotonic()
    ws = websocket.create_connection(f"ws://127.0.0.1:{port}/mse/cam", timeout=20)
    try:
        ws.recv()
        ws.recv()
        ws.recv()
        return time.monotonic() - started
    finally:
        ws.close()


def camera_status(base: str, name: str) -> dict:
    return json.loads(urllib.request.urlopen(f"{base}/api/cameras/{name}", timeout=10).read())


def measure(pid: int, seconds: float) -> float:
    """% of a core ``pid`` used over ``seconds``."""
    before, started = cpu_seconds(pid), time.monotonic()
    time.sleep(seconds)
    return 100 * (cpu_seconds(pid) - before) / (time.monotonic() - started)


def run(args: argparse.Namespace) -> str:
    source = Path(args.source_dir) / f"camstream-bench-{WIDTH}x{HEIGHT}-{args.bitrate}.h264"
    make_source(source, 10, args.bitrate)
    camera = rtsp_server(source)
    url = f"rtsp://127.0.0.1:{camera.match.group(1)}/shared/cam"
    server = Process(pinned(0, [sys.executable, "-m", "webapp", "--port", "0", "--camera", f"cam={url}",
                                "--idle-timeout", "2", "--max-viewers", str(args.viewers + 10)]),
                     r"open http://localhost:(\d+)/", stream="stderr")
    port = int(server.match.group(1))
    base = f"http://127.0.0.1:{port}"
    rows = []
    try:
        for count in (1, args.viewers):
            clients = MseClients(port, "cam", count)
            time.sleep(WARM_UP)
            bytes_before, messages_before = sum(clients.bytes), sum(clients.messages)
            camera_before = camera_status(base, "cam")["video"]["bytes_in"]
            cpu = measure(server.pid, args.seconds)
            status = camera_status(base, "cam")
            per_viewer = (sum(clients.bytes) - bytes_before) / count / args.seconds * 8
            fps = (sum(clients.messages) - messages_before) / count / args.seconds
            rows.append((f"{count} MSE viewer(s)", cpu, per_viewer, fps,
                         (status["video"]["bytes_in"] - camera_before) * 8 / args.seconds, status["video"]["decoded"]))
            clients.close()
            time.sleep(3)
        for label, reader in (("1 HLS reader", hls_reader), ("1 MJPEG viewer (decode + JPEG)", mjpeg_reader)):
            stop, counts = threading.Event(), {"bytes": 0, "segments": 0, "frames": 0, "errors": []}
            thread = threading.Thread(target=reader, args=(base, "cam", stop, counts), daemon=True)
            thread.start()
            time.sleep(WARM_UP)
            before = dict(counts)
            camera_before = camera_status(base, "cam")["video"]["bytes_in"]
            cpu = measure(server.pid, args.seconds)
            after = dict(counts)
            status = camera_status(base, "cam")
            frames = after["frames"] - before["frames"]
            rows.append((label, cpu, (after["bytes"] - before["bytes"]) / args.seconds * 8,
                         frames / args.seconds if frames else None,
                         (status["video"]["bytes_in"] - camera_before) * 8 / args.seconds, status["video"]["decoded"]))
            stop.set()
            thread.join(30)
            if counts["errors"]:
                print(f"{label}: {counts['errors'][:3]}", file=sys.stderr)
            time.sleep(3)
        ages = sorted(frame_ages(port, url, args.seconds))
        wait_idle(base)
        cold = first_keyframe(port)
        holder = MseClients(port, "cam", 1)
        time.sleep(WARM_UP)
        warm = [first_keyframe(port) for _ in range(5)]
        holder.close()
    finally:
        server.stop()
    # Recorded continuously by copy, nobody watching: the fragments appended to files, nothing decoded.
    with tempfile.TemporaryDirectory() as folder:
        recorder = Process(pinned(0, [sys.executable, "-m", "webapp", "--port", "0", "--camera", f"cam={url}",
                                      "--record", "continuous", "--storage", folder, "--min-free", "0"]),
                           r"open http://localhost:(\d+)/", stream="stderr")
        try:
            record_base = f"http://127.0.0.1:{recorder.match.group(1)}"
            time.sleep(WARM_UP)
            before = camera_status(record_base, "cam")
            cpu = measure(recorder.pid, args.seconds)
            after = camera_status(record_base, "cam")
            written = after["recording"]["bytes_written"] - before["recording"]["bytes_written"]
            rows.append(("recording by copy, no viewer (Mbit/s written)", cpu, written * 8 / args.seconds,
                         (after["recording"]["frames_written"] - before["recording"]["frames_written"]) / args.seconds,
                         (after["video"]["bytes_in"] - before["video"]["bytes_in"]) * 8 / args.seconds,
                         after["video"]["decoded"]))
        finally:
            recorder.stop()
    # A camera watched by its motion detector alone: every packet decoded, pictures made at the detect rate.
    detected = Process(pinned(0, [sys.executable, "-m", "webapp", "--port", "0", "--camera", f"cam={url}",
                                  "--detect", "cam=motion", "--detect-fps", "5"]),
                       r"open http://localhost:(\d+)/", stream="stderr")
    try:
        detect_base = f"http://127.0.0.1:{detected.match.group(1)}"
        time.sleep(WARM_UP)
        before = camera_status(detect_base, "cam")
        cpu = measure(detected.pid, args.seconds)
        after = camera_status(detect_base, "cam")
        made = (after["frames_captured"] - before["frames_captured"]) / args.seconds
        rows.append(("motion detector alone, 5/s, no viewer (pictures made/s)", cpu, None, made,
                     (after["video"]["bytes_in"] - before["video"]["bytes_in"]) * 8 / args.seconds,
                     after["video"]["decoded"]))
    finally:
        detected.stop()
    with tempfile.TemporaryDirectory() as folder:
        ffmpeg = subprocess.Popen(pinned(0, ["ffmpeg", "-loglevel", "quiet", "-rtsp_transport", "tcp", "-i", url,
                                             "-c", "copy", "-f", "hls", "-hls_time", "2", "-hls_list_size", "6",
                                             "-hls_flags", "delete_segments", f"{folder}/index.m3u8"]))
        time.sleep(4)
        cpu = measure(ffmpeg.pid, args.seconds)
        ffmpeg.terminate()
        ffmpeg.wait(10)
        rows.append(("floor: ffmpeg -c copy to HLS", cpu, None, None, None, None))
    camera.stop()
    return table(rows, args) + "\n\n" + latency(ages, cold, warm)


def wait_idle(base: str) -> None:
    """Until the camera has let its source go (no viewers for its idle timeout)."""
    deadline = time.monotonic() + 60
    while camera_status(base, "cam")["state"] != "idle" and time.monotonic() < deadline:
        time.sleep(0.5)


def latency(ages: list[float], cold: float, warm: list[float]) -> str:
    if not ages:
        return "No frame of the MSE stream matched one of the direct RTSP client's."
    median, worst = ages[len(ages) // 2], ages[int(len(ages) * 0.95)]
    rows = [
        (f"frame age at an MSE client, beyond a direct RTSP client: median ({len(ages)} frames)", median),
        ("the same, 95th percentile", worst),
        ("a new MSE viewer's first keyframe, camera idle (connect to the camera, then its next keyframe)", cold),
        ("a new MSE viewer's first keyframe, camera running (its current GOP, at once), median of 5",
         sorted(warm)[2]),
    ]
    note = ("The frame age is one frame interval: FFmpeg's MP4 muxer closes a frame's fragment when the next "
            "frame arrives. This bench's RTSP server starts its file at a keyframe for a new client; a real "
            "camera adds the wait for its next keyframe (up to one GOP) to the idle case.")
    return note + "\n\n" + "\n".join(["| latency | ms |", "| --- | --- |"] + [f"| {label} | {value * 1000:.0f} |"
                                                            for label, value in rows])


def table(rows: list[tuple], args: argparse.Namespace) -> str:
    lines = [
        "## H.264 passed through (bench/passthrough.py)",
        "",
        (f"One RTSP camera, {WIDTH}x{HEIGHT} at {FPS} fps, H.264 at about {args.bitrate / 1e6:g} Mbit/s "
        f"(GOP {GOP / FPS:g} s), GStreamer's RTSP server on core 1 with the clients; camstream on core 0. "
        f"{args.seconds:g} s a row, side by side in one run. CPU is camstream's process (or ffmpeg's), % of "
        "one core. Bits per second are what one client received, and what camstream read from the camera, "
        "over the same seconds. MJPEG is counted in parts; at 1080p the decode and JPEG encode take longer "
        "than a frame interval on this core, so the camera's packets queue and come in bursts."),
        "",
        ("| clients | CPU % of a core | Mbit/s per client | fragments or frames/s per client "
        "| camera's Mbit/s | pictures decoded so far |"),
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for label, cpu, rate, fps, camera, decoded in rows:
        lines.append(f"| {label} | {cpu:.1f} | {_mbit(rate)} | {'' if fps is None else f'{fps:.1f}'} "
                     f"| {_mbit(camera)} | {'' if decoded is None else decoded} |")
    lines += ["", f"Command: `python bench/passthrough.py --seconds {args.seconds:g} --viewers {args.viewers}`"]
    return "\n".join(lines)


def _mbit(value: float | None) -> str:
    return "" if value is None else f"{value / 1e6:.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--viewers", type=int, default=100)
    parser.add_argument("--bitrate", type=int, default=4_000_000)
    parser.add_argument("--source-dir", default=tempfile.gettempdir(), help="where the H.264 file is kept")
    parser.add_argument("--out", default=str(ROOT / "docs" / "benchmarks.md"))
    args = parser.parse_args()
    publish(args.out, "passthrough", run(args))


if __name__ == "__main__":
    main()
