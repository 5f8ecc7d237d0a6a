"""/ws/<name>: JPEG frames and JSON events over a real WebSocket, what the client may ask, and bad input."""

import itertools
import json
import os
import socket
import struct
from urllib.parse import urlsplit

import pytest
import websocket
from wsproto.frame_protocol import CloseReason, Opcode

from camera import PatternCamera
from tests.conftest import Servers
from tests.detect.test_detect_overlay import boxed
from tests.helpers import decode, get, wait_until
from tests.sources import SceneCamera
from webapp import create_app
from webapp.runtime.registry import runtime_of

KEY = "dGhlIHNhbXBsZSBub25jZQ=="


def make_site():
    return create_app({"CAMERAS": {"scene": SceneCamera(), "plain": PatternCamera("plain", fps=10, width=320)},
                       "DETECT": {"scene": "tests.detectors:find_squares"}, "DETECT_FPS": 10})


@pytest.fixture
def site(serve):
    app = make_site()
    return app, serve(app)


def ws_url(base: str, name: str) -> str:
    return base.replace("http://", "ws://") + f"/ws/{name}"


def next_binary(ws: websocket.WebSocket) -> bytes:
    while True:
        opcode, data = ws.recv_data()
        if opcode == websocket.ABNF.OPCODE_BINARY:
            return data


def next_text(ws: websocket.WebSocket) -> dict:
    while True:
        opcode, data = ws.recv_data()
        if opcode == websocket.ABNF.OPCODE_TEXT:
            return json.loads(data)


def test_frames_and_events_over_one_websocket(site):
    app, base = site
    if not app.config["SOCKET_HANDOFF"]:
        status, _headers, _body = get(base + "/ws/scene")
        assert status == 400, "a plain GET is no WebSocket handshake"
        ws_status = raw_handshake(base, "scene")
        assert ws_status.startswith(b"HTTP/1.1 501") and b"socket handoff" in ws_status
        return
    ws = websocket.create_connection(ws_url(base, "scene"), timeout=10)
    try:
        assert decode(next_binary(ws)).shape == (240, 320, 3)
        event = next_text(ws)
        while event.get("event") != "detection":
            event = next_text(ws)
        assert event["camera"] == "scene" and event["detections"][0]["label"] == "square"
        assert wait_until(lambda: runtime_of(app).cameras["scene"].status()["viewers"] == 1, 5), \
            "a WebSocket client is a viewer of its camera"
        assert runtime_of(app).slots.used == 1
    finally:
        ws.close()
    assert wait_until(lambda: runtime_of(app).slots.used == 0, 5)


def raw_handshake(base: str, name: str, headers: dict[str, str] | None = None) -> bytes:
    """Send an upgrade request over a raw socket; the server's first answer."""
    parts = urlsplit(base)
    headers = {"Host": parts.netloc, "Upgrade": "websocket", "Connection": "Upgrade",
               "Sec-WebSocket-Key": KEY, "Sec-WebSocket-Version": "13", **(headers or {})}
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        lines = [f"GET /ws/{name} HTTP/1.1", *(f"{k}: {v}" for k, v in headers.items() if v is not None), "", ""]
        sock.sendall("\r\n".join(lines).encode())
        data = b""
        while not answered(data):
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
        return data


def answered(data: bytes) -> bool:
    """Whether ``data`` holds a whole answer: its head, and its body if it says it has one."""
    head, found, body = data.partition(b"\r\n\r\n")
    if not found:
        return False
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(body) >= int(value)
    return True


@pytest.fixture
def handed_off():
    """The site on camstream's own server with socket handoff, which WebSockets need."""
    with Servers() as servers:
        app = make_site()
        yield app, servers.start(app)


def test_the_client_asks_for_fewer_frames_and_for_the_overlay(handed_off):
    app, base = handed_off
    camera = runtime_of(app).cameras["scene"]
    ws = websocket.create_connection(ws_url(base, "scene"), timeout=10)
    try:
        next_binary(ws)
        ws.send(json.dumps({"fps": 2}))
        next_binary(ws)
        counts = []
        for _ in range(4):
            next_binary(ws)
            counts.append(camera.status()["frames_captured"])
        gaps = [b - a for a, b in itertools.pairwise(counts)]
        assert min(gaps) >= 8, f"2 fps from a 30 fps camera: frames captured between two sent {gaps}"
        ws.send(json.dumps({"fps": 0, "overlay": True}))
        frames = [decode(next_binary(ws)) for _ in range(15)]
        assert sum(boxed(image) for image in frames[3:]) >= 10, "the frames come with the boxes drawn"
        ws.send(json.dumps({"overlay": "please"}))
        assert next_text_error(ws) == "overlay must be true or false"
        ws.send("not json")
        assert "Expecting value" in next_text_error(ws)
    finally:
        ws.close()


def next_text_error(ws: websocket.WebSocket) -> str:
    while True:
        event = next_text(ws)
        if "error" in event:
            return event["error"]


def test_ping_pong_and_a_clean_close(handed_off):
    _, base = handed_off
    ws = websocket.create_connection(ws_url(base, "plain"), timeout=10)
    ws.ping(b"are you there")
    while True:
        frame = ws.recv_data_frame(control_frame=True)[1]
        if frame.opcode == websocket.ABNF.OPCODE_PONG:
            assert frame.data == b"are you there"
            break
    ws.send_close(status=1000, reason=b"bye")
    while True:
        frame = ws.recv_data_frame(control_frame=True)[1]
        if frame.opcode == websocket.ABNF.OPCODE_CLOSE:
            assert struct.unpack("!H", frame.data[:2])[0] == 1000
            break
    assert ws.sock.recv(1) == b"", "the server closes the connection after the closing handshake"
    ws.shutdown()


