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

from ..media.boxes import fragment_info, tracks
from .appender import Appender
from .h264 import as_os_error

SUFFIX = ".copy.mp4"


class CopyWriter(Appender):
    """Appends a camera's fMP4 fragments to a new file that begins with ``init``."""

    def __init__(self, path: Path, init: bytes) -> None:
        super().__init__(path)
        self._origin: float | None = None
        self._append(init)

    def write(self, data: bytes, timestamp: float | None, stream_time: float | None = None) -> None:
        """Append one fragment; ``timestamp`` (when its frame came) is None for a fragment of audio alone.

        The file's frame times are its first frame's ``timestamp`` plus each frame's ``stream_time`` (the
        camera's own clock) since the first, as :func:`scan` reads them back; a frame's arrival time would
        drift from that whenever packets come in bursts."""
        self._append(data)
        if timestamp is None:
            return
        self.frames += 1
        if self.first is None:
            self.first, self._origin = timestamp, stream_time
        if stream_time is None or self._origin is None:
            self.last = timestamp
        else:
            self.last = self.first + max(0.0, stream_time - self._origin)


def playable_length(path: Path) -> int:
    """How many bytes at the start of a segment file (one still being written, too) are whole boxes that end
    with a whole fragment: what a player may be handed of it now."""
    end = at = 0
    with open(path, "rb") as file:
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


def boxes_of(path: Path) -> tuple[bytes, list[tuple[bytes, bytes]]]:
    """A segment file's init segment and its whole fragments (``moof``, ``mdat``), in order."""
    with open(path, "rb") as file:
        init, fragments = _fragments(file, playable_length(path))
        return init, [(moof, _read(file, *mdat)) for moof, mdat in fragments]


def _fragments(file: BinaryIO, length: int) -> tuple[bytes, Iterator[tuple[bytes, tuple[int, int]]]]:
    """The init segment of a segment file open as ``file`` (its first ``length`` bytes whole), and its
    fragments as (``moof``, where its ``mdat`` is): a fragment's picture is read only when it is wanted."""
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

    def fragments() -> Iterator[tuple[bytes, tuple[int, int]]]:
        moof = None
        for kind, start, size in places:
            if kind == b"moof":
                moof = _read(file, start, size)
            elif kind == b"mdat" and moof is not None:
                yield moof, (start, size)
                moof = None

    return init, fragments()


def _read(file: BinaryIO, at: int, size: int) -> bytes:
    file.seek(at)
    return file.read(size)


def export(segments: list[tuple[Path, float]], start: float, end: float, path: Path) -> int:
    """Copy what ``segments`` (file, start time) hold from the keyframe at or before ``start`` to ``end`` into one
    MP4 at ``path``: their init segment, then their fragments as they are, each written as it is found (a file
    followed as it grows is sent from its first fragments on). No frame is decoded or encoded; the fragments'
    own times go on from one segment to the next, as the camera's stream did. How many frames went in; raises
    ValueError if the segments are of different streams (their init segments differ), and LookupError if
    nothing is in the span (nothing is left at ``path`` then)."""
    init: bytes | None = None
    frames = 0
    # Before the start: the fragments from the last keyframe at or before it (one GOP), and their frame count.
    waiting: list[bytes] = []
    waiting_frames = 0
    with open(path, "wb") as out:
        for name, segment_start in segments:
            with open(name, "rb") as file:
                this_init, fragments = _fragments(file, playable_length(name))
                if init is None:
                    init = this_init
                elif this_init != init:
                    raise ValueError("the span holds more than one stream of the camera")
                video = next((track for track in tracks(init) if track.kind == "vide"), None)
                if video is None:
                    continue
                origin = None
                for moof, mdat in fragments:
                    info = fragment_info(moof, video)
                    if info is not None:  # else audio alone: it goes with the frames around it
                        origin = info.decode_time if origin is None else origin
                        at = segment_start + (info.decode_time - origin) / video.timescale
                        if at > end:
                            break
                        if at <= start and info.keyframe:
                            waiting, waiting_frames = [], 0
                    if not frames and (info is None or at <= start):
                        if waiting or info is not None and info.keyframe:
                            waiting.append(moof + _read(file, *mdat))
                            waiting_frames += info is not None
                        continue
                    if not frames:
                        out.write(init)
                        out.writelines(waiting)
                        frames, waiting = waiting_frames, []
                    out.write(moof + _read(file, *mdat))
                    out.flush()
                    frames += info is not None
        if not frames and waiting_frames and init is not None:  # nothing after the start: the span's GOP
            out.write(init)
            out.writelines(waiting)
            frames = waiting_frames
    if not frames:
        path.unlink(missing_ok=True)
        raise LookupError("no frame is recorded in that time")
    return frames


def scan(path: Path, start: float) -> list[float]:
    """The times of the frames a segment holds, up to its last whole fragment."""
    return [timestamp for timestamp, _ in _packets(path, start)]


def read(path: Path, start: float, after: float = 0.0) -> Iterator[tuple[float, np.ndarray]]:
    """The frames of a segment from time ``after`` on, as (time, BGR image) pairs (decoded: for playback and
    for exporting what is not copied)."""
    try:
        with av.open(str(path)) as container:
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
        with av.open(str(path)) as container:
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
