"""Clients that hold connections open, send too much, leave at once, or break a stream's start."""

import http.client
import json
import socket
import threading
import time
from dataclasses import dataclass

import pytest
from flask import Flask

from camera import PatternCamera
from camera.viewers.sender import SocketViewer, StreamSender
from tests.helpers import MjpegReader, get, get_json, wait_until
from tests.sources import CountingCamera
from webapp import create_app
from webapp.app import shutdown
from webapp.runtime.registry import runtime_of
from webapp.serve.connections import GuardedServer
from webapp.serve.server import make_server, raise_open_file_limit


@dataclass
class Served:
    app: Flask
    server: GuardedServer
    port: int


@pytest.fixture
def guarded():
    """A camstream server with small limits and short timeouts."""
    running = []

    def start(max_viewers: int = 20, threads: int = 8, idle_timeout: float = 15.0,
              request_timeout: float = 10.0, handoff: bool = True, camera=None, cameras: int = 1):
        extra = [PatternCamera(f"cam{n}", fps=10, width=160, idle_timeout=1) for n in range(2, cameras + 1)]
        every = [camera or PatternCamera("cam", fps=10, width=160, idle_timeout=1), *extra]
        app = create_app({"CAMERAS": {c.name: c for c in every}, "MAX_VIEWERS": max_viewers,
                          "SOCKET_HANDOFF": handoff, "IDLE_TIMEOUT": 1})
        server = make_server(app, "127.0.0.1", 0, threads=threads)
        server.idle_timeout = idle_timeout
        server.request_timeout = request_timeout
        threading.Thread(target=server.run, daemon=True).start()
        running.append((app, server))
        return Served(app, server, int(server.effective_port))

    yield start
    for app, server in running:
        shutdown(app)
        server.close()
        server.task_dispatcher.shutdown(timeout=2)


def connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=10)


def page_answers(port: int) -> float:
    """GET the page; returns how long it took."""
    started = time.monotonic()
    status, _, body = get(f"http://127.0.0.1:{port}/")
    assert status == 200 and b"<html" in body.lower()
    return time.monotonic() - started


def test_the_page_answers_with_a_thousand_idle_and_slowloris_connections_open(guarded):
    raise_open_file_limit(8192)
    served = guarded(max_viewers=20, threads=8)
    server, port = served.server, served.port
    limit = server.adj.connection_limit
    idle = [connect(port) for _ in range(1000)]
    slow = [connect(port) for _ in range(300)]
    for sock in slow:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n")
    try:
        for _ in range(5):
            page_answers(port)
            for sock in slow[:50]:
                try:
                    sock.send(b"X-a: b\r\n")
                except OSError:
                    pass
        _, health = get_json(f"http://127.0.0.1:{port}/healthz")
        connections = health["connections"]
        assert connections["limit"] == limit == 20 + 8 + 100
        assert connections["evicted"] >= 1300 - limit, "the oldest quiet connections made room"
        assert connections["refused"] == 0, "nobody was refused while quiet connections could go"
    finally:
        for sock in idle + slow:
            sock.close()


def test_idle_connections_and_unfinished_requests_are_dropped(guarded):
    port = guarded(idle_timeout=1.0, request_timeout=1.5).port
    idle = connect(port)
    slow = connect(port)
    slow.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n")
    used = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    used.request("GET", "/healthz")
    response = used.getresponse()
    assert response.status == 200 and not response.will_close
    response.read()
    keep_alive = used.sock
    slow.settimeout(0.2)
    deadline = time.monotonic() + 10
    closed = False
    while not closed and time.monotonic() < deadline:
        try:
            slow.sendall(b"X-still: coming\r\n")  # activity does not put off the request's deadline
            closed = slow.recv(1) == b""
        except TimeoutError:
            pass
        except OSError:
            closed = True
    assert closed, "a request that never finished was kept open"
    for sock in (idle, keep_alive):
        sock.settimeout(10)
    # Each is closed by the server: recv sees the end of the stream.
    assert idle.recv(1) == b"" and keep_alive.recv(1) == b""
    health = get_json(f"http://127.0.0.1:{port}/healthz")[1]["connections"]
    assert health["idle_closed"] >= 2 and health["timed_out"] == 1
    for sock in (idle, slow, keep_alive):
        sock.close()


def test_when_every_connection_is_busy_a_new_one_gets_503_at_once(guarded):
    # Streams through WSGI keep their connection busy; with room for three, the fourth is refused.
    served = guarded(max_viewers=20, threads=8, handoff=False)
    app, server, port = served.app, served.server, served.port
    server.adj.connection_limit = 3
    viewers = [MjpegReader(f"http://127.0.0.1:{port}/video_feed/cam") for _ in range(3)]
    try:
        for viewer in viewers:
            viewer.read(1)
        sock = connect(port)
        sock.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        answer = b"".join(iter(lambda: sock.recv(65536), b""))
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 503") and b"Connection: close" in head and b"Retry-After: 5" in head
        assert json.loads(body)["status"] == 503
        assert runtime_of(app).connections.refused == 1
    finally:
        for viewer in viewers:
            viewer.close()


