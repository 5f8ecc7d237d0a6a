"""WebRTC (WHEP) viewers of a 1080p30 H.264 camera with AAC: camstream's CPU for 1, 10 and 50 of them against
as many MSE viewers, and how long a frame takes from reaching the WebRTC relay to going to each viewer's RTP
sender.

The camera is GStreamer's RTSP server encoding live with x264 (4 Mbit/s, a
keyframe every 2 s) with AAC beside it, on core 1 with the clients;
camstream (``python -m webapp``) on core 0. The WebRTC
viewers are aiortc peer connections in this process (one asyncio loop) that
count the RTP packets they get and decode nothing: what is measured is
camstream's side, not a browser's (bench/players.py has Chromium's own
numbers). The MSE viewers are bench/passthrough.py's raw WebSocket clients.

The delay is camstream's own measure (``send_delay_ms`` in
``/api/webrtc/<name>``): from the relay taking a frame from the camera's
feed to aiortc's sender taking its payloads (it encrypts and sends them at
once), the median and 99th percentile over every viewer's frames.

    python bench/webrtc.py                         # about 4 minutes
    python bench/webrtc.py --seconds 5 --counts 1,3 --out -
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import threading
import time
import urllib.error
import urllib.request

from frame_age import rtsp_server
from passthrough import FPS, HEIGHT, WIDTH, MseClients, measure
from report import publish
from run import ROOT, Process, pinned

# Seconds before measuring: the camera connects, every viewer connects and gets its first GOP.
WARM_UP = 8


class RtcClients:
    """``count`` WHEP clients (aiortc) on a loop of their own: RTP packets and bytes counted, nothing decoded."""

    def __init__(self, base: str, name: str, count: int) -> None:
        self.base, self.name = base, name
        self.packets = [0] * count
        self.bytes = [0] * count
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.connections: list = []
        self.locations: list[str] = []
        self.error: str | None = None
        for index in range(count):
            try:
                asyncio.run_coroutine_threadsafe(self._open(index), self.loop).result(60)
            except (RuntimeError, OSError, TimeoutError) as exc:
                self.error = str(exc)  # the row says how many were opened, and why no more
                break

    async def _open(self, index: int) -> None:
        from aiortc import RTCPeerConnection, RTCSessionDescription

        pc = RTCPeerConnection()
        pc.addTransceiver("video", direction="recvonly")
        pc.addTransceiver("audio", direction="recvonly")
        for transceiver in pc.getTransceivers():
            async def counted(packet, arrival_time_ms, index=index):  # no jitter buffer, no decoder
                self.packets[index] += 1
                self.bytes[index] += len(packet.payload)
            transceiver.receiver._handle_rtp_packet = counted
        await pc.setLocalDescription(await pc.createOffer())
        request = urllib.request.Request(f"{self.base}/whep/{self.name}", data=pc.localDescription.sdp.encode(),
                                         method="POST", headers={"Content-Type": "application/sdp"})

        def post() -> tuple[str, str]:
            try:
                with urllib.request.urlopen(request, timeout=30) as response:
                    return response.read().decode(), response.headers["Location"]
            except urllib.error.HTTPError as exc:
                raise RuntimeError(f"viewer {index + 1}: {exc.code} {exc.read()[:300]!r}") from None
        answer, location = await asyncio.get_running_loop().run_in_executor(None, post)
        await pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))
        self.connections.append(pc)
        self.locations.append(location)

    def close(self) -> None:
        async def closing() -> None:
            await asyncio.gather(*(pc.close() for pc in self.connections))
        asyncio.run_coroutine_threadsafe(closing(), self.loop).result(60)
        for location in self.locations:
            try:
                urllib.request.urlopen(urllib.request.Request(self.base + location, method="DELETE"), timeout=10)
            except OSError:
                pass  # ended already with its peer connection
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


def webrtc_status(base: str, name: str) -> dict:
    return json.loads(urllib.request.urlopen(f"{base}/api/webrtc/{name}", timeout=10).read())


def run(args: argparse.Namespace) -> str:
    camera = rtsp_server(*args.size, args.bitrate // 1000)
    url = f"rtsp://127.0.0.1:{camera.match.group(1)}/shared/cam"
    counts = [int(count) for count in args.counts.split(",")]
    server = Process(pinned(0, [sys.executable, "-m", "webapp", "--port", "0", "--camera", f"cam={url}",
                                "--idle-timeout", "2", "--max-viewers", str(max(counts) + 10)]),
                     r"open http://localhost:(\d+)/", stream="stderr")
    port = int(server.match.group(1))
    base = f"http://127.0.0.1:{port}"
    rows = []
    try:
        for count in counts:
            for path in ("MSE", "WebRTC"):
                clients = RtcClients(base, "cam", count) if path == "WebRTC" else MseClients(port, "cam", count)
                opened = len(clients.connections) if path == "WebRTC" else count
                time.sleep(args.warm_up)
                load = os.getloadavg()[0]
                done = clients.packets if path == "WebRTC" else clients.messages
                before, bytes_before = sum(done), sum(clients.bytes)
                made_before = webrtc_status(base, "cam")
                made_before, sent_before = made_before["frames_packetized"], made_before["frames_sent"]
                cpu = measure(server.pid, args.seconds)
                status = webrtc_status(base, "cam")
                units = (sum(done) - before) / max(1, opened) / args.seconds
                rate = (sum(clients.bytes) - bytes_before) / max(1, opened) / args.seconds * 8
                delay = status["send_delay_ms"] if path == "WebRTC" else None
                shown = str(count) if opened == count else f"{opened} of {count}"
                if opened != count:
                    print(f"WebRTC x{count}: {clients.error}", file=sys.stderr)
                made = sent = None
                if path == "WebRTC":
                    made = (status["frames_packetized"] - made_before) / args.seconds
                    sent = (status["frames_sent"] - sent_before) / max(1, opened) / args.seconds
                rows.append((path, shown, cpu, units, rate, made, sent, delay, load))
                clients.close()
                time.sleep(3)
    finally:
        server.stop()
        camera.stop()
    width, height = args.size
    unpinned = os.environ.get("BENCH_PIN") == "0"
    where = "on either core (not pinned: `BENCH_PIN=0`)" if unpinned else "pinned to core 0"
    lines = [
        "## WebRTC against MSE (bench/webrtc.py)",
        "",
        (f"A {width}x{height} {FPS} fps H.264 camera ({args.bitrate // 1000} kbit/s) with AAC 48 kHz, "
        f"camstream {where}, {args.seconds:g} s per row after {args.warm_up:g} s of warm-up."),
        "",
        ("| viewers | path | camstream CPU (% of a core) | per viewer | Mbit/s per viewer | frames packetized/s "
        "| frames sent/s per viewer | frame to RTP sender, ms (p50 / p99 / max) | machine's load average |"),
        "| ---: | --- | ---: | ---: | ---: | ---: | ---: | --- | ---: |",
    ]
    for path, count, cpu, units, rate, made, sent, delay, load in rows:
        unit = "RTP packets/s" if path == "WebRTC" else "fragments/s"
        shown = f"{delay['p50']} / {delay['p99']} / {delay['max']}" if delay else "-"
        packetized = f"{made:.1f}" if made is not None else "-"
        each = f"{sent:.1f}" if sent is not None else "-"
        lines.append(f"| {count} | {path} | {cpu:.1f} | {units:.0f} {unit} | {rate / 1e6:.2f} | {packetized} "
                     f"| {each} | {shown} | {load:.1f} |")
    lines += [
        "",
        ("The WebRTC viewers are aiortc peer connections in the bench's process that count RTP packets and decode "
        "nothing (camstream's side is measured, not a browser's: bench/players.py has Chromium's); the MSE "
        "viewers are raw WebSocket clients. Frames packetized/s is the camera's frames made into RTP payloads "
        "once for all viewers (30 when the relay keeps up with the camera); frames sent/s per viewer what camstream "
        "handed each viewer's RTP sender (30 when it keeps up with every viewer; the per viewer column is what "
        "the clients received, less when the bench's own clients fall behind). Frame to RTP sender is camstream's "
        "own `send_delay_ms` (`/api/webrtc/<name>`): from the relay taking a frame from the camera's feed to "
        "aiortc's sender taking its payloads, which it encrypts and sends at once; every viewer's frames. The "
        "load average says how busy the machine (2 cores, shared) was: a machine busier than its cores shows "
        "as a long tail of delays that camstream's CPU does not explain. A row with fewer viewers than asked "
        "could open no more: an offer not answered within 20 s, the WebRTC loop (one thread for every peer "
        "connection) being behind."),
        "",
        (f"Command: `{'BENCH_PIN=0 ' if unpinned else ''}python bench/webrtc.py --seconds {args.seconds:g} "
        f"--counts {args.counts}`"),
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--counts", default="1,10,50", help="viewer counts, comma-separated")
    parser.add_argument("--bitrate", type=int, default=4_000_000)
    parser.add_argument("--size", type=lambda text: tuple(int(part) for part in text.split("x")),
                        default=(WIDTH, HEIGHT), help="WIDTHxHEIGHT of the camera")
    parser.add_argument("--warm-up", type=float, default=WARM_UP)
    parser.add_argument("--out", default=str(ROOT / "docs" / "benchmarks.md"))
    args = parser.parse_args()
    publish(args.out, "webrtc", run(args))


if __name__ == "__main__":
    main()
