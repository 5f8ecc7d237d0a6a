"""What one hostile WebSocket client costs the others: pings or invalid text sent as fast as it can, never reading.

For each version of the code (this checkout, and ``--against REV``, checked
out into a temporary git worktree), side by side in one run: a server
(``python -m webapp``, one 10 fps pattern camera at 320x240), a bystander
reading its MJPEG stream, and one flooding client on ``/ws`` for
``--seconds``. Reported: the bystander's frame rate before and during the
flood, the server's RSS before, at its peak and after, and how long the
server took to close the flooding client (if it did).

    python bench/flood.py --against e1e332e        # about a minute
    python bench/flood.py --seconds 5 --out -
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from report import publish
from run import ROOT, Process, rss_mb

KEY = "dGhlIHNhbXBsZSBub25jZQ=="


def frame(opcode: int, payload: bytes) -> bytes:
    mask = os.urandom(4)
    return bytes([0x80 | opcode, 0x80 | len(payload)]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


class Bystander:
    """Reads an MJPEG stream in a thread and counts its parts."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.sock.sendall(b"GET /video_feed/a HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        self.parts = 0
        self.stopped = False
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        buffer = b""
        while not self.stopped:
            try:
                chunk = self.sock.recv(65536)
            except OSError:
                return
            if not chunk:
                return
            buffer = buffer[-64:] + chunk
            self.parts += chunk.count(b"--frame\r\n")

    def rate(self, seconds: float) -> float:
        start = self.parts
        time.sleep(seconds)
        return (self.parts - start) / seconds

    def close(self) -> None:
        self.stopped = True
        self.sock.close()


def flood(port: int, message: bytes, seconds: float) -> float | None:
    """Send ``message`` over and over for ``seconds`` without reading; when the server hung up, or None."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.sendall(f"GET /ws/a HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                 f"Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode())
    sock.recv(4096)
    batch = message * 1000
    started = time.monotonic()
    sock.settimeout(0.5)
    try:
        while time.monotonic() - started < seconds:
            try:
                sock.sendall(batch)
            except TimeoutError:
                continue  # the server reads nothing just now
    except OSError:
        return time.monotonic() - started
    finally:
        sock.close()
    return None


def measure(code: Path, name: str, message: bytes, seconds: float) -> dict:
    server = Process([sys.executable, "-m", "webapp", "--camera", "a=pattern", "--fps", "10", "--width", "320",
                      "--port", "0"], r"open http://localhost:(\d+)/", stream="stderr", cwd=code)
    try:
        port = int(server.match[1])
        bystander = Bystander(port)
        before_rate = bystander.rate(3)
        rss_before = rss_mb(server.pid)
        peak = [rss_before]
        result: dict = {}
        attacker = threading.Thread(target=lambda: result.update(closed=flood(port, message, seconds)))
        attacker.start()
        during = []
        while attacker.is_alive():
            during.append(bystander.rate(1))
            peak.append(rss_mb(server.pid))
        time.sleep(2)
        return {"name": name, "before fps": before_rate, "during fps": sum(during) / max(1, len(during)),
                "RSS before MB": rss_before, "RSS peak MB": max(peak), "RSS after MB": rss_mb(server.pid),
                "closed after s": result.get("closed")}
    finally:
        server.stop()


def worktree(revision: str) -> Path:
    folder = Path(tempfile.mkdtemp(prefix="camstream-")) / "code"
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(folder), revision], check=True,
                   capture_output=True)
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--against", metavar="REV", help="also measure this git revision, side by side")
    parser.add_argument("--seconds", type=float, default=10.0, help="how long each flood lasts (default 10)")
    parser.add_argument("--out", default=str(ROOT / "docs" / "benchmarks.md"), help="file to write, or -")
    args = parser.parse_args()
    codes = [("this checkout", ROOT)]
    made = None
    if args.against:
        made = worktree(args.against)
        codes.append((args.against, made))
    floods = {"empty pings": frame(0x9, b""), "invalid text": frame(0x1, b"not json")}
    rows = []
    try:
        for kind, message in floods.items():
            for label, code in codes:
                rows.append(measure(code, f"{kind}, {label}", message, args.seconds))
                print(rows[-1], file=sys.stderr)
    finally:
        if made is not None:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(made)], check=False)
    columns = ["name", "before fps", "during fps", "RSS before MB", "RSS peak MB", "RSS after MB", "closed after s"]
    command = f"python bench/flood.py{' --against ' + args.against if args.against else ''} --seconds {args.seconds:g}"
    lines = ["## One client flooding /ws", "",
             (f"`{command}`: a bystander's MJPEG frame rate (camera at 10 fps) and the server's memory while one "
              "WebSocket client sends as fast as it can and reads nothing."), "",
             "| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        cells = [row["name"]] + [("-" if row[c] is None else f"{row[c]:.3f}" if c == "closed after s" else
                                  f"{row[c]:.1f}") for c in columns[1:]]
        lines.append("| " + " | ".join(cells) + " |")
    publish(args.out, "flood", "\n".join(lines))


if __name__ == "__main__":
    main()
