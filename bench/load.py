"""Open N concurrent viewers of an MJPEG URL (or a WebSocket or an event stream) and report what they saw.

One process, asyncio. Each viewer parses the multipart stream (chunked or
not), and records when each frame arrived and how old it was (arrival time
minus the part's ``X-Timestamp``). ``--slow K`` makes K of the viewers
behave like a phone on weak Wi-Fi: an 8 KB receive buffer, little buffering
of its own, and a capped read rate. ``--mode ws`` reads ``/ws/<name>``
instead: binary messages are frames, aged by the send time bench/upstream.py
writes into each JPEG's comment; text messages are counted. ``--mode
events`` reads ``/events`` and counts its events (as "frames").

    python bench/load.py http://127.0.0.1:8000/video_feed --viewers 50 --seconds 20
    python bench/load.py http://127.0.0.1:8000/ws/cam --mode ws --viewers 50 --slow 1

Prints one JSON object (see :func:`summarize`).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import resource
import socket
import statistics
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

SLOW_RCVBUF = 8 * 1024
SLOW_READ = 4 * 1024


@dataclass
class Viewer:
    slow: bool = False
    started: float = 0.0
    first_frame: float | None = None
    last_frame: float | None = None
    frames: int = 0
    bytes: int = 0
    longest_gap: float = 0.0
    ages: list[float] = field(default_factory=list)
    status: int | None = None
    error: str | None = None
    messages: int = 0


class ByteSource:
    """Reads the response body, undoing chunked encoding, optionally at a capped rate."""

    def __init__(self, reader: asyncio.StreamReader, chunked: bool, rate: float | None) -> None:
        self.reader = reader
        self.chunked = chunked
        self.rate = rate
        self.buffer = bytearray()
        self.chunk_left = 0
        self.allowance_at = time.monotonic()

    async def _raw(self, n: int) -> bytes:
        if self.rate:
            n = min(n, SLOW_READ)
            now = time.monotonic()
            if self.allowance_at > now:
                await asyncio.sleep(self.allowance_at - now)
            data = await self.reader.read(n)
            self.allowance_at = max(self.allowance_at, time.monotonic() - 0.05) + len(data) / self.rate
        else:
            data = await self.reader.read(n)
        if not data:
            raise EOFError("server closed the stream")
        return data

    async def _fill(self, wanted: int) -> None:
        while len(self.buffer) < wanted:
            if not self.chunked:
                self.buffer += await self._raw(max(65536, wanted - len(self.buffer)))
                continue
            if self.chunk_left == 0:
                line = await self._raw_line()
                self.chunk_left = int(line.split(b";")[0], 16)
                if self.chunk_left == 0:
                    raise EOFError("last chunk")
            data = await self._raw(min(self.chunk_left, max(65536, wanted - len(self.buffer))))
            self.chunk_left -= len(data)
            self.buffer += data
            if self.chunk_left == 0:
                await self._raw_exact(2)

    async def _raw_line(self) -> bytes:
        line = bytearray()
        while not line.endswith(b"\r\n"):
            line += await self._raw_exact(1)
        return bytes(line[:-2])

    async def _raw_exact(self, n: int) -> bytes:
        out = bytearray()
        while len(out) < n:
            out += await self._raw(n - len(out))
        return bytes(out)

    async def readuntil(self, separator: bytes) -> bytes:
        start = 0
        while True:
            end = self.buffer.find(separator, start)
            if end >= 0:
                data = bytes(self.buffer[: end + len(separator)])
                del self.buffer[: end + len(separator)]
                return data
            start = max(0, len(self.buffer) - len(separator) + 1)
            await self._fill(len(self.buffer) + 1)

    async def readexactly(self, n: int) -> bytes:
        await self._fill(n)
        data = bytes(self.buffer[:n])
        del self.buffer[:n]
        return data


class DirectSource:
    """A plain (not chunked, not rate-capped) body: asyncio's own reader does the work."""

    def __init__(self, reader: asyncio.StreamReader) -> None:
        self.readuntil = reader.readuntil
        self.readexactly = reader.readexactly


