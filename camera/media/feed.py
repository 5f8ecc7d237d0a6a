"""A camera's fragmented MP4, handed once to every MSE viewer and HLS reader: the newest GOP first.

The capture thread muxes each packet once (camera/media/muxer.py) and
publishes the fragment here. A new viewer gets the init segment and the
fragments since the newest keyframe, so its picture appears at once; then
every fragment as it comes, the very same bytes for every viewer. A viewer
that falls behind drops what it has not sent yet when the next keyframe
comes and goes on from there, so it is never much more than one GOP
behind, and what waits for it is bounded.
"""

from __future__ import annotations

import json
import struct
import threading
import time
from typing import Protocol

from .hls import HlsWindow
from .muxer import Fragment

# The most a GOP may hold for new viewers: a camera that sends no keyframe for long
# keeps no more than this, and its new viewers wait for the next keyframe.
MAX_GOP_BYTES = 16 * 1024 * 1024


def websocket_message(data: bytes, text: bool = False) -> bytes:
    """``data`` as one unmasked WebSocket frame, as a server sends it (RFC 6455, 5.2): the same for every client."""
    opcode = 0x81 if text else 0x82
    length = len(data)
    if length < 126:
        header = struct.pack(">BB", opcode, length)
    elif length < 65536:
        header = struct.pack(">BBH", opcode, 126, length)
    else:
        header = struct.pack(">BBQ", opcode, 127, length)
    return header + data


class MediaViewer(Protocol):
    """What a viewer of a :class:`MediaFeed` has: MSE over a WebSocket (camera/viewers/mse.py)."""

    @property
    def closed(self) -> bool: ...

    def begin(self, start: list[bytes], complete: bool) -> None: ...

    def offer(self, message: bytes, keyframe: bool) -> None: ...

    def close(self) -> None: ...


class FragmentTaker(Protocol):
    """What takes a camera's fragments as they are (a recorder by copy), on the capture thread: it only queues."""

    def stream_began(self, init: bytes) -> None: ...

    def fragment(self, fragment: Fragment, at: float) -> None: ...

    def stream_ended(self) -> None: ...


