"""Clients that misbehave: bad input, vanished peers, and many connect/disconnect cycles."""

import http.client
import os
import resource
import shutil
import socket
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from camera import PatternCamera
from tests.helpers import MjpegReader, get, get_json, wait_until
from webapp import create_app
from webapp.runtime.registry import runtime_of


@pytest.fixture
def app_and_base(serve):
    app = create_app({"CAMERAS": {"cam": PatternCamera("cam", fps=30, width=320)}, "IDLE_TIMEOUT": 60})
    return app, serve(app)


def raw_get(base: str, path: str) -> tuple[int, http.client.HTTPMessage, bytes]:
    """GET ``path`` exactly as written, with no client-side normalising."""
    host, port = base.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    connection.putrequest("GET", path, skip_accept_encoding=True)
    connection.endheaders()
    response = connection.getresponse()
    body = response.read()
    connection.close()
    return response.status, response.headers, body


@pytest.mark.parametrize("query, message", [
    ("/video_feed/cam?fps=fast", "fps must be a number from 0.1 to 120, not 'fast'"),
    ("/video_feed/cam?fps=0", "fps must be a number from 0.1 to 120, not '0'"),
    ("/video_feed/cam?fps=nan", "fps must be a number from 0.1 to 120, not 'nan'"),
    ("/video_feed?fps=1e9", "fps must be a number from 0.1 to 120"),
    ("/video_feed?fps=inf", "fps must be a number from 0.1 to 120"),
    ("/snapshot/cam.jpg?timeout=-1", "timeout must be a number from 0 to 30, not '-1'"),
    ("/snapshot.jpg?timeout=soon", "timeout must be a number from 0 to 30, not 'soon'"),
])
def test_bad_query_values_are_400_json(app_and_base, query, message):
    app, base = app_and_base
    status, body = get_json(base + query)
    assert status == 400 and body["status"] == 400 and message in body["error"]
    assert runtime_of(app).slots.used == 0, "a refused stream holds no slot"


def test_unknown_query_parameters_such_as_cache_busters_are_ignored(app_and_base):
    _, base = app_and_base
    with MjpegReader(f"{base}/video_feed/cam?t=12345") as viewer:
        assert viewer.status == 200 and len(viewer.read(2)) == 2
    assert get(f"{base}/snapshot/cam.jpg?t=1&timeout=5")[0] == 200


def test_a_viewer_can_ask_for_fewer_frames(app_and_base):
    _, base = app_and_base
    with MjpegReader(f"{base}/video_feed/cam?fps=5") as viewer:
        viewer.read(1)
        started = time.monotonic()
        viewer.read(5)
        # Five frames at 5 fps take about a second; at the camera's 30 fps, a sixth of that.
        assert time.monotonic() - started > 0.7


def test_head_works_for_the_page_and_snapshots(app_and_base):
    _, base = app_and_base
    status, headers, body = get(f"{base}/", method="HEAD")
    assert status == 200 and headers["Content-Type"].startswith("text/html") and body == b""
    status, headers, body = get(f"{base}/snapshot/cam.jpg", method="HEAD")
    assert status == 200 and headers["Content-Type"] == "image/jpeg" and body == b""
    assert int(headers["Content-Length"]) > 1000


def test_wrong_methods_are_405_json(app_and_base):
    _, base = app_and_base
    for path in ("/", "/video_feed/cam", "/snapshot/cam.jpg", "/api/cameras", "/healthz"):
        status, headers, raw = get(base + path, method="POST")
        assert status == 405 and b'"status":405' in raw.replace(b" ", b"") and "GET" in headers["Allow"]


@pytest.mark.parametrize("path", [
    "/static/../setup.cfg",
    "/static/%2e%2e/setup.cfg",
    "/static/..%2fsetup.cfg",
    "/static/%2e%2e%2fwebapp%2fapp.py",
    "/static/%2fetc%2fpasswd",
    "/static/..%5csetup.cfg",
])
def test_static_paths_cannot_escape_static(app_and_base, path):
    _, base = app_and_base
    status, headers, body = raw_get(base, path)
    if status == 308:
        # Werkzeug merges doubled slashes by redirecting; it must stay inside static/.
        location = urlsplit(headers["Location"]).path
        assert location.startswith("/static/") and ".." not in location
        status, headers, body = raw_get(base, location)
    assert status in (404, 400), (status, body[:200])
    assert headers["Content-Type"] == "application/json"
    assert b"[metadata]" not in body and b"root:" not in body and b"create_app" not in body
    assert raw_get(base, "/static/camstream.css")[0] == 200