async def watch(url: str, viewer: Viewer, deadline: float, rate: float | None, mode: str = "mjpeg") -> None:
    parts = urlsplit(url)
    viewer.started = time.monotonic()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setblocking(False)
    if viewer.slow:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SLOW_RCVBUF)
    writer = None
    try:
        await asyncio.get_running_loop().sock_connect(sock, (parts.hostname, parts.port or 80))
        limit = SLOW_READ if viewer.slow else 2**20
        reader, writer = await asyncio.open_connection(sock=sock, limit=limit)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        upgrade = ("Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                   f"Sec-WebSocket-Key: {base64.b64encode(os.urandom(16)).decode()}\r\n") if mode == "ws" else ""
        writer.write(f"GET {path} HTTP/1.1\r\nHost: {parts.netloc}\r\n{upgrade}\r\n".encode())
        status_line = await reader.readline()
        viewer.status = int(status_line.split()[1])
        headers = {}
        while (line := await reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        if viewer.status != (101 if mode == "ws" else 200):
            return
        chunked = "chunked" in headers.get("transfer-encoding", "")
        source = ByteSource(reader, chunked, rate) if chunked or rate else DirectSource(reader)
        read = {"ws": read_messages, "events": read_events}.get(mode, read_frames)
        await read(source, viewer, deadline)
    except (OSError, EOFError, ValueError, IndexError, asyncio.IncompleteReadError) as exc:
        viewer.error = f"{type(exc).__name__}: {exc}"
    finally:
        if writer is not None:
            writer.close()
        else:
            sock.close()


async def read_frames(source: ByteSource | DirectSource, viewer: Viewer, deadline: float) -> None:
    """Read parts: everything up to a blank line is boundary and headers, then the JPEG."""
    while time.monotonic() < deadline:
        head = await source.readuntil(b"\r\n\r\n")
        length, stamp = None, None
        for line in head.split(b"\r\n"):
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"x-timestamp":
                stamp = float(value)
        if length is None:
            raise ValueError("part without Content-Length")
        jpeg = await source.readexactly(length)
        # A server that sends no X-Timestamp: the send time bench/upstream.py wrote into the JPEG.
        arrived(viewer, length, stamp if stamp is not None else sent_at(jpeg))


def arrived(viewer: Viewer, size: int, stamp: float | None) -> None:
    now = time.monotonic()
    viewer.frames += 1
    viewer.bytes += size
    if viewer.last_frame is not None:
        viewer.longest_gap = max(viewer.longest_gap, now - viewer.last_frame)
    viewer.first_frame = viewer.first_frame or now
    viewer.last_frame = now
    if stamp is not None:
        viewer.ages.append(time.time() - stamp)


async def read_messages(source: ByteSource | DirectSource, viewer: Viewer, deadline: float) -> None:
    """WebSocket messages from the server (unmasked, unfragmented): binary ones are frames."""
    while time.monotonic() < deadline:
        head = await source.readexactly(2)
        opcode, length = head[0] & 0x0F, head[1] & 0x7F
        if length >= 126:
            length = int.from_bytes(await source.readexactly(2 if length == 126 else 8), "big")
        payload = await source.readexactly(length)
        if opcode == 0x2:
            arrived(viewer, length, sent_at(payload))
        elif opcode == 0x1:
            viewer.messages += 1
        elif opcode == 0x8:
            raise EOFError("the server closed the WebSocket")


def sent_at(jpeg: bytes) -> float | None:
    """The send time bench/upstream.py put in the JPEG's first comment segment, if it is there."""
    if jpeg[2:4] != b"\xff\xfe":
        return None
    comment = jpeg[6:4 + int.from_bytes(jpeg[4:6], "big")]
    return float(comment[5:]) if comment.startswith(b"sent ") else None


async def read_events(source: ByteSource | DirectSource, viewer: Viewer, deadline: float) -> None:
    """Server-Sent Events: each ``data:`` line is one event."""
    while time.monotonic() < deadline:
        line = await source.readuntil(b"\n")
        if line.startswith(b"data:"):
            viewer.messages += 1
            arrived(viewer, len(line), None)


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]


def ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 1)


