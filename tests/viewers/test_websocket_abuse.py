"""What an attacker's WebSocket client can do to the others: nothing. Raw sockets send what no library would.

Every test keeps bystanders (an MJPEG viewer, an ``/events`` reader, another
WebSocket) watching while one client misbehaves, and checks they go on and
every slot is given back.
"""

import contextlib
import json
import selectors
import socket
import struct

import pytest
import websocket
from wsproto.frame_protocol import CloseReason, Opcode

from camera import PatternCamera
from camera.events import EventLog
from camera.viewers import websocket as ws_module
from camera.viewers.sender import StreamSender
from tests.conftest import Servers
from tests.helpers import MjpegReader, decode, wait_until
from tests.viewers.test_websocket import RawClient, make_site, next_binary, ws_url
from webapp.runtime.registry import runtime_of


class Attacker(RawClient):
    """A raw WebSocket client that reads what the server answers."""

    def next_error(self) -> str:
        """The next ``{"error": ...}`` the server answers with, past frames and the camera's events."""
        while True:
            opcode, payload = self.next_frame()
            if opcode == Opcode.TEXT and set(message := json.loads(payload)) == {"error"}:
                return message["error"]

    def until_close(self) -> tuple[dict[int, int], int]:
        """Read to the server's close frame: how many frames of each opcode came before it, and its code."""
        counts: dict[int, int] = {}
        while True:
            opcode, payload = self.next_frame()
            if opcode == Opcode.CLOSE:
                return counts, struct.unpack("!H", payload[:2])[0]
            counts[opcode] = counts.get(opcode, 0) + 1


