"""HLS from a camera's fragments (RFC 8216, and Low-Latency HLS of RFC 8216bis): segments, parts, playlists.

Segments run from a keyframe to a keyframe, so a player may start at any
of them. Each is made of *parts* of about a quarter of a second (whole
fragments, that is whole frames; a part that starts with a keyframe says
``INDEPENDENT=YES``), which a low-latency player fetches while the
segment is still being made; a regular player ignores them.

The rules this window keeps, for the life of the camera object:

- ``EXT-X-TARGETDURATION`` is fixed by the first segment a keyframe ended
  (the camera's keyframe spacing rounded up, a tenth of a second of jitter
  ignored, at least 1 s) and never changes. A segment is ended at the first
  keyframe at least :data:`MIN_SEGMENT_SECONDS` into it; only where the
  camera's keyframes come further apart than the target allows (a camera
  restarted with a longer GOP) is a segment ended between keyframes, at
  the frame that would make it round above the target, and the next
  keyframe then ends the one after it at once.
- The media sequence only goes forward: a new init segment (a reconnect, a
  new resolution) continues the numbering, with ``EXT-X-DISCONTINUITY``
  before its first segment, a new ``EXT-X-MAP`` (inits have names of
  their own) and ``EXT-X-DISCONTINUITY-SEQUENCE`` counting the
  discontinuities that have left the playlist.
- The playlist keeps at least ``size`` segments and at least three target
  durations; a segment that leaves it is still served for at least the
  playlist's duration after (a second, bounded list). A camera that comes
  back after a pause longer than the playlist (idle for an hour) starts a
  playlist of its own, numbers going on, so no player starts in the past.
- Parts are numbered across segments, so a preload hint names the next
  part before anyone knows which segment it falls in; a new run skips the
  numbers hinted before, which never come.

Names carry an id of this window (``seg-<id>-<n>.m4s``), so a name's
bytes never change, even across a server restart, and a cache may keep
them for good.
"""

from __future__ import annotations

import math
import secrets
import struct
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import quote

from . import boxes
from .muxer import Fragment

# The most one segment may hold: past it the segment is ended where it is.
MAX_SEGMENT_BYTES = 32 * 1024 * 1024
# A keyframe this soon after a segment began does not end it (some cameras send two in a row).
MIN_SEGMENT_SECONDS = 0.9
# What a part aims at, in seconds; the part target is the whole number of frames nearest to it.
PART_AIM = 0.25
# Parts are listed for the segments that end within this many target durations of the playlist's end.
PART_SPAN_TARGETS = 3
# PART-HOLD-BACK, in part targets (RFC 8216bis asks for at least 2, advises 3).
PART_HOLD_BACK = 3
# Segments the playlist and the list of those that left it hold at most, whatever their durations.
MAX_LISTED = 64


@dataclass(frozen=True)
class Part:
    number: int  # numbered across segments, so the next part's name is known before its segment is
    duration: float
    independent: bool
    data: bytes


@dataclass
class Segment:
    number: int
    duration: float
    data: bytes
    init: str  # the name id of its init segment
    discontinuity: bool
    date: float  # wall clock when its first frame came
    independent: bool
    parts: list[Part] = field(default_factory=list)


@dataclass
class _Building:
    """The segment being made, and its part being made."""

    init: str
    discontinuity: bool
    date: float
    independent: bool
    parts: list[Part] = field(default_factory=list)
    pending: list[bytes] = field(default_factory=list)
    pending_duration: float = 0.0
    pending_independent: bool = False
    pending_bytes: int = 0
    pending_delta: bool = False  # whether the part being made holds a frame that is no keyframe
    bytes: int = 0

    @property
    def duration(self) -> float:
        return sum(part.duration for part in self.parts) + self.pending_duration


