"""A camera of another camstream (a peer), relayed by a hub once however many watch it there.

A peer camera is an :class:`~camera.sources.relay.HttpCamera` on the
peer's ``/video_feed/CAMERA``: it runs only while someone at the hub
watches, holds one connection to the peer, and relays the peer's JPEGs
byte for byte to every viewer at the hub (the capture thread's fan-out).
What it adds is the peer's health, as the hub's poll of the peer last
found it (:class:`PeerHealth`), so a tile nobody watches still says the
peer is down, which peer, since when and why.

A peer camera that passes its H.264 through is relayed the same way for
MSE, HLS and WebRTC: one ``/mse`` WebSocket to the peer while any of those
watch at the hub, its fragments published as they came into the hub
camera's feed (camera/sources/peer_media.py). The two kinds are pulled
apart: the peer's MJPEG (which costs the peer a decode and an encode) only
while the hub wants pictures, its fMP4 only while the hub wants video.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from urllib.parse import quote

from ..base import FAILED, IDLE
from ..errors import SourceError
from ..media.feed import FragmentTaker, MediaFeed
from ..media.hls import HlsWindow
from .peer_media import NotPassedThrough, PeerMediaRelay
from .relay import HttpCamera, relayed_parts

# How often the capture thread looks again at what is wanted while it relays no pictures (a new viewer wakes
# it at once).
IDLE_CHECK = 0.5
# An HLS reader (or a new taker, see PeerFeed) wants the peer's video this long after its last request (a player
# asks every second or two).
HLS_READ_SECONDS = 10.0


@dataclass(frozen=True)
class PeerState:
    """What the hub last found of a peer: ``up``, since when (wall clock) and, when down, why (no secrets)."""

    up: bool | None  # None: not asked yet
    since: float
    error: str | None = None


class PeerHealth:
    """A peer's state, set by the hub's poll of it and read by each of its cameras' status."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._lock = threading.Lock()
        self._state = PeerState(None, time.time())

    def set(self, up: bool, error: str | None = None) -> bool:
        """Note the outcome of one poll; True when the peer went up or down with it."""
        with self._lock:
            changed = self._state.up != up
            if changed or self._state.error != error:
                self._state = PeerState(up, time.time() if changed else self._state.since, error)
            return changed

    @property
    def state(self) -> PeerState:
        return self._state

    def as_dict(self) -> dict:
        state = self._state
        return {"name": self.name, "up": state.up, "since": round(state.since, 3), "error": state.error}


def stream_url(base: str, camera: str, query: str = "", route: str = "video_feed") -> str:
    """The peer's MJPEG URL of ``camera`` (``route="mse"``: its fMP4 WebSocket's) from its ``base`` URL (which
    may carry ``user:password@``)."""
    return f"{base.rstrip('/')}/{route}/{quote(camera, safe='')}" + (f"?{query}" if query else "")


class ReadHls(HlsWindow):
    """The HLS window of a peer camera, noting when it was last read: a reader wants the peer's video."""

    def __init__(self, read: Callable[[], None], size: int = 6) -> None:
        super().__init__(size)
        self.last_read = float("-inf")
        self._read = read

    def _note(self) -> None:
        now = time.monotonic()
        fresh = now - self.last_read > HLS_READ_SECONDS
        self.last_read = now
        if fresh:
            self._read()

    def playlist_ready(self, enough: bool = True) -> bool:
        self._note()
        return super().playlist_ready(enough)

    def part_state(self, number: int) -> tuple[str, bytes | None]:
        self._note()
        return super().part_state(number)

    def segment(self, window: str, number: int) -> bytes | None:
        self._note()
        return super().segment(window, number)


class PeerFeed(MediaFeed):
    """A peer camera's feed: a new taker of its fragments (a WebRTC relay, which waits for the stream to know
    its profile before it answers its first viewer) wants the peer's video for a while, and wakes the camera."""

    def __init__(self, wake: Callable[[], None]) -> None:
        super().__init__(expected=False)
        self._wake = wake
        self.taken_at = float("-inf")

    def add_taker(self, taker: FragmentTaker) -> None:
        super().add_taker(taker)
        self.taken_at = time.monotonic()
        self._wake()


