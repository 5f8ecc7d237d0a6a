"""camstream's own RTSP client: each frame reaches an /mse viewer before the camera has sent the next one.

The server here is the tests' own (tests/passthrough/fake_rtsp.py), which
sends a frame only when told: if anything in camstream waited for the
next packet to let a frame go, the frame would never come.
"""

from __future__ import annotations

import json
import socket
import struct
import threading

import pytest
import websocket

from camera.errors import SourceError
from camera.media import boxes
from camera.sources.rtsp import MAX_BODY_BYTES, MAX_HEADER_BYTES, RtspSession
from tests.helpers import get_json, wait_until
from tests.passthrough.fake_rtsp import FakeRtspServer, h264_frames

FRAMES = 8


@pytest.fixture(scope="module")
def frames() -> list[bytes]:
    return h264_frames(FRAMES)


def mse(base: str, name: str) -> websocket.WebSocket:
    return websocket.create_connection(base.replace("http", "ws") + f"/mse/{name}", timeout=20)


def largest_slice(access_unit: bytes) -> bytes:
    units = [unit.rstrip(b"\0") for unit in access_unit.split(b"\0\0\1")]
    return max((unit for unit in units if unit and unit[0] & 0x1F in (1, 5)), key=len)


def samples_of(fragment: bytes) -> bytes:
    found, _ = boxes.split_boxes(fragment)
    return next(box[8:] for kind, box in found if kind == b"mdat")


def test_each_frame_reaches_an_mse_viewer_before_the_camera_sends_the_next(serve_app, frames):
    server = FakeRtspServer(frames, user="admin", password="s3cret-pw")
    try:
        site = serve_app({"CAMERAS": {"cam": server.url("admin", "s3cret-pw")}, "IDLE_TIMEOUT": 30})
        ws = mse(site, "cam")
        try:
            assert server.played.wait(20), server.methods
            for index in range(FRAMES):
                server.send_frame(index)
                if index == 0:
                    header = json.loads(ws.recv())
                    assert header["type"] == "mse" and header["codecs"].startswith('video/mp4; codecs="avc1.')
                    assert ws.recv()[4:8] == b"ftyp"
                # The frame's own bytes, in the fragment that comes before frame index + 1 is sent at all.
                fragment = ws.recv()
                assert largest_slice(frames[index]) in samples_of(fragment), index
            status = get_json(f"{site}/api/cameras/cam")[1]
            assert status["state"] == "streaming" and status["width"] == 320 and status["video"]["fps"] == 15
            assert status["video"]["reader"] == "camstream"
            assert "s3cret-pw" not in json.dumps(status)
        finally:
            ws.close()
        assert server.refused >= 1, "the server asked for Digest sign-in, and the camera signed in"
    finally:
        server.close()


def test_the_session_is_kept_alive_while_frames_come(serve_app, frames):
    """A camera drops a session nothing was asked of for its timeout, however much RTP flows (RFC 2326, 12.37)."""
    server = FakeRtspServer(frames, session_seconds=2)
    stop = threading.Event()
    try:
        site = serve_app({"CAMERAS": {"cam": server.url()}, "IDLE_TIMEOUT": 30})
        ws = mse(site, "cam")
        try:
            assert server.played.wait(20)

            def camera() -> None:
                for at in range(100_000):
                    if stop.wait(0.05):
                        return
                    server.send_frame(0 if at == 0 else 1 + at % (FRAMES - 1), at)

            threading.Thread(target=camera, daemon=True).start()
            assert wait_until(lambda: "GET_PARAMETER" in server.methods, 20), server.methods
            assert server.methods.count("PLAY") == 1, "the same session all along"
        finally:
            ws.close()
    finally:
        stop.set()
        server.close()