class HlsWindow:
    """A camera's HLS: its segments and parts, the playlists, and who waits for what comes next."""

    def __init__(self, size: int = 6) -> None:
        self.size = max(3, size)
        self.id = secrets.token_hex(4)
        self._lock = threading.Condition()
        self.run = ""  # the current init's name id
        self.init: bytes | None = None  # the current init, None while no stream runs
        self._inits: dict[str, bytes] = {}
        self.segments: list[Segment] = []
        self._gone: deque[tuple[Segment, float]] = deque()
        self._building: _Building | None = None
        self._parts: dict[int, Part] = {}
        self._next_number = 0
        self._next_part = 0
        self._discontinuity_sequence = 0
        self._new_init = False
        self._ended_at: float | None = None  # when the last run ended (monotonic), while none runs
        self._clock: tuple[float, float] | None = None  # (wall clock, stream time) of the run's first frame
        self.target: int | None = None
        self.part_target: float | None = None
        self._frame_duration: float | None = None
        self._video_frames = 0
        self.version = 0
        self._rendered: dict[str, tuple[int, str]] = {}
        self._listeners: set[Callable[[], None]] = set()
        self.size_of_video: tuple[int, int] | None = None

    # -- the capture thread's side ---------------------------------------

    def begin(self, init: bytes) -> None:
        """A new init segment: what follows is a new run, after a discontinuity if anything came before."""
        with self._lock:
            self._finish_segment()
            # A part a playlist hinted (or the one after) while the last run went on never comes: the new run's
            # parts must not take their names, or a player would take them for the old run's.
            self._next_part += 2
            self.run = secrets.token_hex(4)
            self.init = init
            self._inits[self.run] = init
            self._new_init = self._next_number > 0
            self._clock = None
            self._retire_stale()
            self._ended_at = None
            self.size_of_video = video_size(init)
            self._changed()
        self._tell()

    def end(self) -> None:
        """The stream stopped: the segment being made ends where it is; what was made stays served."""
        with self._lock:
            self._finish_segment()
            self.init = None
            self._new_init = self._next_number > 0
            self._ended_at = time.monotonic()
            self._changed()
        self._tell()

    def add(self, fragment: Fragment) -> None:
        with self._lock:
            if self.init is None:
                return
            if fragment.time is None:
                if self._building is not None:
                    self._append(fragment, False)
                return
            version = self.version
            self._add_video(fragment)
            changed = self.version != version
        if changed:
            self._tell()

    def _add_video(self, fragment: Fragment) -> None:
        building = self._building
        duration = max(0.0, fragment.duration)
        self._video_frames += 1
        if self.part_target is None and self._video_frames >= 2 and duration > 0:
            # The second frame's duration: the first one's may be a muxer's guess.
            frames = max(1, math.floor(PART_AIM / duration + 0.5))
            self.part_target = frames * duration
        if duration > 0:
            self._frame_duration = duration
        if fragment.keyframe:
            if building is not None and (building.duration >= MIN_SEGMENT_SECONDS or not building.independent):
                self._finish_segment(at_keyframe=True)
                building = None
            elif building is not None and building.pending_delta:
                # A part starts at every keyframe, so it can say INDEPENDENT (a keyframe a camera sends in two
                # pieces, as FFmpeg's RTSP reader may, stays in one part).
                self._close_part()
            if building is None:
                self._start_segment(True, fragment.time)
        elif building is None:
            return  # waiting for a keyframe to begin with
        elif self._too_long(building, duration):
            self._finish_segment()
            self._start_segment(False, fragment.time)
        self._append(fragment, True)
        building = self._building
        assert building is not None
        target = self.part_target
        step = self._frame_duration or duration
        if target is not None and building.pending_duration >= target - step / 2:
            self._close_part()

    def _too_long(self, building: _Building, duration: float) -> bool:
        """Whether this frame would make the segment round above the target, or hold too many bytes."""
        if building.bytes >= MAX_SEGMENT_BYTES:
            return True
        return self.target is not None and building.duration + duration >= self.target + 0.5

    def _start_segment(self, independent: bool, at: float | None) -> None:
        """A segment from the video frame of stream time ``at``: its date is the wall clock when the run's first
        frame came plus the stream time since, so dates and durations agree within a run."""
        if self._clock is None or at is None:
            self._clock = (time.time(), at or 0.0)
        wall, start = self._clock
        self._building = _Building(self.run, self._new_init, wall + max(0.0, (at or start) - start), independent)
        self._new_init = False

    def _append(self, fragment: Fragment, video: bool) -> None:
        building = self._building
        assert building is not None
        if not building.pending and video and fragment.keyframe:
            building.pending_independent = True
        building.pending.append(fragment.data)
        building.pending_bytes += len(fragment.data)
        building.bytes += len(fragment.data)
        if video:
            building.pending_duration += max(0.0, fragment.duration)
            building.pending_delta = building.pending_delta or not fragment.keyframe

    def _close_part(self) -> None:
        building = self._building
        if building is None or not building.pending:
            return
        if building.pending_duration <= 0:
            # Audio alone (what came after the last frame of a stream that stopped): a part without video is
            # no media to a player, so it is left out.
            building.pending, building.pending_bytes, building.pending_independent = [], 0, False
            return
        part = Part(self._next_part, building.pending_duration, building.pending_independent,
                    b"".join(building.pending))
        self._next_part += 1
        building.parts.append(part)
        self._parts[part.number] = part
        building.pending, building.pending_duration, building.pending_independent = [], 0.0, False
        building.pending_bytes, building.pending_delta = 0, False
        self._changed()

    def _finish_segment(self, at_keyframe: bool = False) -> None:
        """End the segment being made (its last part too); with nothing in it, it is dropped. The first one a
        keyframe ends (or the third, if none is) fixes the target duration."""
        self._close_part()
        building, self._building = self._building, None
        if building is None or not building.parts:
            return
        duration = max(0.001, building.duration)
        segment = Segment(self._next_number, duration, b"".join(part.data for part in building.parts),
                          building.init, building.discontinuity, building.date, building.independent,
                          building.parts)
        self._next_number += 1
        self.segments.append(segment)
        if self.target is None and ((at_keyframe and building.independent) or len(self.segments) >= 3):
            longest = max(item.duration for item in self.segments)
            self.target = max(1, math.ceil(longest - 0.1), math.floor(longest + 0.5))
        self._trim()
        self._changed()

    def _trim(self) -> None:
        """Move the oldest segments out while the rest still make ``size`` segments and three targets."""
        target = self.target or 1
        while len(self.segments) > self.size or len(self.segments) > MAX_LISTED:
            rest = sum(segment.duration for segment in self.segments[1:])
            if rest < 3 * target and len(self.segments) <= MAX_LISTED:
                break
            # RFC 8216, 6.2.2: served for its own duration plus the longest playlist that held it (this one, with
            # a target's slack for a playlist that was a little longer before), after it leaves.
            leaving = self.segments[0].duration
            self._retire(leaving + (leaving + rest) + target)
        self._forget()

    def _retire(self, served_for: float) -> None:
        """The oldest segment leaves the playlist; it is still served for ``served_for`` seconds."""
        leaving = self.segments.pop(0)
        if self.segments and self.segments[0].discontinuity:
            self.segments[0].discontinuity = False  # its tag leaves with the segment before it
            self._discontinuity_sequence += 1
        for part in leaving.parts:
            self._parts.pop(part.number, None)
        leaving.parts = []
        self._gone.append((leaving, time.monotonic() + served_for))

    def _forget(self) -> None:
        """Drop what has been gone long enough, and the inits nothing refers to."""
        now = time.monotonic()
        while self._gone and (self._gone[0][1] < now or len(self._gone) > MAX_LISTED):
            self._gone.popleft()
        wanted = {segment.init for segment in self.segments} | {segment.init for segment, _ in self._gone}
        wanted.add(self.run)
        for name in [name for name in self._inits if name not in wanted]:
            del self._inits[name]

    def _retire_stale(self) -> None:
        """After a pause longer than the playlist (a camera idle for an hour), its segments leave at once: a
        player must not start an hour in the past. They are served for the playlist's duration still, and the
        discontinuity before the new run counts as gone with them."""
        listed = sum(segment.duration for segment in self.segments)
        if self._ended_at is None or not self.segments or time.monotonic() - self._ended_at <= listed:
            return
        while self.segments:
            self._retire(listed + (self.target or 1))
        if self._new_init:
            self._new_init = False
            self._discontinuity_sequence += 1
        self._forget()

    def _changed(self) -> None:
        self.version += 1
        self._lock.notify_all()

    def _tell(self) -> None:
        """Wake whoever waits for what comes next (outside the lock: they only queue a look)."""
        with self._lock:
            listeners = list(self._listeners)
        for listener in listeners:
            listener()

    # -- readers ---------------------------------------------------------

    def add_listener(self, listener: Callable[[], None]) -> None:
        """Call ``listener()`` (on the capture thread: it must only queue) after every change."""
        with self._lock:
            self._listeners.add(listener)

    def remove_listener(self, listener: Callable[[], None]) -> None:
        with self._lock:
            self._listeners.discard(listener)

    @property
    def live(self) -> bool:
        return self.init is not None

    def wait(self, ready: Callable[[], bool], timeout: float) -> bool:
        """Wait (a worker thread, where no socket can be taken) until ``ready()``, at most ``timeout`` s; looked
        at again every second too, for what the window does not announce (a camera gone)."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while not ready():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._lock.wait(min(1.0, left))
            return True

    def playlist_ready(self, enough: bool = True) -> bool:
        """Whether a playlist can be given: a target and a segment, and with ``enough`` three targets of them."""
        with self._lock:
            if self.target is None or not self.segments:
                return False
            return not enough or sum(segment.duration for segment in self.segments) >= 3 * self.target

    def blocking_state(self, msn: int, part: int | None) -> str:
        """For a blocking reload (RFC 8216bis 6.2.5.2): ``ready``, ``wait``, or ``far`` (too far ahead: 400)."""
        with self._lock:
            building = self._next_number  # the number of the segment being made, or of the next one
            if msn < building:
                return "ready"
            if msn > building + 1:
                return "far"
            if msn == building and part is not None and self._building is not None \
                    and part < len(self._building.parts):
                return "ready"
            return "wait"

    def part_state(self, number: int) -> tuple[str, bytes | None]:
        """A part by number: (``ready``, bytes), (``wait``, None) for the next one, else (``gone``, None)."""
        with self._lock:
            found = self._parts.get(number)
            if found is not None:
                return "ready", found.data
            if number in (self._next_part, self._next_part + 1) and self.init is not None:
                return "wait", None
            return "gone", None

    def playlist(self, token: str | None = None) -> str | None:
        """The media playlist, with parts and a preload hint; None while there is no target or segment."""
        with self._lock:
            cached = self._rendered.get(token or "")
            if cached is not None and cached[0] == self.version:
                return cached[1]
            text = self._render(token_query(token))
            if text is not None:
                if len(self._rendered) > 16:
                    self._rendered.clear()
                self._rendered[token or ""] = (self.version, text)
            return text

    def _render(self, query: str) -> str | None:
        if self.target is None or not self.segments:
            return None
        target, part_target = self.target, self.part_target or PART_AIM
        part_tag = _seconds_up(part_target * 1.02)
        lines = ["#EXTM3U", "#EXT-X-VERSION:9", f"#EXT-X-TARGETDURATION:{target}",
                 f"#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK={_decimal(part_tag * PART_HOLD_BACK)}",
                 f"#EXT-X-PART-INF:PART-TARGET={_decimal(part_tag)}",
                 f"#EXT-X-MEDIA-SEQUENCE:{self.segments[0].number}",
                 f"#EXT-X-DISCONTINUITY-SEQUENCE:{self._discontinuity_sequence}"]
        if all(segment.independent for segment in self.segments):
            lines.append("#EXT-X-INDEPENDENT-SEGMENTS")
        # Parts are listed for the segments that end within three targets of the end.
        listed, span = 0, 0.0
        building = self._building
        if building is not None:
            span = building.duration
        for segment in reversed(self.segments):
            if span >= PART_SPAN_TARGETS * target:
                break
            listed += 1
            span += segment.duration
        first_with_parts = len(self.segments) - listed
        init = None
        for index, segment in enumerate(self.segments):
            init = self._heading(lines, segment.discontinuity and index > 0, segment.init, init, segment.date, query)
            if index >= first_with_parts:
                lines += [_part_line(part, self.id, query) for part in segment.parts]
            lines += [f"#EXTINF:{segment.duration:.5f},", f"seg-{self.id}-{segment.number}.m4s{query}"]
        if building is not None and self.init is not None:
            if building.parts or building.discontinuity:  # a player counts discontinuities for the hint too
                self._heading(lines, building.discontinuity, building.init, init, building.date, query)
                lines += [_part_line(part, self.id, query) for part in building.parts]
            lines.append(f'#EXT-X-PRELOAD-HINT:TYPE=PART,URI="part-{self.id}-{self._next_part}.m4s{query}"')
        elif self._new_init:
            # The stream stopped (or starts over): what comes next comes after a discontinuity, and a player
            # that guesses the next segment (hls.js does, for parts) must count it already.
            lines.append("#EXT-X-DISCONTINUITY")
        return "\n".join(lines) + "\n"

    @staticmethod
    def _heading(lines: list[str], discontinuity: bool, init: str, previous: str | None, date: float,
                 query: str) -> str:
        """The tags before a segment: a discontinuity, its init (where it changes), its wall-clock time."""
        if discontinuity:
            lines.append("#EXT-X-DISCONTINUITY")
        if init != previous or discontinuity:
            lines.append(f'#EXT-X-MAP:URI="init-{init}.mp4{query}"')
        stamp = datetime.fromtimestamp(date, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        lines.append(f"#EXT-X-PROGRAM-DATE-TIME:{stamp}")
        return init

    def segment(self, window: str, number: int) -> bytes | None:
        """A segment of the playlist, or one that left it not long ago; None otherwise."""
        if window != self.id:
            return None
        with self._lock:
            for segment in self.segments:
                if segment.number == number:
                    return segment.data
            for segment, _ in self._gone:
                if segment.number == number:
                    return segment.data
        return None

    def init_of(self, run: str) -> bytes | None:
        with self._lock:
            return self._inits.get(run)

    def peak_bitrate(self) -> int | None:
        """The highest bit rate of a listed segment, in bits a second (BANDWIDTH of the multivariant playlist)."""
        with self._lock:
            rates = [len(segment.data) * 8 / segment.duration for segment in self.segments if segment.duration > 0]
        return math.ceil(max(rates)) if rates else None


def video_size(init: bytes) -> tuple[int, int] | None:
    """Width and height of the init segment's video track, from its ``tkhd``."""
    try:
        found, _ = boxes.split_boxes(init)
        moov = next((box for kind, box in found if kind == b"moov"), None)
        if moov is None:
            return None
        for trak in boxes.find(moov, [b"trak"]):
            tkhd = boxes.find(b"\0" * 8 + trak, [b"tkhd"])[0]
            width, height = struct.unpack(">II", tkhd[-8:])
            if width and height:
                return width >> 16, height >> 16
    except (boxes.BoxError, IndexError, struct.error):
        return None
    return None


def token_query(token: str | None) -> str:
    """``?token=...`` for every URI of a playlist asked for with a token (and nothing else of its query)."""
    return f"?token={quote(token, safe='')}" if token else ""


def _part_line(part: Part, window: str, query: str) -> str:
    independent = ",INDEPENDENT=YES" if part.independent else ""
    return f'#EXT-X-PART:DURATION={part.duration:.5f},URI="part-{window}-{part.number}.m4s{query}"{independent}'


def _seconds_up(seconds: float) -> float:
    """Rounded up to the millisecond."""
    return math.ceil(seconds * 1000) / 1000


def _decimal(seconds: float) -> str:
    return f"{seconds:.3f}".rstrip("0").rstrip(".")
