"""Test helpers: waiting with timeouts, reading MJPEG over real sockets, an upstream server."""

from __future__ import annotations

import atexit
import base64
import http.client
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from fractions import Fraction
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Self
from urllib.parse import urlsplit

import av
import cv2
import numpy as np

from camera import mjpeg


def wait_until(predicate: Callable[[], object], timeout: float, interval: float = 0.02) -> bool:
    """Check ``predicate`` until it is true or ``timeout`` seconds pass; return its last verdict."""
    deadline = time.monotonic() + timeout
    pause = threading.Event()
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return bool(predicate())
        pause.wait(interval)


def get(url: str, method: str = "GET"):
    """GET (or ``method``) ``url``; returns status, headers and body, for errors too."""
    request = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


def get_json(url: str, method: str = "GET"):
    """Like :func:`get`, for a JSON answer; returns status and the parsed body."""
    status, headers, body = get(url, method)
    assert headers["Content-Type"] == "application/json"
    return status, json.loads(body)


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (just now): a camera that is not there."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def make_jpeg(index: int, size: tuple[int, int] = (160, 120), quality: int = 80) -> bytes:
    """A small JPEG whose brightness encodes ``index`` (0-11 map to distinct levels)."""
    width, height = size
    image = np.full((height, width, 3), (index % 12) * 20 + 10, np.uint8)
    cv2.putText(image, str(index), (10, height // 2), cv2.FONT_HERSHEY_SIMPLEX, 1, (255, 255, 255), 2)
    ok, buffer = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return buffer.tobytes()


def decode(data: bytes) -> np.ndarray:
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    assert image is not None, "not a decodable JPEG"
    return image


class MjpegReader:
    """A viewer on a real socket: GET an MJPEG URL and iterate its JPEGs."""

    def __init__(self, url: str, timeout: float = 10.0, headers: dict[str, str] | None = None) -> None:
        parts = urlsplit(url)
        self.connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
        self.connection.request("GET", (parts.path or "/") + (f"?{parts.query}" if parts.query else ""),
                                headers=headers or {})
        self.response = self.connection.getresponse()
        self.status = self.response.status
        self.headers = self.response.headers
        self._parts: Iterator[bytes] | None = None

    def frames(self) -> Iterator[bytes]:
        if self._parts is None:
            boundary = mjpeg.boundary_from_content_type(self.headers["Content-Type"])
            self._parts = mjpeg.read_parts(self.response, boundary)
        return self._parts

    def read(self, count: int) -> list[bytes]:
        frames = self.frames()
        return [next(frames) for _ in range(count)]

    def close(self) -> None:
        # With "Connection: close" http.client hands the socket to the response.
        self.response.close()
        self.connection.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class UpstreamServer:
    """An MJPEG camera stand-in on 127.0.0.1, paced at ``fps``, cycling through ``jpegs``.

    It writes its own framing, independent of camstream's: an mjpg-streamer
    style boundary, optionally without Content-Length. With ``body`` it
    serves those bytes once with ``content_type`` instead of a stream.
    """

    def __init__(
        self,
        jpegs: Sequence[bytes] = (),
        fps: float = 30.0,
        *,
        boundary: str = "boundarydonotcross",
        content_length: bool = True,
        credentials: tuple[str, str] | None = None,
        body: bytes | None = None,
        content_type: str = "application/octet-stream",
    ) -> None:
        self.jpegs = list(jpegs)
        self.fps = fps
        self.boundary = boundary
        self.content_length = content_length
        self.body = body
        self.content_type = content_type
        self.expected_auth = (
            "Basic " + base64.b64encode(":".join(credentials).encode()).decode() if credentials else None
        )
        self.requests = 0
        # While set, streams stay open but send nothing: a camera that hangs.
        self.hanging = threading.Event()
        self.stopping = threading.Event()
        self.httpd = self._listen(0)
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/stream"

    def _listen(self, port: int) -> ThreadingHTTPServer:
        httpd = ThreadingHTTPServer(("127.0.0.1", port), self._handler())
        httpd.daemon_threads = True
        return httpd

    def __enter__(self) -> Self:
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.down()

    def down(self) -> None:
        """Go away: close every stream and stop listening, like a camera losing power."""
        self.stopping.set()
        self.httpd.shutdown()
        self.httpd.server_close()

    def up(self) -> None:
        """Come back on the same port."""
        self.stopping = threading.Event()
        self.httpd = self._listen(self.port)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                upstream.requests += 1
                if upstream.expected_auth and self.headers.get("Authorization") != upstream.expected_auth:
                    self.send_response(401)
                    self.send_header("WWW-Authenticate", 'Basic realm="cam"')
                    self.end_headers()
                    return
                if upstream.body is not None:
                    self.send_response(200)
                    self.send_header("Content-Type", upstream.content_type)
                    self.send_header("Content-Length", str(len(upstream.body)))
                    self.end_headers()
                    self.wfile.write(upstream.body)
                    return
                self.send_response(200)
                self.send_header("Content-Type", f"multipart/x-mixed-replace;boundary={upstream.boundary}")
                self.end_headers()
                try:
                    self._stream()
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def _stream(self) -> None:
                index = 0
                interval = 1.0 / upstream.fps
                next_at = time.monotonic()
                stopping = upstream.stopping
                while not stopping.is_set():
                    if upstream.hanging.is_set():
                        stopping.wait(0.05)
                        next_at = time.monotonic()
                        continue
                    jpeg = upstream.jpegs[index % len(upstream.jpegs)]
                    head = f"--{upstream.boundary}\r\nContent-Type: image/jpeg\r\n"
                    if upstream.content_length:
                        head += f"Content-Length: {len(jpeg)}\r\n"
                    head += f"X-Timestamp: {time.time():.6f}\r\n\r\n"
                    self.wfile.write(head.encode() + jpeg + b"\r\n")
                    self.wfile.flush()
                    index += 1
                    next_at += interval
                    stopping.wait(max(0.0, next_at - time.monotonic()))

        return Handler


class RawUpstream:
    """A misbehaving camera on ``host``: every connection gets a 200 with ``content_type``, then ``body()``.

    ``body`` yields the bytes to send (endlessly, if it likes); they go out
    at ``rate`` bytes a second at most, so a test stays bounded in CPU and
    traffic. Requests are counted, and their headers kept.
    """

    def __init__(self, body: Callable[[], Iterator[bytes]], content_type: str = "multipart/x-mixed-replace;boundary=b",
                 rate: float = 4_000_000, host: str = "127.0.0.1") -> None:
        self.body = body
        self.content_type = content_type
        self.rate = rate
        self.requests: list[bytes] = []
        self.stopping = threading.Event()
        self.listener = socket.create_server((host, 0))
        self.url = f"http://{host}:{self.listener.getsockname()[1]}/stream"

    def __enter__(self) -> Self:
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stopping.set()
        self.listener.close()

    def _accept(self) -> None:
        while not self.stopping.is_set():
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            try:
                request = b""
                while b"\r\n\r\n" not in request and len(request) < 65536:
                    data = conn.recv(4096)
                    if not data:
                        return
                    request += data
                self.requests.append(request)
                conn.sendall(f"HTTP/1.0 200 OK\r\nContent-Type: {self.content_type}\r\n\r\n".encode())
                started, sent = time.monotonic(), 0
                for chunk in self.body():
                    if self.stopping.is_set():
                        return
                    conn.sendall(chunk)
                    sent += len(chunk)
                    ahead = sent / self.rate - (time.monotonic() - started)
                    if ahead > 0:
                        self.stopping.wait(ahead)
            except OSError:
                return


def h264_clip(path: Path, fps: int, frames: int, container: str | None = None) -> Path:
    """H.264 at 160x120, ``fps``, a keyframe every 10 frames, no B-frames; frame i is a flat grey of level 8 i."""
    output = av.open(str(path), "w", format=container)
    stream = output.add_stream("libx264", rate=fps, options={"g": "10", "bf": "0", "preset": "ultrafast"})
    stream.width, stream.height, stream.pix_fmt = 160, 120, "yuv420p"
    stream.time_base = Fraction(1, fps)
    for index in range(frames):
        frame = av.VideoFrame.from_ndarray(np.full((120, 160, 3), index * 8, np.uint8), format="bgr24")
        frame.pts = index
        output.mux(stream.encode(frame))
    output.mux(stream.encode())
    output.close()
    return path



def h264_aac_clip(path: Path, fps: int, seconds: float, b_frames: int = 0) -> Path:
    """H.264 (160x120, ``fps``, a keyframe a second) with AAC at 48 kHz (a 440 Hz tone), as an IP camera sends."""
    output = av.open(str(path), "w")
    video = output.add_stream("libx264", rate=fps, options={"g": str(fps), "bf": str(b_frames), "preset": "ultrafast"})
    video.width, video.height, video.pix_fmt = 160, 120, "yuv420p"
    video.time_base = Fraction(1, fps)
    audio = output.add_stream("aac", rate=48000)
    audio.layout = "mono"
    samples = round(seconds * 48000)
    tone = (0.3 * np.sin(2 * np.pi * 440 * np.arange(samples) / 48000)).astype(np.float32)
    for index in range(round(seconds * fps)):
        frame = av.VideoFrame.from_ndarray(np.full((120, 160, 3), index * 8 % 256, np.uint8), format="bgr24")
        frame.pts = index
        output.mux(video.encode(frame))
    output.mux(video.encode())
    for at in range(0, samples - 1024 + 1, 1024):
        sound = av.AudioFrame.from_ndarray(tone[None, at:at + 1024], format="fltp", layout="mono")
        sound.sample_rate, sound.pts = 48000, at
        output.mux(audio.encode(sound))
    output.mux(audio.encode())
    output.close()
    return path


def h264_square(path: Path, size: tuple[int, int], square: tuple[int, int, int, int], fps: int, frames: int,
                keyframe_every: int = 10) -> Path:
    """H.264 of ``size`` (width, height): a dark grey picture with a still red ``square`` (x, y, w, h), as
    tests.detectors.find_squares finds it; a keyframe every ``keyframe_every`` frames, no B-frames."""
    width, height = size
    picture = np.full((height, width, 3), 40, np.uint8)
    x, y, w, h = square
    picture[y:y + h, x:x + w] = (0, 0, 255)
    output = av.open(str(path), "w")
    stream = output.add_stream("libx264", rate=fps, options={"g": str(keyframe_every), "bf": "0",
                                                             "preset": "ultrafast"})
    stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
    stream.time_base = Fraction(1, fps)
    for index in range(frames):
        frame = av.VideoFrame.from_ndarray(picture, format="bgr24")
        frame.pts = index
        output.mux(stream.encode(frame))
    output.mux(stream.encode())
    output.close()
    return path


# A fork server for ``python -m webapp``: one Python per test worker imports camstream once (its imports are
# most of a command's second and a half of CPU), then forks a child for each command. The child runs exactly
# what ``python -m webapp ARGS`` runs (runpy, as -m does) in the given directory and environment, with its
# own stdin, stdout and stderr, and exits through the interpreter's own exit: status, tracebacks, atexit and
# threads as in a fresh process. Only the interpreter's start and the imports are shared.
_FORK_SERVER = r"""
import io, json, os, sys, threading
started_with = dict(os.environ)
import webapp, webapp.cli  # what python -m webapp imports before it reads a flag
set_by_imports = {k: v for k, v in os.environ.items() if started_with.get(k) != v}
sys.stdout.write("ready\n" if threading.active_count() == 1 else "threads\n")
sys.stdout.flush()
while True:
    line = sys.stdin.readline()
    if not line:
        sys.exit(0)
    request = json.loads(line)
    pid = os.fork()
    if pid == 0:
        break
    sys.stdout.write(f"{pid}\n")
    sys.stdout.flush()
    _, status = os.waitpid(pid, 0)
    sys.stdout.write(f"{os.waitstatus_to_exitcode(status)}\n")
    sys.stdout.flush()
os.chdir(request["cwd"])
os.environ.clear()
os.environ.update(request["env"])
for key, value in set_by_imports.items():
    os.environ.setdefault(key, value)
os.dup2(os.open(request["stdin"] or os.devnull, os.O_RDONLY), 0)
os.dup2(os.open(request["stdout"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC), 1)
os.dup2(os.open(request["stderr"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC), 2)
sys.stdin = sys.__stdin__ = io.TextIOWrapper(io.open(0, "rb", closefd=False))
sys.argv = ["-m", *request["argv"]]
sys.path[0] = request["cwd"]
del io, json, os, sys, threading, started_with, set_by_imports, line, pid, request
import runpy
runpy._run_module_as_main("webapp")
"""


class CliForks:
    """Runs ``python -m webapp ARGS`` as a child forked from one Python that imported camstream already.

    :meth:`run` answers as ``subprocess.run(..., capture_output=True, text=True)`` would. Where forking
    would not be faithful (threads running after the imports) it runs a fresh Python instead.
    """

    _instance: CliForks | None = None
    _lock = threading.Lock()

    def __init__(self, environment: dict[str, str]) -> None:
        self.folder = tempfile.mkdtemp(prefix="camstream-cli-")
        self.server = subprocess.Popen([sys.executable, "-c", _FORK_SERVER], stdin=subprocess.PIPE,
                                       stdout=subprocess.PIPE, env=environment)
        self.pending = b""
        self.usable = self._line(120) == "ready"

    @classmethod
    def shared(cls, environment: dict[str, str]) -> CliForks:
        """This test worker's fork server, started on first use."""
        with cls._lock:
            if cls._instance is None or cls._instance.server.poll() is not None:
                cls._instance = cls(environment)
                atexit.register(cls._instance.close)
            return cls._instance

    def _line(self, timeout: float) -> str | None:
        """The server's next line, or None if none came within ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while b"\n" not in self.pending:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.server.stdout], [], [], left)[0]:
                return None
            chunk = os.read(self.server.stdout.fileno(), 4096)
            if not chunk:
                return None
            self.pending += chunk
        line, self.pending = self.pending.split(b"\n", 1)
        return line.decode()

    def run(self, argv: Sequence[str], environment: dict[str, str], timeout: float,
            stdin: str | None = None) -> subprocess.CompletedProcess:
        """Run the command with ``stdin`` as its input (else /dev/null); its status, stdout and stderr."""
        command = [sys.executable, "-m", "webapp", *argv]
        if not self.usable:
            return subprocess.run(command, check=False, capture_output=True, text=True, timeout=timeout,
                                  env=environment, input=stdin if stdin is not None else "")
        with self._lock:
            out, err, given = (Path(self.folder, name) for name in ("stdout", "stderr", "stdin"))
            if stdin is not None:
                given.write_text(stdin)
            request = {"argv": list(argv), "env": environment, "cwd": os.getcwd(), "stdout": str(out),
                       "stderr": str(err), "stdin": str(given) if stdin is not None else None}
            self.server.stdin.write(json.dumps(request).encode() + b"\n")
            self.server.stdin.flush()
            pid = int(self._line(30))
            returncode = self._line(timeout)
            if returncode is None:
                os.kill(pid, signal.SIGKILL)
                self._line(30)
                raise subprocess.TimeoutExpired(command, timeout)
            return subprocess.CompletedProcess(command, int(returncode), out.read_text(), err.read_text())

    def close(self) -> None:
        if self.server.poll() is None:
            self.server.stdin.close()
            try:
                self.server.wait(10)
            except subprocess.TimeoutExpired:
                self.server.kill()
        shutil.rmtree(self.folder, ignore_errors=True)