def test_a_wrong_password_says_so_without_the_password(serve_app, frames):
    server = FakeRtspServer(frames, user="admin", password="right")
    try:
        site = serve_app({"CAMERAS": {"cam": server.url("admin", "wrong-one")}, "IDLE_TIMEOUT": 30})
        ws = mse(site, "cam")
        try:
            assert wait_until(lambda: "password" in (get_json(f"{site}/api/cameras/cam")[1]["last_error"] or ""), 20)
            status = get_json(f"{site}/api/cameras/cam")[1]
            assert "wrong-one" not in json.dumps(status) and status["state"] in ("reconnecting", "starting")
            assert not server.played.is_set()
        finally:
            ws.close()
    finally:
        server.close()


class _Hostile:
    """A server that answers anything with ``answer`` (then keeps the connection open)."""

    def __init__(self, answer: bytes) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.answer = answer
        self.sent = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        connection, _ = self.listener.accept()
        try:
            connection.recv(65536)
            connection.sendall(self.answer)
        except OSError:
            pass
        self.sent.set()
        self.connection = connection

    def close(self) -> None:
        self.listener.close()


@pytest.mark.parametrize("answer, said", [
    (b"RTSP/1.0 200 OK\r\nCSeq: 1\r\nX-Long: " + b"a" * (MAX_HEADER_BYTES + 10), "header longer"),
    (f"RTSP/1.0 200 OK\r\nCSeq: 1\r\nContent-Length: {MAX_BODY_BYTES + 1}\r\n\r\n".encode(), "body of"),
    (b"RTSP/1.0 200 OK\r\nCSeq: 1\r\nContent-Length: 99999999999999999999\r\n\r\n", "body of"),
    (b"RTSP/1.0 abc\r\nCSeq: 1\r\n\r\n", "without a status"),
])
def test_what_a_hostile_server_answers_is_bounded_and_named(answer, said):
    server = _Hostile(answer)
    try:
        session = RtspSession(f"rtsp://127.0.0.1:{server.port}/x", "cam", open_timeout=5, read_timeout=5)
        with pytest.raises(SourceError, match=said):
            session.request("OPTIONS", session.target.url)
        assert len(session._buffer) <= MAX_HEADER_BYTES + 256 * 1024
        session.close()
    finally:
        server.close()


def test_interleaved_chunks_and_stray_bytes_between_them_are_read_in_order():
    chunks = [struct.pack(">cBH", b"$", channel, 3) + bytes([channel]) * 3 for channel in (0, 1, 2)]
    # A server's own request between chunks is answered 501 and skipped; garbage up to the next "$" is dropped.
    stream = chunks[0] + b"GET_PARAMETER rtsp://x RTSP/1.0\r\nCSeq: 9\r\n\r\n" + chunks[1] + b"\x07\x07" + chunks[2]
    server = _Hostile(stream)
    try:
        session = RtspSession(f"rtsp://127.0.0.1:{server.port}/x", "cam", open_timeout=5, read_timeout=5)
        session._send("OPTIONS", session.target.url)
        assert [session.read() for _ in range(3)] == [(0, b"\0\0\0"), (1, b"\1\1\1"), (2, b"\2\2\2")]
        session.close()
    finally:
        server.close()


def test_an_rtsp_camera_that_claims_a_giant_picture_is_refused_before_ffmpeg_sees_it(serve_app, frames):
    from tests.passthrough.test_h264 import giant_sps, rss_mb

    units = [unit for unit in frames[0].split(b"\0\0\0\1") if unit]
    giant = b"".join(b"\0\0\0\1" + (giant_sps(1000, 1000) if unit[0] & 0x1F == 7 else unit) for unit in units)
    server = FakeRtspServer([giant])
    try:
        site = serve_app({"CAMERAS": {"cam": server.url()}, "IDLE_TIMEOUT": 30})
        before = rss_mb()
        ws = mse(site, "cam")
        try:
            assert server.played.wait(20)
            server.send_frame(0)
            assert wait_until(lambda: "16000x16000" in (get_json(f"{site}/api/cameras/cam")[1]["last_error"] or ""),
                              20)
        finally:
            ws.close()
        assert rss_mb() - before < 500, "nothing was allocated for a 16000x16000 picture (1.1 GB decoded)"
    finally:
        server.close()
