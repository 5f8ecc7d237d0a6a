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

import av
import numpy as np

from .h264 import as_os_error

SUFFIX = ".copy.mp4"


class CopyWriter:
    """Appends a camera's fMP4 fragments to a new file that begins with ``init``."""

    def __init__(self, path: Path, init: bytes) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        # Unbuffered: a fragment is in the OS's hands as soon as write() returns.
        self._file = open(path, "xb", buffering=0)  # noqa: SIM115 - closed in close()
        self.size = 0
        self.frames = 0
        self.first: float | None = None
        self.last: float | None = None
        self._append(init)

    def write(self, data: bytes, timestamp: float | None) -> None:
        """Append one fragment; ``timestamp`` (when its frame came) is None for a fragment of audio alone."""
        self._append(data)
        if timestamp is None:
            return
        self.frames += 1
        if self.first is None:
            self.first = timestamp
        self.last = timestamp

    def _append(self, data: bytes) -> None:
        written = self._file.write(data)
        if written != len(data):
            # A disk that filled up: leave no partial fragment behind.
            self._file.truncate(self.size)
            raise OSError(28, "No space left on device (short write)")
        self.size += len(data)

    def close(self) -> None:
        """Flush to the disk and close; safe to call twice."""
        if self._file.closed:
            return
        try:
            os.fsync(self._file.fileno())
        finally:
            self._file.close()


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


__all__ = ["SUFFIX", "CopyWriter", "as_os_error", "playable_length", "read", "scan"]