def test_a_client_that_takes_nothing_is_dropped_and_frees_its_slot(serve):
    """A client that vanished without closing: its socket fills and nothing is ever acknowledged."""
    app = create_app({"CAMERAS": {"cam": PatternCamera("cam", fps=30)}})
    base = serve(app, client_timeout=2)
    host, port = base.removeprefix("http://").split(":")
    gone = socket.socket()
    gone.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    gone.connect((host, int(port)))
    gone.sendall(b"GET /video_feed/cam HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    slots = runtime_of(app).slots
    try:
        assert wait_until(lambda: slots.used == 1, 5)
        assert wait_until(lambda: slots.used == 0, 20), "the stalled connection must be dropped"
        assert get_json(f"{base}/healthz")[1]["streams"] == 0
    finally:
        gone.close()


def open_descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


def rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize() / 2**20


def watch_and_leave(host: str, port: int, index: int) -> None:
    """Open a stream, read a little of it, and leave: politely, or with a reset mid-frame."""
    with socket.create_connection((host, port), timeout=10) as sock:
        sock.sendall(b"GET /video_feed/cam HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        received = b""
        while b"\r\n\r\n" not in received or len(received) < 2000:
            chunk = sock.recv(4096)
            assert chunk, "the server closed a stream it should be sending"
            received += chunk
        assert received.startswith(b"HTTP/1.1 200")
        if index % 2:
            # RST instead of FIN, in the middle of a JPEG.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def test_a_thousand_viewers_coming_and_going_leave_nothing_behind(serve):
    app = create_app({"CAMERAS": {"cam": PatternCamera("cam", fps=30, width=320)}, "IDLE_TIMEOUT": 120})
    base = serve(app)
    host, port = base.removeprefix("http://").split(":")
    camera = runtime_of(app).cameras["cam"]
    slots = runtime_of(app).slots

    def cycles(start: int, count: int, workers: int = 10) -> None:
        errors: list[BaseException] = []

        def work(offset: int) -> None:
            try:
                for index in range(start + offset, start + count, workers):
                    watch_and_leave(host, int(port), index)
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(n,)) for n in range(workers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        assert not errors, errors[:3]

    def settled() -> bool:
        return slots.used == 0 and camera.status()["viewers"] == 0

    cycles(0, 100)  # warm up: the camera, waitress's workers, the sender thread
    assert wait_until(settled, 2)
    threads, descriptors, memory = threading.active_count(), open_descriptors(), rss_mb()
    cycles(100, 1000)
    assert wait_until(settled, 2), "every subscription is released within 2 s of the last disconnect"
    assert threading.active_count() <= threads + 2
    assert wait_until(lambda: open_descriptors() <= descriptors + 3, 5), (open_descriptors(), descriptors)
    assert rss_mb() - memory < 25, f"RSS grew {rss_mb() - memory:.1f} MB over 1000 viewers"
    with MjpegReader(f"{base}/video_feed/cam") as viewer:
        assert len(viewer.read(2)) == 2, "and the server still streams"


def namespaces_available() -> bool:
    if not (shutil.which("unshare") and shutil.which("ip")):
        return False
    probe = subprocess.run(["unshare", "-rn", "ip", "link", "set", "lo", "up"], capture_output=True, check=False)
    return probe.returncode == 0


@pytest.mark.skipif(not namespaces_available(), reason="needs unshare -rn (user and network namespaces)")
@pytest.mark.parametrize("path", ["sender", "wsgi"])
def test_a_client_gone_without_a_fin_frees_its_slot(path):
    """In a network namespace of the test's own, the viewer's packets stop for good (tests/half_open.py)."""
    root = Path(__file__).resolve().parents[2]
    result = subprocess.run(
        ["unshare", "-rn", sys.executable, str(root / "tests" / "half_open.py"), path],
        capture_output=True, text=True, timeout=60, check=False,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")]))},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    verdict = result.stdout.split()
    assert verdict[0] == "freed", "a vanished client must not hold its stream forever"
    assert float(verdict[1]) < 15