def test_streams_past_the_viewer_limit_get_503_and_their_connection_closed(guarded):
    port = guarded(max_viewers=5).port
    viewers = [MjpegReader(f"http://127.0.0.1:{port}/video_feed/cam") for _ in range(5)]
    try:
        for viewer in viewers:
            assert viewer.status == 200
        for _ in range(20):
            sock = connect(port)
            sock.sendall(b"GET /video_feed/cam HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            answer = b"".join(iter(lambda s=sock: s.recv(65536), b""))  # the server closes it
            assert answer.startswith(b"HTTP/1.1 503") and b"Connection: close" in answer
            sock.close()
        _, health = get_json(f"http://127.0.0.1:{port}/healthz")
        assert health["streams_refused"] == 20 and health["streams"] == 5
    finally:
        for viewer in viewers:
            viewer.close()


def read_until_closed(sock: socket.socket) -> bytes:
    return b"".join(iter(lambda: sock.recv(65536), b""))


def exchange(port: int, request: bytes) -> bytes:
    """Send a raw request on a new connection; everything the server sends before it closes."""
    with connect(port) as sock:
        sock.sendall(request)
        return read_until_closed(sock)


def assert_413_json(answer: bytes) -> None:
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b"Content-Type: application/json" in head and json.loads(body)["status"] == 413


def test_a_body_declared_too_large_is_refused_with_413_json_before_it_is_sent(guarded):
    port = guarded().port
    assert_413_json(exchange(port, b"POST /api/cameras HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1000000000\r\n\r\n"))


def test_a_chunked_body_is_refused_with_413_json_once_it_passes_64_kb(guarded):
    port = guarded().port
    chunk = b"4000\r\n" + b"x" * 0x4000 + b"\r\n"
    # Four chunks pass 64 KB; the server answers without waiting for the rest.
    assert_413_json(exchange(port, b"POST /api/cameras HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                             + chunk * 4))


def test_a_small_body_gets_the_usual_answer(guarded):
    port = guarded().port
    answer = exchange(port, b"POST /api/cameras HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 5\r\nConnection: close\r\n\r\n"
                      b"hello")
    assert answer.startswith(b"HTTP/1.1 405")


def test_a_viewer_closed_before_its_feed_is_attached_leaves_no_ghost():
    # The race seen with clients that hang up straight after the request:
    # the sender closed the viewer before the route attached its feed.
    camera = CountingCamera("ghost")
    sender = StreamSender()
    left, right = socket.socketpair()
    viewer = SocketViewer(left, b"", sender)
    feed = viewer.add_feed(camera.broadcaster)
    viewer.close()
    camera.attach(feed)
    assert camera.status()["viewers"] == 0 and not camera.running
    sender.stop()
    right.close()
    left.close()


def test_clients_that_leave_at_once_leave_no_viewers_behind(guarded):
    served = guarded(max_viewers=400, cameras=5)
    app, port = served.app, served.port
    cameras = list(runtime_of(app).cameras.values())
    for round_ in range(300):
        sock = connect(port)
        path = "/video_feed/cam" if round_ % 2 else "/streams"
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
        if round_ % 3 == 0:
            sock.recv(10)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        sock.close()
    assert wait_until(lambda: all(c.status()["viewers"] == 0 for c in cameras), 10), [c.status() for c in cameras]
    assert wait_until(lambda: runtime_of(app).slots.used == 0, 10)
    # With nobody watching, every camera is released after its idle timeout (1 s here).
    assert wait_until(lambda: all(c.state == "idle" for c in cameras), 10), [c.state for c in cameras]


class BrokenAttachCamera(PatternCamera):
    """A camera whose viewers cannot be attached: something raising after the socket was taken."""

    def attach(self, subscriber) -> None:
        raise RuntimeError("cannot attach")


@pytest.mark.parametrize("handoff", [True, False])
def test_a_stream_that_fails_to_start_gives_its_slot_back(guarded, handoff):
    camera = BrokenAttachCamera("cam", fps=10, width=160)
    served = guarded(max_viewers=3, handoff=handoff, camera=camera)
    app, port = served.app, served.port
    if not handoff:
        camera.subscribe = camera.attach  # the WSGI path subscribes instead of attaching
    for _ in range(10):
        sock = connect(port)
        sock.settimeout(10)
        sock.sendall(b"GET /video_feed/cam HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        try:
            while sock.recv(65536):
                pass
        except OSError:
            pass
        sock.close()
        assert wait_until(lambda: runtime_of(app).slots.used == 0, 5), "the slot leaked"
    assert runtime_of(app).slots.refused == 0