class Bystanders:
    """Viewers of the ``plain`` camera that must not notice an attacker: MJPEG, /events and a WebSocket."""

    def __init__(self, base: str) -> None:
        self.mjpeg = MjpegReader(base + "/video_feed/plain")
        self.ws = websocket.create_connection(ws_url(base, "plain"), timeout=10)
        self.events = socket.create_connection(("127.0.0.1", int(base.rsplit(":", 1)[1])), timeout=10)
        self.events.sendall(b"GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert self.events.recv(4096).startswith(b"HTTP/1.1 200")

    def still_served(self) -> None:
        assert all(decode(frame).shape == (240, 320, 3) for frame in self.mjpeg.read(5)), "MJPEG goes on"
        for _ in range(5):
            assert decode(next_binary(self.ws)).shape == (240, 320, 3), "the other WebSocket goes on"

    def close(self) -> None:
        self.mjpeg.close()
        self.ws.close()
        self.events.close()


@pytest.fixture
def served():
    """The WebSocket tests' site on camstream's own server (with socket handoff)."""
    with Servers() as servers:
        app = make_site()
        yield app, servers.start(app)


def not_reading(app, base: str) -> Attacker:
    """A client of ``plain`` that reads nothing, once the server sees its socket full."""
    client = Attacker(base, "plain")
    client.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    assert wait_until(lambda: runtime_of(app).sender.backlog >= 1, 30), "its socket fills while it reads nothing"
    return client


def sender_alive(app) -> bool:
    thread = runtime_of(app).sender._thread
    return thread is not None and thread.is_alive()


def test_deeply_nested_json_is_answered_as_an_error_and_stops_nothing(served):
    app, base = served
    bystanders = Bystanders(base)
    client = Attacker(base, "plain")
    try:
        client.sock.sendall(client.frame(Opcode.TEXT, b"[" * 30000 + b"]" * 30000))
        assert client.next_error() == "the message is nested too deeply to be a command"
        client.sock.sendall(client.frame(Opcode.TEXT, json.dumps({"fps": 10**400}).encode()))
        assert "fps must be a number" in client.next_error(), "an int too large for a float too"
        bystanders.still_served()
        assert sender_alive(app)
        assert runtime_of(app).sender.viewer_errors == 0, "answered by the checks, not caught as a crash"
    finally:
        client.close()
        bystanders.close()
    assert wait_until(lambda: runtime_of(app).slots.used == 0, 10), "every slot is given back"


@pytest.mark.slow
def test_a_frame_after_a_close_from_a_client_that_stopped_reading_stops_nothing(served):
    app, base = served
    bystanders = Bystanders(base)
    client = not_reading(app, base)
    sender = runtime_of(app).sender
    try:
        client.sock.sendall(client.frame(Opcode.CLOSE, struct.pack("!H", 1000) + b"bye"))
        viewer = next(v for v in list(sender._viewers) if isinstance(v, ws_module.WebSocketViewer) and v.full)
        wait_until(lambda: viewer._ending, 2)  # today's server reads the close at once; this one waits
        client.sock.sendall(client.frame(Opcode.TEXT, b'{"fps": 5}'))
        bystanders.still_served()
        assert sender_alive(app)
        _, code = client.until_close()
        assert code == CloseReason.NORMAL_CLOSURE, "the close is answered once the client reads again"
    finally:
        client.close()
        bystanders.close()
    assert wait_until(lambda: runtime_of(app).slots.used == 0, 10)


@pytest.mark.parametrize("message", [
    pytest.param(lambda c: c.frame(Opcode.PING, b""), id="pings"),
    pytest.param(lambda c: c.frame(Opcode.TEXT, b"not json"), id="invalid-text"),
    pytest.param(lambda c: c.frame(Opcode.PONG, b"x"), id="pongs"),
])
def test_a_flood_of_messages_is_closed_with_1008_after_a_bounded_number_of_answers(served, message):
    app, base = served
    bystanders = Bystanders(base)
    client = Attacker(base, "plain")
    try:
        client.sock.sendall(message(client) * 5000)
        counts, code = client.until_close()
        assert code == CloseReason.POLICY_VIOLATION
        answers = counts.get(Opcode.PONG, 0) + counts.get(Opcode.TEXT, 0)
        assert answers <= ws_module.MESSAGE_BURST + 50, f"{answers} answers to 5000 messages"
        bystanders.still_served()
    finally:
        client.close()
        bystanders.close()
    assert wait_until(lambda: runtime_of(app).slots.used == 0, 10)


@pytest.mark.slow
def test_a_client_that_sends_but_never_reads_cannot_make_the_server_read_without_end(served):
    app, base = served
    bystanders = Bystanders(base)
    client = not_reading(app, base)
    client.sock.settimeout(3)
    ping = client.frame(Opcode.PING, b"p" * 100)
    chunk, pushed = ping * 1000, 0
    try:
        with pytest.raises(OSError):  # a timeout: the server stopped reading; or a reset: it hung up
            for _ in range(200):
                client.sock.sendall(chunk)
                pushed += len(chunk)
        assert pushed < 100 * len(chunk), f"the server read {pushed} bytes of pings from a client that reads none"
        bystanders.still_served()
        assert sender_alive(app)
    finally:
        client.close()
        bystanders.close()
    assert wait_until(lambda: runtime_of(app).slots.used == 0, 10)


def test_replies_owed_to_a_client_that_does_not_read_are_bounded(monkeypatch):
    """Within the message rate, a client whose socket is full cannot make the server queue answers."""
    monkeypatch.setattr(ws_module, "MAX_OWED", 2000)
    server, peer = socket.socketpair()
    sender = StreamSender()
    viewer = ws_module.WebSocketViewer(server, b"HTTP/1.1 101 ...\r\n\r\n", sender,
                                       source=PatternCamera("plain"), overlay=None, log=EventLog())
    server.setblocking(False)
    sender.selector.register(server, selectors.EVENT_READ, viewer)
    with contextlib.suppress(BlockingIOError):
        while True:  # the client reads nothing: its socket fills up
            server.send(b"x" * 65536)
    try:
        peer.sendall(Attacker.frame(Opcode.PING, b"p" * 100))
        viewer.readable()
        assert not viewer.closed, "one pong owed is fine"
        peer.sendall(Attacker.frame(Opcode.PING, b"p" * 100) * 30)
        viewer.readable()
        assert viewer.closed, "3000 bytes of pongs owed to a client that reads nothing: it is dropped"
    finally:
        viewer.finish()
        peer.close()
