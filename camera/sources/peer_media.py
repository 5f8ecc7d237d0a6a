"""A peer camera's own video relayed without decoding: one ``/mse`` WebSocket to the peer, fanned out at the hub.

A peer camstream that passes a camera's H.264 (or H.265) through sends it
on ``/mse/CAMERA`` as fMP4: a text header, the init segment, then a
fragment a frame (camera/viewers/mse.py). :class:`PeerMediaRelay` reads
that once, on a thread of its own, and hands the same init segment and
fragments to the hub camera's :class:`~camera.media.feed.MediaFeed`, so
every MSE viewer, HLS reader and WebRTC peer at the hub is served from one
connection to the peer, and nothing is decoded on either side. The relay
only reads: what the hub's viewers do with the fragments is the feed's
business, so a slow viewer never slows it.

Bounded like any upstream: a message over :data:`MAX_MESSAGE`, an init
segment that is not one, or nothing for :data:`READ_TIMEOUT` seconds ends
the relay with a reason that names no secret (the peer's credential rides
in a header or the query and is masked by the camera's redactor).
"""

from __future__ import annotations

import json
import logging
import socket
import ssl
import threading
from urllib.parse import urlsplit

from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Ping,
    RejectConnection,
    Request,
    TextMessage,
)

from ..errors import SourceError
from ..media.boxes import BoxError, Track, fragment_info, mime_type, split_boxes, tracks
from ..media.feed import MediaFeed
from ..media.muxer import Fragment
from ..redact import Redactor
from .relay import split_credentials

log = logging.getLogger("camstream.camera")

CONNECT_TIMEOUT = 4.0
# A peer camera sends a fragment a frame; this long without one and the peer (or its camera) is taken as gone.
READ_TIMEOUT = 10.0
# The largest message taken from the peer: one frame's fragment, or the init segment.
MAX_MESSAGE = 16 * 1024 * 1024
MAX_HEADER = 4096


class NotPassedThrough(SourceError):
    """The peer answered that this camera's video is not passed through (its ``/mse`` is 404): MJPEG only."""


def websocket_url(http_url: str) -> str:
    """``http(s)://`` as ``ws(s)://`` (the credential, if any, stays for :func:`split_credentials`)."""
    scheme, _, rest = http_url.partition("://")
    return ("wss" if scheme.lower() == "https" else "ws") + "://" + rest


