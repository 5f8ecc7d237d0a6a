"""Recording by copy: a camera's own H.264/H.265 (and AAC) written as it came, no decode and no encode.

A passed-through camera's video is already muxed once into fragmented MP4
for its viewers (camera/media/); a segment file is that stream's init
segment followed by its fragments from a keyframe on, appended as they
come. Each fragment holds one frame and goes to the OS at once, so a
process killed at any moment leaves a file that plays up to its last
frame. The fragments' times are the camera's stream's, from wherever that
stream began: a segment's frame times are its start plus each frame's
time since the segment's first.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import av
import numpy as np

from ..media.boxes import (
    Track,
    fragment_info,
    init_without_duration,
    rewrite_moof,
    split_boxes,
    timings,
    tracks,
)
from .appender import Appender
from .h264 import as_os_error
from .safeopen import open_nofollow

# How far a camera's clock may run ahead of the wall clock within a segment before its times are bounded by
# the wall clock: more than a frame's jitter (the first frame of a stream comes late by its opening), far less
# than what a clock that runs fast gains.
CLOCK_SLACK = 0.5

SUFFIX = ".copy.mp4"


# An AAC frame's samples: an audio sample's duration when a recording says 0 (FFmpeg's muxer wrote such).
AAC_FRAME_SAMPLES = 1024
# A video frame's duration when nothing tells it (a file's first frame with none), as a fraction of a second.
DEFAULT_FRAME_SECONDS = 1 / 30


class CopyWriter(Appender):
    """Appends a camera's fMP4 fragments to a new file that begins with ``init``.

    The file plays on its own from 0: each track's decode times are written less that track's first one
    (the camera's stream may have begun long before this segment), and a sample the muxer gave no duration
    gets one (AAC: 1024 samples; video: the step from the frame before, since the next is not here yet). The
    frames themselves are copied as they came."""

    def __init__(self, path: Path, init: bytes) -> None:
        super().__init__(path)
        self._origin: float | None = None
        self._timeline = Timeline(init)
        self._append(init_without_duration(init))

    def write(self, data: bytes, timestamp: float | None, stream_time: float | None = None) -> None:
        """Append one fragment; ``timestamp`` (when its frame came) is None for a fragment of audio alone.

        The file's frame times are its first frame's ``timestamp`` plus each frame's ``stream_time`` (the
        camera's own clock) since the first, as :func:`scan` reads them back; a frame's arrival time would
        drift from that whenever packets come in bursts. They are bounded by the wall clock all the same: a
        camera whose clock runs fast would otherwise claim more time than went by (segments that overlap
        the next one and end in the future)."""
        self._append(self._timeline.rebase(data))
        if timestamp is None:
            return
        self.frames += 1
        if self.first is None:
            self.first, self._origin = timestamp, stream_time
        if stream_time is None or self._origin is None:
            self.last = timestamp
        else:
            by_stream = self.first + max(0.0, stream_time - self._origin)
            self.last = by_stream if by_stream <= timestamp + CLOCK_SLACK else timestamp


class Timeline:
    """Per track, the decode times of a file written from a stream's fragments: from 0, only forward.

    Fragments handed to :meth:`rebase` are moved so that each track's first one is at 0 (and each later
    one by as much), a time that would go back is moved to where the track's previous sample ended, and a
    sample of no duration is given one (see :class:`CopyWriter`)."""

    def __init__(self, init: bytes) -> None:
        found = tracks(init)
        self.video = next((track for track in found if track.kind == "vide"), None)
        self.defaults = {track.track_id: track.default_duration for track in found}
        self.fill = {track.track_id: _usual_duration(track) for track in found}
        self._shift: dict[int, int] = {}
        self.ends: dict[int, int] = {}
        self._last_time: dict[int, int] = {}

    def rebase(self, data: bytes) -> bytes:
        """``data`` (whole ``moof`` + ``mdat`` pairs) with its times moved onto this file's timeline."""
        pieces, rest = split_boxes(data)
        out = []
        for kind, box in pieces:
            if kind != b"moof":
                out.append(box)
                continue
            times, fill = {}, {}
            for timing in timings(box, self.defaults):
                track_id = timing.track_id
                previous = self._last_time.get(track_id)
                if previous is not None and timing.decode_time > previous and self.video is not None \
                        and track_id == self.video.track_id:
                    self.fill[track_id] = max(1, (timing.decode_time - previous) // max(1, timing.samples))
                self._last_time[track_id] = timing.decode_time
                times[track_id] = self.place(track_id, timing.decode_time)
                fill[track_id] = self.fill[track_id]
                # Where the next sample may go: after this one's own duration, or a tick after it if it gave
                # none (the duration filled in is the step before it, which the next step may be shorter than).
                self.ends[track_id] = times[track_id] + timing.duration + timing.zero_durations
            out.append(rewrite_moof(box, decode_times=times, fill=fill, defaults=self.defaults))
        return b"".join(out) + rest

    def peek(self, track_id: int, decode_time: int) -> int:
        """Where :meth:`place` would put a sample now, without moving anything."""
        return decode_time + self._shift.get(track_id, self.ends.get(track_id, 0) - decode_time)

    def place(self, track_id: int, decode_time: int) -> int:
        """Where a sample of the stream at ``decode_time`` goes in the file: after what the track holds."""
        shift = self._shift.setdefault(track_id, self.ends.get(track_id, 0) - decode_time)
        placed = decode_time + shift
        end = self.ends.get(track_id, 0)
        if placed < end:  # back in time (or into the previous sample): from where it ended, from now on
            self._shift[track_id] += end - placed
            placed = end
        return placed

    def new_run(self) -> None:
        """What comes next is of another file (or a stream that began again): it continues where this
        timeline ended, per track, without a gap."""
        self._shift.clear()
        self._last_time.clear()


def _usual_duration(track: Track) -> int:
    """A sample's duration when the recording gives it none: an AAC frame, or a usual video frame."""
    if track.kind == "soun":
        return AAC_FRAME_SAMPLES  # in the sample rate, which is the audio track's timescale
    return max(1, round(track.timescale * DEFAULT_FRAME_SECONDS))


def playable_length(path: Path) -> int:
    """How many bytes at the start of a segment file (one still being written, too) are whole boxes that end
    with a whole fragment: what a player may be handed of it now."""
    with open_nofollow(path) as file:
        return _playable(file)


def _playable(file: BinaryIO) -> int:
    end = at = 0
    size_of_file = os.fstat(file.fileno()).st_size
    while at + 8 <= size_of_file:
        file.seek(at)
        header = file.read(16)
        size, kind = int.from_bytes(header[:4], "big"), header[4:8]
        if size == 1 and len(header) == 16:
            size = int.from_bytes(header[8:16], "big")
        if size < 8 or at + size > size_of_file:
            break
        at += size
        if kind in (b"ftyp", b"moov", b"mdat"):
            end = at
    return end


def plays_from_zero(path: Path) -> bool:
    """Whether a segment file starts at 0 on its own, as :class:`CopyWriter` writes them now (each track's
    first decode time 0, its first frame with a duration); one written before (the camera's stream times)
    is cut into a file that does by :func:`export` instead."""
    try:
        with open_nofollow(path) as file:
            init, places = _fragments(file, _playable(file))
            found = {track.track_id for track in tracks(init)}
            defaults = {track.track_id: track.default_duration for track in tracks(init)}
            for moof, _ in _each(file, places[:64]):
                for timing in timings(moof, defaults):
                    if timing.track_id in found:
                        if timing.decode_time or timing.zero_durations:
                            return False
                        found.discard(timing.track_id)
                if not found:
                    return True
            return not places
    except (OSError, ValueError):
        return False


def boxes_of(path: Path) -> tuple[bytes, list[tuple[bytes, bytes]]]:
    """A segment file's init segment and its whole fragments (``moof``, ``mdat``), in order."""
    with open_nofollow(path) as file:
        init, places = _fragments(file, _playable(file))
        return init, [(moof, _read(file, *mdat)) for moof, mdat in _each(file, places)]


Place = tuple[tuple[int, int], tuple[int, int]]  # where a fragment's moof is, and where its mdat is


def _fragments(file: BinaryIO, length: int) -> tuple[bytes, list[Place]]:
    """The init segment of a segment file open as ``file`` (its first ``length`` bytes whole), and where its
    fragments are: a fragment is read only when it is wanted (see :func:`_each`)."""
    places = []
    at = 0
    while at + 8 <= length:
        header = _read(file, at, 16)
        size, kind = int.from_bytes(header[:4], "big"), header[4:8]
        if size == 1:
            size = int.from_bytes(header[8:16], "big")
        places.append((kind, at, size))
        at += size
    init = b"".join(_read(file, start, size) for kind, start, size in places if kind in (b"ftyp", b"moov"))
    fragments = []
    moof = None
    for kind, start, size in places:
        if kind == b"moof":
            moof = (start, size)
        elif kind == b"mdat" and moof is not None:
            fragments.append((moof, (start, size)))
            moof = None
    return init, fragments


def _each(file: BinaryIO, places: list[Place]) -> Iterator[tuple[bytes, tuple[int, int]]]:
    """Each fragment's ``moof`` (read now) and where its ``mdat`` is."""
    for moof, mdat in places:
        yield _read(file, *moof), mdat


def _read(file: BinaryIO, at: int, size: int) -> bytes:
    file.seek(at)
    return file.read(size)


def export(segments: list[tuple[Path, float, float | None]], start: float, end: float, path: Path) -> int:
    """Copy what ``segments`` (file, start time, end time or None) hold from the keyframe at or before
    ``start`` to ``end`` into one MP4 at ``path``: their init segment, then their fragments, each written as
    it is found (a file followed as it grows is sent from its first fragments on). No frame is decoded or
    encoded; only the fragments' times are rewritten, so that the file starts at 0 and lasts what it holds
    (see :class:`Export`). How many frames went in.

    Every segment is opened before anything is read, and read from what was opened: retention deleting one
    meanwhile takes its name, not what this reads. Raises ValueError if the segments are of different
    streams (their init segments differ: the span is encoded instead), LookupError if nothing is in the span
    (nothing is left at ``path`` then), and OSError if a segment cannot be read."""
    opened: list[tuple[BinaryIO, float, float | None]] = []
    try:
        for name, segment_start, segment_end in segments:
            try:
                opened.append((open_nofollow(name), segment_start, segment_end))
            except FileNotFoundError:
                continue  # deleted before this began: the download holds what is stored now
        return _export(opened, start, end, path)
    finally:
        for file, _, _ in opened:
            file.close()


def _export(files: list[tuple[BinaryIO, float, float | None]], start: float, end: float, path: Path) -> int:
    read = [(file, *_fragments(file, _playable(file)), segment_start, segment_end)
            for file, segment_start, segment_end in files]
    inits = {init for _, init, _, _, _ in read}
    if len(inits) > 1:
        raise ValueError("the span holds more than one stream of the camera")
    init = next(iter(inits), None)
    video = next((track for track in tracks(init) if track.kind == "vide"), None) if init else None
    if init is None or video is None:
        raise LookupError("no frame is recorded in that time")
    frames = 0
    # Before the start: the fragments from the last keyframe at or before it (one GOP), and their frame count.
    waiting: list[bytes] = []
    with open(path, "wb") as out:
        writer = Export(out, init)
        for file, _, fragments, segment_start, segment_end in read:
            writer.new_run()
            scale = _clock_scale(file, fragments, video, segment_start, segment_end)
            origin = None
            for moof, mdat in _each(file, fragments):
                info = fragment_info(moof, video)
                if info is not None:  # else audio alone: it goes with the frames around it
                    origin = info.decode_time if origin is None else origin
                    at = segment_start + (info.decode_time - origin) / video.timescale * scale
                    if at > end:
                        break
                    if at <= start and info.keyframe:
                        waiting = []
                if not frames and (info is None or at <= start):
                    if waiting or info is not None and info.keyframe:
                        waiting.append(moof + _read(file, *mdat))
                    continue
                if not frames:
                    for held in waiting:
                        frames += writer.add(held)
                    waiting = []
                frames += writer.add(moof + _read(file, *mdat))
        if not frames and waiting:  # nothing after the start: the span's GOP
            for held in waiting:
                frames += writer.add(held)
        writer.close()
    if not frames:
        path.unlink(missing_ok=True)
        raise LookupError("no frame is recorded in that time")
    return frames


class Export:
    """Writes a stream's fragments into a file that starts at 0 and lasts what it holds.

    Per track, the first decode time written is 0 and each later one follows the stream's own steps; a
    new run (the next segment) goes on where the previous one ended, without a gap (a pause in the
    recording is cut out, not waited out), and never back. A video sample without a duration gets the step
    to the next frame (so a fragment waits for the next frame's time); an AAC one, 1024 samples. The init
    segment claims no duration. Each fragment goes to the file as soon as its times are known."""

    def __init__(self, out: BinaryIO, init: bytes) -> None:
        self._out = out
        self._timeline = Timeline(init)
        self._video = self._timeline.video.track_id if self._timeline.video else None
        self._held: list[tuple[bytes, bytes, dict[int, int]]] = []  # (moof, rest, placed times) waiting
        self._sequence = 0
        out.write(init_without_duration(init))

    def new_run(self) -> None:
        self._flush(None)
        self._timeline.new_run()

    def add(self, data: bytes) -> int:
        """Write (or hold until the next frame's time is known) one ``moof`` + ``mdat``; 1 if it is a frame."""
        pieces, rest = split_boxes(data)
        moof = next((box for kind, box in pieces if kind == b"moof"), None)
        if moof is None:
            return 0
        after = b"".join(box for kind, box in pieces if kind != b"moof") + rest
        placed = {}
        zero_video = False
        for timing in timings(moof, self._timeline.defaults):
            track_id = timing.track_id
            if track_id == self._video:
                self._flush(self._timeline.peek(track_id, timing.decode_time))
            placed[track_id] = self._timeline.place(track_id, timing.decode_time)
            duration = timing.duration + timing.zero_durations * self._timeline.fill[track_id]
            self._timeline.ends[track_id] = placed[track_id] + duration
            zero_video |= track_id == self._video and timing.zero_durations > 0
        if zero_video or self._held:
            self._held.append((moof, after, placed))
        else:
            self._write(moof, after, placed, self._timeline.fill)
        return int(self._video in placed)

    def close(self) -> None:
        self._flush(None)

    def _flush(self, next_video: int | None) -> None:
        """Write what is held, its video's missing durations being the step to ``next_video`` (the next
        frame's time; None at the end of a run: the usual step)."""
        if not self._held:
            return
        held, self._held = self._held, []
        fill = dict(self._timeline.fill)
        video_at = [placed[self._video] for _, _, placed in held if self._video in placed]
        if next_video is not None and video_at and next_video > video_at[-1]:
            step = next_video - video_at[-1]
            fill[self._video] = self._timeline.fill[self._video] = step
            # What the held frame ends at now (where the next frame is placed after it).
            self._timeline.ends[self._video] = next_video
        elif video_at:
            self._timeline.ends[self._video] = video_at[-1] + fill[self._video]
        for moof, after, placed in held:
            self._write(moof, after, placed, fill)

    def _write(self, moof: bytes, after: bytes, placed: dict[int, int], fill: dict[int, int]) -> None:
        self._sequence += 1
        self._out.write(rewrite_moof(moof, decode_times=placed, fill=fill, sequence=self._sequence,
                                     defaults=self._timeline.defaults) + after)
        self._out.flush()


def _clock_scale(file: BinaryIO, fragments: list[Place], video: Track, segment_start: float,
                 segment_end: float | None) -> float:
    """How much of a second of the wall clock a second of a segment's stream is: 1, or less for a camera
    whose clock ran fast (its segment's end is bounded by the wall clock, see :class:`CopyWriter`)."""
    if segment_end is None:
        return 1.0

    def first_time(order: Iterator[Place]) -> int | None:
        return next((info.decode_time for moof, _ in order
                     if (info := fragment_info(_read(file, *moof), video)) is not None), None)

    first, last = first_time(iter(fragments)), first_time(reversed(fragments))
    if first is None or last is None:
        return 1.0
    span = (last - first) / video.timescale
    wall = segment_end - segment_start
    return min(1.0, wall / span) if span > 0 and wall > 0 else 1.0


def scan(path: Path, start: float) -> list[float]:
    """The times of the frames a segment holds, up to its last whole fragment: its start plus the camera's
    clock since its first frame, bounded by the wall clock (the file's last write), as :class:`CopyWriter`
    bounds them: a camera whose clock runs fast claims no more time than went by."""
    times = [timestamp for timestamp, _ in _packets(path, start)]
    try:
        written = os.stat(path).st_mtime
    except OSError:
        return times
    if times and times[-1] > written + CLOCK_SLACK and written > start:
        scale = (written - start) / (times[-1] - start)
        times = [start + (timestamp - start) * scale for timestamp in times]
    return times


def read(path: Path, start: float, after: float = 0.0) -> Iterator[tuple[float, np.ndarray]]:
    """The frames of a segment from time ``after`` on, as (time, BGR image) pairs (decoded: for playback and
    for exporting what is not copied)."""
    try:
        with open_nofollow(path) as file, av.open(file) as container:
            stream = container.streams.video[0]
            origin = None
            for frame in container.decode(stream):
                if frame.pts is None:
                    continue
                origin = frame.pts if origin is None else origin
                timestamp = start + float((frame.pts - origin) * frame.time_base)
                if timestamp >= after:
                    yield timestamp, frame.to_ndarray(format="bgr24")
    except (av.FFmpegError, IndexError, OSError):
        return


def _packets(path: Path, start: float) -> Iterator[tuple[float, av.Packet]]:
    try:
        with open_nofollow(path) as file, av.open(file) as container:
            stream = container.streams.video[0]
            origin = None
            for packet in container.demux(stream):
                if packet.pts is None or not packet.size:
                    continue
                origin = packet.pts if origin is None else origin
                yield start + float((packet.pts - origin) * packet.time_base), packet
    except (av.FFmpegError, IndexError, OSError):
        return


__all__ = ["SUFFIX", "CopyWriter", "as_os_error", "boxes_of", "export", "playable_length", "read", "scan"]