class PeerCamera(HttpCamera):
    """Camera ``camera`` of peer ``health.name``, named ``PEER.CAMERA`` at the hub."""

    def __init__(self, name: str, source: str, health: PeerHealth, remote_name: str, media_url: str = "",
                 **options) -> None:
        super().__init__(name, source, audio=False, **options)
        self.health = health
        self.remote_name = remote_name
        self._media_url = media_url
        self._wake = threading.Event()
        self.media = self._feed = PeerFeed(self._wake.set)
        self._hls = self.media.hls = ReadHls(self._wake.set)
        self._relay: PeerMediaRelay | None = None  # the capture thread's

    def note(self, entry: dict) -> None:
        """What the peer's ``/api/cameras`` says of this camera: whether it passes its video through (the
        page then offers MSE for it), once the peer has opened it."""
        video = entry.get("video")
        mode = video.get("mode") if isinstance(video, dict) else None
        if mode == "passthrough" and self._media_url:
            self.media.expected = True
            self.media.refused = None
        elif mode == "transcode":
            self.media.refuse("the peer decodes this camera's video; its MJPEG is relayed")

    def start(self) -> None:
        super().start()
        self._wake.set()  # a new viewer of either kind: the capture thread looks at once

    def video_wanted(self) -> bool:
        """Whether the peer's fMP4 is wanted: an MSE or WebRTC viewer, an HLS reader of late, or a new taker."""
        now = time.monotonic()
        return bool(self._media_url) and (self.media.viewer_count > 0 or now - self._hls.last_read < HLS_READ_SECONDS
                                          or now - self._feed.taken_at < HLS_READ_SECONDS)

    def frames(self) -> Iterator[bytes | None]:
        """The peer's JPEGs while pictures are wanted, None (alive) while not; the fMP4 relay kept beside."""
        try:
            while True:
                self._wake.clear()
                self._tend_relay()
                if self.broadcaster.wanted:
                    yield from self._pictures()
                else:
                    self._wake.wait(IDLE_CHECK)
                    yield None
        finally:
            self._stop_relay()

    def _pictures(self) -> Iterator[bytes]:
        """The peer's MJPEG, byte for byte, until nobody here wants pictures (the connection is then closed)."""
        response = self._request()
        content_type = response.headers.get("Content-Type", "")
        if not content_type.lower().startswith("multipart/"):
            response.close()
            raise SourceError(f"{self.source} is {content_type[:60]!r}, not a camstream's MJPEG")
        for part in relayed_parts(response, content_type, self.source):
            yield part
            self._tend_relay()
            if not self.broadcaster.wanted:
                return

    def _tend_relay(self) -> None:
        """Start or stop the fMP4 relay as it is wanted; its failure is the camera's (it reconnects)."""
        relay = self._relay
        if relay is not None and not relay.alive:
            self._relay = None
            if isinstance(relay.error, NotPassedThrough):
                self.media.refuse(str(relay.error))
            elif relay.error is not None:
                raise relay.error
        wanted = self.video_wanted() and self.media.refused is None
        if wanted and self._relay is None:
            self._relay = PeerMediaRelay(self.name, self._media_url, self.media, self._redactor)
            self._relay.start()
        elif not wanted and self._relay is not None:
            self._stop_relay()

    def _stop_relay(self) -> None:
        relay, self._relay = self._relay, None
        if relay is not None:
            relay.stop()

    def status(self) -> dict:
        """The camera's status with its ``peer`` block; a peer that is down fails a tile nobody watches."""
        status = super().status()
        peer = self.health.as_dict()
        relay = self._relay
        video = {"relaying": relay is not None and relay.alive, "mse_viewers": self.media.viewer_count,
                 "mime_type": self.media.mime_type or None, "fragments": self.media.fragments}
        status["peer"] = {**peer, "camera": self.remote_name, "video": video}
        if peer["up"] is False and status["state"] == IDLE:
            status["state"] = str(FAILED)
            status["last_error"] = f"peer {self.health.name} is down: {peer['error']}"
            status["offline_since"] = peer["since"]
        return status