class MediaFeed:
    """One camera's fMP4: the init segment, the current GOP, its viewers, and the HLS window."""

    def __init__(self, hls_segments: int = 6, *, expected: bool = True) -> None:
        self._lock = threading.Lock()
        self._viewers: set[MediaViewer] = set()
        self._start: list[bytes] = []
        self._gop: list[bytes] = []
        self._gop_bytes = 0
        self._gop_complete = False
        self.init: bytes | None = None
        self.mime_type = ""
        self.generation = 0
        self.fragments = 0
        self.bytes = 0
        self.hls = HlsWindow(hls_segments)
        # What takes the raw fragments too (a recorder that copies): called on the capture thread, so quick.
        self._takers: list[FragmentTaker] = []
        # The camera's G.711 sound, which fMP4 does not carry: its codec, rate and channels, for the takers that
        # pass it on (WebRTC); (None, 0, 0) when it has none.
        self._audio: tuple[str | None, int, int] = (None, 0, 0)
        # Why the source's video cannot be passed through (a codec a browser is not handed, an MJPEG stream);
        # None while it can, or before the source was first opened.
        self.refused: str | None = None
        # Whether the source is expected to send video to pass through before it has (an RTSP camera is; an
        # HTTP source may turn out to be MJPEG).
        self.expected = expected

    @property
    def viewer_count(self) -> int:
        with self._lock:
            return len(self._viewers)

    @property
    def live(self) -> bool:
        """True while a stream is being muxed (an init segment is out)."""
        return self.init is not None

    @property
    def offered(self) -> bool:
        """Whether a page should try MSE for this camera: it passes its video through, or is expected to."""
        return self.refused is None and (self.expected or bool(self.mime_type))

    def begin(self, init: bytes, mime_type: str) -> None:
        """A new stream (a start, a reconnect, a new resolution or codec): every viewer starts over with it."""
        header = json.dumps({"type": "mse", "codecs": mime_type}).encode()
        with self._lock:
            self.refused = None
            self.init, self.mime_type = init, mime_type
            self.generation += 1
            self._start = [websocket_message(header, text=True), websocket_message(init)]
            self._gop, self._gop_bytes, self._gop_complete = [], 0, False
            viewers, start = list(self._viewers), list(self._start)
        self.hls.begin(init)
        for viewer in viewers:
            viewer.begin(start, complete=False)
        for taker in list(self._takers):
            taker.stream_began(init)

    def publish(self, fragment: Fragment) -> None:
        """Hand one fragment to every viewer and to the HLS window."""
        message = websocket_message(fragment.data)
        with self._lock:
            if self.init is None:
                return
            self.fragments += 1
            self.bytes += len(fragment.data)
            if fragment.keyframe:
                self._gop, self._gop_bytes, self._gop_complete = [message], len(message), True
            elif self._gop_complete and self._gop_bytes + len(message) <= MAX_GOP_BYTES:
                self._gop.append(message)
                self._gop_bytes += len(message)
            else:
                # Too long without a keyframe: new viewers wait for the next one.
                self._gop, self._gop_bytes, self._gop_complete = [], 0, False
            viewers = list(self._viewers)
        self.hls.add(fragment)
        for viewer in viewers:
            viewer.offer(message, fragment.keyframe)
        if self._takers:
            at = time.time()
            for taker in list(self._takers):
                taker.fragment(fragment, at)

    def end(self) -> None:
        """The stream stopped (the camera stopped or lost its source): nothing is handed to new viewers."""
        with self._lock:
            self.init = None
            self._start, self._gop, self._gop_bytes, self._gop_complete = [], [], 0, False
        self.hls.end()
        for taker in list(self._takers):
            taker.stream_ended()

    def refuse(self, reason: str) -> None:
        """The source's video is not one to pass through: its viewers are closed, and new ones turned away."""
        with self._lock:
            self.refused = reason
        self.close_all()

    def add(self, viewer: MediaViewer) -> bool:
        """Add a viewer; it gets the init segment and the current GOP now if a stream runs. False if closed, or
        if the source's video is not passed through."""
        with self._lock:
            if viewer.closed or self.refused is not None:
                return False
            self._viewers.add(viewer)
            complete = self._gop_complete
            start = self._start + self._gop if complete else list(self._start)
        if start:
            # Without a whole GOP to start from, the viewer waits for the next keyframe.
            viewer.begin(start, complete)
        return True

    def audio_stream(self, codec: str | None, rate: int, channels: int) -> None:
        """The sound that comes beside the next stream, outside its fragments (G.711); None for none."""
        with self._lock:
            self._audio = (codec, rate, channels)
            takers = list(self._takers)
        for taker in takers:
            if hasattr(taker, "audio_stream"):
                taker.audio_stream(codec, rate, channels)

    def audio_packet(self, codec: str, data: bytes, time: float) -> None:
        """One packet of that sound, as the camera sent it, to the takers that pass it on."""
        if self.init is None:
            return
        for taker in list(self._takers):
            if hasattr(taker, "audio_packet"):
                taker.audio_packet(codec, data, time)

    def add_taker(self, taker: FragmentTaker) -> None:
        """Hand ``taker`` every stream's init segment and fragments from now on (the current init at once)."""
        with self._lock:
            self._takers.append(taker)
            init, audio = self.init, self._audio
        if hasattr(taker, "audio_stream"):
            taker.audio_stream(*audio)
        if init is not None:
            taker.stream_began(init)

    def remove_taker(self, taker: FragmentTaker) -> None:
        with self._lock:
            if taker in self._takers:
                self._takers.remove(taker)

    def remove(self, viewer: MediaViewer) -> None:
        with self._lock:
            self._viewers.discard(viewer)

    def close_all(self) -> None:
        with self._lock:
            viewers = list(self._viewers)
        for viewer in viewers:
            viewer.close()