def test_an_overlay_for_a_camera_without_a_detector_is_refused_politely(handed_off):
    _, base = handed_off
    ws = websocket.create_connection(ws_url(base, "plain"), timeout=10)
    try:
        ws.send(json.dumps({"overlay": True}))
        assert next_text_error(ws) == "camera 'plain' has no detector to draw"
        assert decode(next_binary(ws)).shape[1] == 320, "and the frames go on"
    finally:
        ws.close()


def client_frame(opcode: int, payload: bytes, fin: bool = True, rsv: int = 0, length: int | None = None,
                 mask: bool = True) -> bytes:
    """One frame as a client sends it, any of whose fields may lie (``length`` other than the payload's)."""
    size = len(payload) if length is None else length
    head = bytes([(0x80 if fin else 0) | (rsv << 4) | opcode])
    bit = 0x80 if mask else 0
    if size < 126:
        head += bytes([bit | size])
    elif size < 65536:
        head += bytes([bit | 126]) + struct.pack("!H", size)
    else:
        head += bytes([bit | 127]) + struct.pack("!Q", size)
    if not mask:
        return head + payload
    key = os.urandom(4)
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


class RawClient:
    """A WebSocket connection over a raw socket, to send what no proper client would."""

    def __init__(self, base: str, name: str) -> None:
        parts = urlsplit(base)
        self.sock = socket.create_connection((parts.hostname, parts.port), timeout=10)
        self.sock.sendall(f"GET /ws/{name} HTTP/1.1\r\nHost: {parts.netloc}\r\nUpgrade: websocket\r\n"
                          f"Connection: Upgrade\r\nSec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n"
                          .encode())
        self.buffer = b""
        while b"\r\n\r\n" not in self.buffer:
            self.buffer += self.sock.recv(4096)
        head, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101 ")
        assert b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" in head

    @staticmethod
    def frame(opcode: int, payload: bytes, masked: bool = True) -> bytes:
        return client_frame(opcode, payload, mask=masked)

    def next_frame(self) -> tuple[int, bytes]:
        """The server's next frame: its opcode and payload (the server's frames are never masked)."""
        while len(self.buffer) < 2:
            self.buffer += self._recv()
        length = self.buffer[1] & 0x7F
        start = 2 + {126: 2, 127: 8}.get(length, 0)
        while len(self.buffer) < start:
            self.buffer += self._recv()
        if length == 126:
            length = struct.unpack("!H", self.buffer[2:4])[0]
        elif length == 127:
            length = struct.unpack("!Q", self.buffer[2:10])[0]
        while len(self.buffer) < start + length:
            self.buffer += self._recv()
        found = (self.buffer[0] & 0x0F, self.buffer[start:start + length])
        self.buffer = self.buffer[start + length:]
        return found

    def close_code(self) -> int:
        """Read server frames until its close frame; its code, after which the server hangs up."""
        while True:
            opcode, payload = self.next_frame()
            if opcode == Opcode.CLOSE:
                assert self._rest() == b"", "nothing after the close frame, then the connection ends"
                return struct.unpack("!H", payload[:2])[0]

    def _recv(self) -> bytes:
        data = self.sock.recv(65536)
        assert data, "the connection ended without a close frame"
        return data

    def _rest(self) -> bytes:
        rest = self.buffer
        while chunk := self.sock.recv(65536):
            rest += chunk
        return rest

    def close(self) -> None:
        self.sock.close()


@pytest.mark.parametrize("send, code", [
    (lambda c: c.frame(Opcode.TEXT, b'{"fps": 5}', masked=False), CloseReason.PROTOCOL_ERROR),
    (lambda c: c.frame(Opcode.TEXT, b"x" * 100_000), CloseReason.MESSAGE_TOO_BIG),
    (lambda c: bytes([0x8F, 0x85]) + os.urandom(40), CloseReason.PROTOCOL_ERROR),
    (lambda c: c.frame(Opcode.TEXT, b"\xff\xfe not utf-8"), CloseReason.INVALID_FRAME_PAYLOAD_DATA),
    (lambda c: c.frame(Opcode.BINARY, b"a picture?"), CloseReason.UNSUPPORTED_DATA),
])
def test_bad_input_closes_that_connection_with_the_right_code_and_nothing_else(handed_off, send, code):
    app, base = handed_off
    bystander = websocket.create_connection(ws_url(base, "plain"), timeout=10)
    client = RawClient(base, "plain")
    try:
        client.sock.sendall(send(client))
        assert client.close_code() == code
        assert decode(next_binary(bystander)).shape[1] == 320, "other clients go on"
    finally:
        client.close()
        bystander.close()
    assert wait_until(lambda: runtime_of(app).slots.used == 0, 5)


@pytest.mark.parametrize("headers, status, message", [
    ({"Sec-WebSocket-Key": None}, b"400", b"Sec-WebSocket-Key must be 16 bytes in base64"),
    ({"Sec-WebSocket-Key": "c2hvcnQ="}, b"400", b"Sec-WebSocket-Key must be 16 bytes in base64"),
    ({"Sec-WebSocket-Version": "8"}, b"426", b"only WebSocket version 13"),
    ({"Upgrade": "h2c"}, b"400", b"a WebSocket needs 'Upgrade: websocket'"),
])
def test_a_bad_handshake_is_a_json_error(handed_off, headers, status, message):
    _, base = handed_off
    answer = raw_handshake(base, "plain", headers)
    assert answer.startswith(b"HTTP/1.1 " + status) and message in answer
    assert b"application/json" in answer
    if status == b"426":
        assert b"sec-websocket-version: 13" in answer.lower()
