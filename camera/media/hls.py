"""HLS from a camera's fragments: segments of whole GOPs, a short window of them, and the playlist.

A segment runs from one keyframe to the next, so any segment is a place a
player can start. Each run of a camera has names of its own
(``seg-<run>-<n>.m4s``), so a segment's bytes never change under its name
and an HTTP cache may keep it as long as it likes.
"""

from __future__ import annotations

import math
import secrets
import threading
from dataclasses import dataclass

from .muxer import Fragment

# The most one segment may hold: a camera without keyframes for long makes no segment.
MAX_SEGMENT_BYTES = 32 * 1024 * 1024
# A keyframe this soon after a segment began does not end it (some cameras send two in a row).
MIN_SEGMENT_SECONDS = 0.9


@dataclass(frozen=True)
class Segment:
    number: int
    duration: float
    data: bytes


class HlsWindow:
    """The last ``size`` segments of a camera's current run, and its init segment."""

    def __init__(self, size: int = 6) -> None:
        self.size = size
        self._ready = threading.Condition()
        self.run = ""
        self.init: bytes | None = None
        self.segments: list[Segment] = []
        self._parts: list[bytes] = []
        self._part_bytes = 0
        self._start: float | None = None
        self._number = 0

    def begin(self, init: bytes) -> None:
        with self._ready:
            self.run = secrets.token_hex(4)
            self.init = init
            self.segments = []
            self._parts, self._part_bytes, self._start, self._number = [], 0, None, 0

    def end(self) -> None:
        with self._ready:
            self.init = None
            self.segments = []
            self._parts, self._part_bytes, self._start = [], 0, None
            self._ready.notify_all()

    def add(self, fragment: Fragment) -> None:
        with self._ready:
            if self.init is None:
                return
            starts = fragment.keyframe and fragment.time is not None
            if starts and self._start is not None and fragment.time - self._start < MIN_SEGMENT_SECONDS:
                starts = False
            if starts:
                if self._parts and self._start is not None:
                    self._close_segment(fragment.time)
                self._parts, self._part_bytes, self._start = [], 0, fragment.time
            if self._start is None:
                return  # waiting for a keyframe to begin with
            if self._part_bytes + len(fragment.data) > MAX_SEGMENT_BYTES:
                self._parts, self._part_bytes, self._start = [], 0, None
                return
            self._parts.append(fragment.data)
            self._part_bytes += len(fragment.data)

    def _close_segment(self, next_start: float) -> None:
        assert self._start is not None
        duration = max(0.001, next_start - self._start)
        self.segments.append(Segment(self._number, duration, b"".join(self._parts)))
        self._number += 1
        del self.segments[:-self.size]
        self._ready.notify_all()

    def wait_ready(self, timeout: float) -> bool:
        """Wait until the window holds a segment; False if none came within ``timeout`` seconds."""
        with self._ready:
            return self._ready.wait_for(lambda: bool(self.segments), timeout)

    def playlist(self) -> str | None:
        """The media playlist (RFC 8216, fMP4 segments), or None while there is no segment."""
        with self._ready:
            segments, run = list(self.segments), self.run
        if not segments:
            return None
        lines = ["#EXTM3U", "#EXT-X-VERSION:7",
                 f"#EXT-X-TARGETDURATION:{math.ceil(max(segment.duration for segment in segments))}",
                 f"#EXT-X-MEDIA-SEQUENCE:{segments[0].number}", "#EXT-X-INDEPENDENT-SEGMENTS",
                 f'#EXT-X-MAP:URI="init-{run}.mp4"']
        for segment in segments:
            lines += [f"#EXTINF:{segment.duration:.3f},", f"seg-{run}-{segment.number}.m4s"]
        return "\n".join(lines) + "\n"

    def segment(self, run: str, number: int) -> bytes | None:
        with self._ready:
            if run != self.run:
                return None
            return next((segment.data for segment in self.segments if segment.number == number), None)

    def init_of(self, run: str) -> bytes | None:
        with self._ready:
            return self.init if run == self.run else None
