"""An RTSP server of the tests' own, on 127.0.0.1: it sends each H.264 frame only when the test says.

GStreamer's server streams on its own clock; this one lets a test send
frame ``i`` and see where it went before frame ``i + 1`` exists, so "no
frame waits for the next one" is a matter of order, not of time. It asks
for Digest sign-in when given a user, and can send what a camera never
should.
"""

from __future__ import annotations

import base64
import hashlib
import io
import socket
import struct
import threading

import av
import numpy as np

from camera.media.h264 import nal_units

MAX_PAYLOAD = 1000  # RTP payload bytes: larger NAL units go as FU-A


def h264_frames(count: int, width: int = 320, height: int = 240) -> list[bytes]:
    """``count`` Annex B access units of a moving picture, the first a keyframe with its SPS and PPS."""
    out = io.BytesIO()
    container = av.open(out, "w", format="h264")
    stream = container.add_stream("libx264", rate=15)
    stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
    stream.options = {"tune": "zerolatency", "preset": "ultrafast", "profile": "baseline", "g": "600"}
    frames = []
    for index in range(count):
        picture = np.zeros((height, width, 3), np.uint8)
        picture[:, (index * 13) % width:] = (40 * index % 255, 120, 200)
        frame = av.VideoFrame.from_ndarray(picture, format="bgr24")
        frame.pts = index
        frames += [bytes(packet) for packet in stream.encode(frame)]
    frames += [bytes(packet) for packet in stream.encode()]
    container.close()
    return frames[:count]


def rtp_packets(frame: bytes, sequence: int, timestamp: int, payload_type: int = 96) -> list[bytes]:
    """One access unit as RTP (RFC 6184): small NAL units alone, large ones as FU-A; the marker on the last."""
    payloads = []
    for unit in nal_units(frame):
        if len(unit) <= MAX_PAYLOAD:
            payloads.append(unit)
            continue
        indicator = (unit[0] & 0xE0) | 28
        body = unit[1:]
        pieces = [body[at:at + MAX_PAYLOAD] for at in range(0, len(body), MAX_PAYLOAD)]
        for index, piece in enumerate(pieces):
            header = (unit[0] & 0x1F) | (0x80 if index == 0 else 0) | (0x40 if index == len(pieces) - 1 else 0)
            payloads.append(bytes([indicator, header]) + piece)
    packets = []
    for index, payload in enumerate(payloads):
        marker = 0x80 if index == len(payloads) - 1 else 0
        packets.append(struct.pack(">BBHII", 0x80, marker | payload_type, (sequence + index) & 0xFFFF, timestamp,
                                   0x1234) + payload)
    return packets


def interleaved(channel: int, packet: bytes) -> bytes:
    return struct.pack(">cBH", b"$", channel, len(packet)) + packet


class FakeRtspServer:
    """One client at a time; H.264 on track 0 (``sprop-parameter-sets`` from ``frames[0]``)."""

    REALM, NONCE = "camera", "5f2b7e1a"

    def __init__(self, frames: list[bytes], *, user: str | None = None, password: str | None = None,
                 session_seconds: int = 60) -> None:
        self.frames = frames
        self.session_seconds = session_seconds
        self.user, self.password = user, password
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.methods: list[str] = []
        self.refused = 0
        self.played = threading.Event()
        self._connection: socket.socket | None = None
        self._lock = threading.Lock()
        self._sequence = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def url(self, user: str | None = None, password: str | None = None) -> str:
        login = f"{user}:{password}@" if user is not None else ""
        return f"rtsp://{login}127.0.0.1:{self.port}/cam"

    def send_frame(self, index: int, at: int | None = None) -> None:
        """Frame ``index`` as RTP, at 15 frames a second of RTP time (or as frame ``at`` of that time)."""
        packets = rtp_packets(self.frames[index], self._sequence, 6000 * (index if at is None else at) + 12345)
        self._sequence += len(packets)
        self.send(b"".join(interleaved(0, packet) for packet in packets))

    def send(self, data: bytes) -> None:
        with self._lock:
            assert self._connection is not None
            self._connection.sendall(data)

    def close(self) -> None:
        self.listener.close()
        if self._connection is not None:
            self._connection.close()

    def _serve(self) -> None:
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            self.played.clear()
            self._connection = connection
            try:
                self._answer(connection)
            except OSError:
                pass

    def _answer(self, connection: socket.socket) -> None:
        buffer = b""
        while True:
            data = connection.recv(65536)
            if not data:
                return
            buffer += data
            while b"\r\n\r\n" in buffer:
                head, buffer = buffer.split(b"\r\n\r\n", 1)
                self._request(head.decode("latin-1"))

    def _request(self, head: str) -> None:
        first, *lines = head.split("\r\n")
        method, url, _ = first.split(" ")
        headers = {name.strip().lower(): value.strip() for name, _, value in (line.partition(":") for line in lines)}
        self.methods.append(method)
        cseq = headers.get("cseq", "0")
        if method != "OPTIONS" and self.user is not None and not self._signed(method, url, headers):
            self.refused += 1
            self._reply(cseq, "401 Unauthorized",
                        [f'WWW-Authenticate: Digest realm="{self.REALM}", nonce="{self.NONCE}"'])
            return
        if method == "DESCRIBE":
            sets = ",".join(base64.b64encode(unit).decode() for unit in nal_units(self.frames[0])
                            if unit[0] & 0x1F in (7, 8))
            sdp = ("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=cam\r\nt=0 0\r\nm=video 0 RTP/AVP 96\r\n"
                   "a=rtpmap:96 H264/90000\r\n"
                   f"a=fmtp:96 packetization-mode=1;sprop-parameter-sets={sets}\r\na=control:track1\r\n").encode()
            self._reply(cseq, "200 OK", [f"Content-Base: {url}/", "Content-Type: application/sdp"], sdp)
        elif method == "SETUP":
            self._reply(cseq, "200 OK", [f"Session: 77;timeout={self.session_seconds}",
                                         f"Transport: {headers.get('transport', '')}"])
        elif method == "PLAY":
            self._reply(cseq, "200 OK", ["Session: 77"])
            self.played.set()
        else:
            self._reply(cseq, "200 OK", ["Public: OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN, GET_PARAMETER"])

    def _signed(self, method: str, url: str, headers: dict[str, str]) -> bool:
        given = headers.get("authorization", "")
        if not given.startswith("Digest "):
            return False
        fields = dict(part.strip().split("=", 1) for part in given[7:].split(","))
        fields = {name: value.strip('"') for name, value in fields.items()}
        first = hashlib.md5(f"{self.user}:{self.REALM}:{self.password}".encode()).hexdigest()
        second = hashlib.md5(f"{method}:{fields.get('uri')}".encode()).hexdigest()
        return fields.get("response") == hashlib.md5(f"{first}:{self.NONCE}:{second}".encode()).hexdigest()

    def _reply(self, cseq: str, status: str, headers: list[str], body: bytes = b"") -> None:
        text = "\r\n".join([f"RTSP/1.0 {status}", f"CSeq: {cseq}", *headers, f"Content-Length: {len(body)}"])
        self.send(text.encode() + b"\r\n\r\n" + body)
