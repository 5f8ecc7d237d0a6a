"""The FastAPI and Django Ninja examples, started for real (uvicorn; Django under uvicorn and under
waitress) and read with real clients: frames decode, viewers share one capture, a viewer that leaves
is unsubscribed at once, the camera is released after its idle timeout, the WebSocket sends JPEGs."""

import importlib.util
import json
import os
import socket
import sys
import time
from pathlib import Path

import pytest
import websocket

from tests.config.test_cli import Running
from tests.helpers import MjpegReader, decode, get, wait_until

pytestmark = pytest.mark.slow

# Imported by the servers, not here (ninja needs Django's settings to import).
MISSING = [name for name in ("fastapi", "uvicorn", "django", "ninja") if importlib.util.find_spec(name) is None]
if MISSING:
    pytest.skip(f"the examples' packages are not installed: {', '.join(MISSING)} (pip install '.[test]')",
                allow_module_level=True)

ROOT = Path(__file__).resolve().parent.parent
SERVERS = {
    "fastapi": ([sys.executable, "-m", "uvicorn", "examples.fastapi_app:app", "--port", "0"],
                "/video_feed", "/status"),
    "django-asgi": ([sys.executable, "-m", "uvicorn", "examples.django_ninja.asgi:application", "--port", "0"],
                    "/api/camera", "/api/camera/status"),
    "django-wsgi": ([sys.executable, "-m", "waitress", "--listen=127.0.0.1:0", "--threads=8",
                     "examples.django_ninja.wsgi:application"], "/api/camera", "/api/camera/status"),
}
# How each server says where it listens.
LISTENING = r"(?:Uvicorn running on|Serving on) http://127\.0\.0\.1:(\d+)"


def get_json(url: str) -> tuple[int, dict]:
    """Like tests.helpers.get_json, for frameworks that add a charset to application/json."""
    status, headers, body = get(url)
    assert headers["Content-Type"].startswith("application/json")
    return status, json.loads(body)


def start_environment() -> dict[str, str]:
    environment = {key: value for key, value in os.environ.items() if not key.startswith("CAMSTREAM_")}
    environment.update(PYTHONPATH=str(ROOT), CAMSTREAM_SOURCE="pattern", CAMSTREAM_FPS="15",
                       CAMSTREAM_WIDTH="320", CAMSTREAM_IDLE_TIMEOUT="1")
    return environment


def start(kind: str) -> tuple[Running, str]:
    command, _, _ = SERVERS[kind]
    server = Running(command, start_environment(), cwd=ROOT)
    port = server.wait_for_line(LISTENING).group(1)
    return server, f"http://127.0.0.1:{port}"


@pytest.fixture(params=list(SERVERS))
def example(request):
    server, url = start(request.param)
    _, stream, status = SERVERS[request.param]
    yield url, stream, lambda: get_json(url + status)[1]
    server.stop()


def test_two_viewers_share_one_capture_and_the_camera_stops_when_they_leave(example):
    url, stream, status = example
    first, second = MjpegReader(url + stream), MjpegReader(url + stream)
    try:
        seen = [set(first.read(10)), set(second.read(10))]
        assert all(decode(frame).shape == (240, 320, 3) for frames in seen for frame in frames)
        assert status()["viewers"] == 2
        # One encoded frame for both: they received the very same JPEGs.
        assert seen[0] & seen[1] or set(first.read(5)) & set(second.read(5))
        state = status()
        assert state["frames_encoded"] <= state["frames_captured"]
        first.close()
        assert wait_until(lambda: status()["viewers"] == 1, 1.0), "the viewer that left is unsubscribed at once"
        assert decode(second.read(1)[0]).shape == (240, 320, 3)
    finally:
        first.close()
        second.close()
    assert wait_until(lambda: status()["viewers"] == 0, 1.0)
    assert wait_until(lambda: status()["state"] == "idle", 10), "released after the 1 s idle timeout"


def test_the_fastapi_page_snapshot_and_websocket():
    server, url = start("fastapi")
    try:
        status, headers, body = get(url + "/")
        assert status == 200 and b'src="' in body and b"/video_feed" in body
        status, headers, body = get(url + "/snapshot.jpg")
        assert status == 200 and headers["Content-Type"] == "image/jpeg" and decode(body).shape == (240, 320, 3)
        ws = websocket.create_connection(url.replace("http", "ws") + "/ws?fps=5", timeout=10)
        try:
            started = time.monotonic()
            messages = [ws.recv_data() for _ in range(4)]
            elapsed = time.monotonic() - started
        finally:
            ws.close()
        assert all(opcode == websocket.ABNF.OPCODE_BINARY for opcode, _ in messages)
        assert all(decode(data).shape == (240, 320, 3) for _, data in messages)
        # ?fps=5 from a 15 fps camera: four frames take (at least) most of 0.6 s.
        assert elapsed >= 0.45
        status, body = get_json(url + "/video_feed?fps=0")
        assert status == 422
    finally:
        server.stop()


def test_the_django_snapshot_and_a_bad_fps():
    server, url = start("django-asgi")
    try:
        status, _headers, body = get(url + "/api/camera/snapshot.jpg")
        assert status == 200 and decode(body).shape == (240, 320, 3)
        status, body = get_json(url + "/api/camera?fps=1000")
        assert status == 422 and "fps" in str(body)
    finally:
        server.stop()


def test_with_the_low_latency_protocol_a_slow_viewer_stays_near_live():
    """A viewer taking 100 KB/s of a camera sending about 450 KB/s gets fewer, recent frames.

    Without the protocol, Linux lets the connection's send buffer grow to megabytes and such a
    viewer falls further behind every second: this test then fails (bench/frameworks.py measures both).
    """
    command, stream, _ = SERVERS["fastapi"]
    # 640x480 at 30 fps: frames of about 15 KB.
    environment = {**start_environment(), "CAMSTREAM_FPS": "30"}
    del environment["CAMSTREAM_WIDTH"]
    server = Running([*command, "--http", "examples.lowlatency:H11Protocol"], environment, cwd=ROOT)
    port = server.wait_for_line(LISTENING).group(1)
    try:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8192)
        sock.connect(("127.0.0.1", int(port)))
        sock.sendall(f"GET {stream} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
        received = bytearray()
        started = time.monotonic()
        while time.monotonic() - started < 6:
            received += sock.recv(2048)
            time.sleep(0.02)  # the client's pace: about 100 KB/s
        last_read = time.time()
        sock.close()
    finally:
        server.stop()
    stamps = [float(line.split(b":")[1]) for line in bytes(received).split(b"\r\n") if line.startswith(b"X-Timestamp")]
    frames = len(stamps)
    assert frames >= 10
    # It skipped frames (its frames span far more time than as many frames of a 30 fps camera),
    # and the newest it got was recent when it arrived.
    assert stamps[-1] - stamps[0] > frames / 30 * 2
    assert last_read - stamps[-1] < 2.0, "the newest frame was recent when it was read"