class PeerMediaRelay:
    """One connection to a peer camera's ``/mse``, its fragments published into ``feed`` until :meth:`stop`.

    ``url`` is the peer's ``http(s)://[user:password@]host:port/mse/CAMERA[?token=...]``. :attr:`error` holds
    why the relay ended (a :class:`~camera.SourceError`), None while it runs or after a :meth:`stop`.
    """

    def __init__(self, name: str, url: str, feed: MediaFeed, redactor: Redactor) -> None:
        self.name = name
        self.feed = feed
        self._url = url
        self._redactor = redactor
        self._stopped = threading.Event()
        self._sock: socket.socket | None = None
        self._lock = threading.Lock()
        self.error: SourceError | None = None
        self.fragments = 0
        self.bytes = 0
        self._thread = threading.Thread(target=self._run, name=f"peer-media-{name}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def stop(self, timeout: float = 2.0) -> None:
        """Close the connection; the thread ends at once (its socket is shut down under it)."""
        self._stopped.set()
        with self._lock:
            sock = self._sock
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def _run(self) -> None:
        try:
            self._relay()
            if not self._stopped.is_set():
                self.error = SourceError("the peer closed its video stream")
        except SourceError as exc:
            if not self._stopped.is_set():
                self.error = exc
        except (OSError, ValueError, BoxError) as exc:
            if not self._stopped.is_set():
                self.error = SourceError(f"the peer's video stream failed: {self._redactor.redact(str(exc))}")
        finally:
            self.feed.end()
            with self._lock:
                sock, self._sock = self._sock, None
            if sock is not None:
                sock.close()

    def _connect(self) -> tuple[socket.socket, WSConnection]:
        bare, headers = split_credentials(websocket_url(self._url))
        parts = urlsplit(bare)
        secure = parts.scheme == "wss"
        host, port = parts.hostname or "", parts.port or (443 if secure else 80)
        try:
            sock = socket.create_connection((host, port), timeout=CONNECT_TIMEOUT)
        except OSError as exc:
            raise SourceError(f"could not reach the peer's video stream: {exc.strerror or exc}") from None
        with self._lock:
            if self._stopped.is_set():
                sock.close()
                raise SourceError("stopped")
            self._sock = sock
        if secure:
            sock = ssl.create_default_context().wrap_socket(sock, server_hostname=host)
            with self._lock:
                self._sock = sock
        sock.settimeout(READ_TIMEOUT)
        connection = WSConnection(ConnectionType.CLIENT)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        extra = [(key.lower().encode(), value.encode()) for key, value in headers.items()]
        extra.append((b"user-agent", b"camstream-hub"))
        sock.sendall(connection.send(Request(host=parts.netloc, target=target, extra_headers=extra)))
        return sock, connection

    def _relay(self) -> None:
        sock, connection = self._connect()
        reader = _Messages(sock, connection, self._stopped)
        track: Track | None = None
        expect_init = False
        for text, data in reader:
            if text:
                header = _header(data)
                expect_init = True
                log.debug("camera %s: the peer's video is %s", self.name, header.get("codecs"))
                continue
            if expect_init:
                track = _video_track(data)
                self.feed.begin(bytes(data), mime_type(bytes(data)))
                expect_init = False
                continue
            if track is None:
                raise SourceError("the peer sent a fragment before its init segment")
            self.feed.publish(_fragment(bytes(data), track))
            self.fragments += 1
            self.bytes += len(data)


class _Messages:
    """The peer's messages as ``(is_text, data)``: pings answered, a refusal or a close turned into errors."""

    def __init__(self, sock: socket.socket, connection: WSConnection, stopped: threading.Event) -> None:
        self._sock, self._connection, self._stopped = sock, connection, stopped
        self._accepted = False
        self._messages = 0

    def __iter__(self):  # type: ignore[no-untyped-def]
        parts: list[bytes | str] = []
        size = 0
        while not self._stopped.is_set():
            try:
                data = self._sock.recv(256 * 1024)
            except TimeoutError:
                raise SourceError(f"the peer sent no video for {READ_TIMEOUT:g} s") from None
            if not data:
                raise SourceError("the peer closed its video stream")
            self._connection.receive_data(data)
            for event in self._connection.events():
                if isinstance(event, AcceptConnection):
                    self._accepted = True
                elif isinstance(event, RejectConnection):
                    if event.status_code == 404:
                        raise NotPassedThrough("the peer does not pass this camera's video through")
                    raise SourceError(f"the peer answered its video stream with HTTP {event.status_code}")
                elif isinstance(event, Ping):
                    self._sock.sendall(self._connection.send(event.response()))
                elif isinstance(event, CloseConnection):
                    if not self._accepted:
                        raise SourceError("the peer refused its video stream")
                    if not self._messages:
                        # A close before any video: the peer's camera turned out not to pass it through (an
                        # HTTP camera there that sends MJPEG closes its MSE viewers once it finds out).
                        raise NotPassedThrough("the peer closed its video stream before any video: it is not "
                                               "passed through")
                    raise SourceError(f"the peer closed its video stream ({event.code})")
                elif isinstance(event, TextMessage | BytesMessage):
                    size += len(event.data)
                    if size > (MAX_HEADER if isinstance(event, TextMessage) else MAX_MESSAGE):
                        raise SourceError("the peer sent a video message over the size camstream takes")
                    parts.append(event.data)
                    if event.message_finished:
                        text = isinstance(event, TextMessage)
                        whole: str | bytes = "".join(parts) if text else b"".join(parts)  # type: ignore[arg-type]
                        parts, size = [], 0
                        self._messages += 1
                        yield text, whole


def _header(data: str | bytes) -> dict:
    try:
        header = json.loads(data)
    except ValueError:
        raise SourceError("the peer's video stream is not a camstream's (its header is not JSON)") from None
    if not isinstance(header, dict) or header.get("type") != "mse":
        raise SourceError("the peer's video stream is not a camstream's (an unknown header)")
    return header


def _video_track(init: str | bytes) -> Track:
    if not isinstance(init, bytes):
        raise SourceError("the peer sent text where its init segment should be")
    try:
        found = next((track for track in tracks(init) if track.kind == "vide"), None)
    except (BoxError, IndexError, ValueError) as exc:
        raise SourceError(f"the peer's init segment is not one: {exc}") from None
    if found is None or found.timescale <= 0:
        raise SourceError("the peer's init segment has no video track")
    return found


def _fragment(data: bytes, video: Track) -> Fragment:
    """A peer's ``moof`` + ``mdat`` as a :class:`Fragment`: whether it starts with a keyframe and its video times,
    read from the boxes (a fragment of audio alone has no time, as the hub's own muxer makes it)."""
    try:
        found, _ = split_boxes(data)
        moof = next((box for kind, box in found if kind == b"moof"), None)
        if moof is None:
            raise SourceError("the peer sent a fragment without a moof box")
        info = fragment_info(moof, video)
    except (BoxError, IndexError, ValueError) as exc:
        raise SourceError(f"the peer sent a fragment that is not one: {exc}") from None
    if info is None:
        return Fragment(data, False, None, 0.0)
    return Fragment(data, info.keyframe, info.decode_time / video.timescale, info.duration / video.timescale)