def summarize(viewers: list[Viewer], seconds: float, cpu_seconds: float) -> dict:
    def group(members: list[Viewer]) -> dict | None:
        if not members:
            return None
        rates = [
            (v.frames - 1) / (v.last_frame - v.first_frame)
            for v in members if v.frames > 1 and v.last_frame > v.first_frame
        ]
        ages = [a for v in members for a in v.ages]
        ttff = [v.first_frame - v.started for v in members if v.first_frame]
        return {
            "viewers": len(members),
            "served": sum(1 for v in members if v.frames > 0),
            "fps_median": round(statistics.median(rates), 2) if rates else 0.0,
            "fps_p5": round(percentile(rates, 5), 2) if rates else 0.0,
            "first_frame_ms_median": ms(statistics.median(ttff)) if ttff else None,
            "first_frame_ms_max": ms(max(ttff)) if ttff else None,
            "age_ms_p50": ms(percentile(ages, 50)),
            "age_ms_p99": ms(percentile(ages, 99)),
            "age_ms_max": ms(max(ages)) if ages else None,
            "longest_gap_ms": ms(max(v.longest_gap for v in members)),
            "mb_per_s": round(sum(v.bytes for v in members) / seconds / 1e6, 2),
            "messages_per_s": round(sum(v.messages for v in members) / seconds, 2),
            "errors": sum(1 for v in members if v.error),
            "refused": sum(1 for v in members if v.status not in (None, 200)),
            "first_error": next((v.error for v in members if v.error), None),
        }

    return {
        "fast": group([v for v in viewers if not v.slow]),
        "slow": group([v for v in viewers if v.slow]),
        "statuses": sorted({v.status for v in viewers if v.status is not None}),
        "client_cpu_percent": round(100 * cpu_seconds / seconds, 1),
    }


async def run(url: str, count: int, slow: int, seconds: float, rate: float, ramp: float, mode: str = "mjpeg") -> dict:
    viewers = [Viewer(slow=i < slow) for i in range(count)]
    usage = resource.getrusage(resource.RUSAGE_SELF)
    started = time.monotonic()
    deadline = started + seconds
    tasks = []
    for index, viewer in enumerate(viewers):
        tasks.append(asyncio.create_task(watch(url, viewer, deadline, rate if viewer.slow else None, mode)))
        if ramp and index % 20 == 19:
            await asyncio.sleep(ramp)
    await asyncio.wait(tasks, timeout=seconds + 10)
    for task in tasks:
        task.cancel()
    elapsed = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (after.ru_utime - usage.ru_utime) + (after.ru_stime - usage.ru_stime)
    return summarize(viewers, elapsed, cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("--viewers", type=int, default=10)
    parser.add_argument("--slow", type=int, default=0, help="how many of the viewers are slow")
    parser.add_argument("--slow-rate", type=float, default=200_000, help="slow viewers' bytes per second")
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--ramp", type=float, default=0.05, help="pause after every 20 connections")
    parser.add_argument("--mode", choices=["mjpeg", "ws", "events"], default="mjpeg",
                        help="what the URL serves: an MJPEG stream, /ws/<name>, or /events")
    args = parser.parse_args()
    if not args.url.startswith("http://"):
        parser.error("only http:// URLs")
    if not 0 < args.seconds <= 3600 or not 0 < args.viewers <= 5000:
        parser.error("--seconds must be 0-3600 and --viewers 1-5000")
    host = urlsplit(args.url).hostname or ""
    if not (host == "localhost" or host.startswith("127.")):
        parser.error("load is only sent to loopback (127.0.0.0/8)")
    summary = asyncio.run(run(args.url, args.viewers, args.slow, args.seconds, args.slow_rate, args.ramp, args.mode))
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
