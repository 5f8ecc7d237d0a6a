"""Frame files: recorded JPEG frames, one after another, each stamped with its capture time.

A frame file is a plain MJPEG elementary stream (``ffplay -f mjpeg``, VLC
and OpenCV read it), in which every JPEG carries one extra comment segment
right after its start marker::

    FF D8  FF FE 00 12  "CSF1" <capture time: float64> <frame length: uint32>  <rest of the JPEG>

The comment makes the file its own index: a reader hops from frame to frame
by their lengths without scanning the picture data, knows each frame's
time, and recognises a frame cut short by a crash (the file ends before its
length), which it drops. Frames are written with one ``write`` each, so a
process killed at any moment leaves every frame written before it in the
file. Frames are stored as the camera encoded them: nothing is decoded.
"""

from __future__ import annotations

import math
import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from .appender import Appender
from .safeopen import open_nofollow

MAGIC = b"CSF1"
_STAMP = struct.Struct(">4sdI")
# SOI, COM marker, COM length (2 + the stamp).
_HEAD = b"\xff\xd8\xff\xfe" + struct.pack(">H", 2 + _STAMP.size)
HEAD_SIZE = len(_HEAD) + _STAMP.size
# No camera frame is this large (see camera.mjpeg.MAX_PART_BYTES); a longer length is damage.
MAX_FRAME_BYTES = 16 * 1024 * 1024
SUFFIX = ".mjpeg"


class FrameFileError(ValueError):
    """Bytes that are not a frame file."""


def stamp(jpeg: bytes, timestamp: float) -> bytes:
    """``jpeg`` with its time and length written into a comment after the start marker."""
    if jpeg[:2] != b"\xff\xd8":
        raise FrameFileError("not a JPEG: it does not start with FF D8")
    total = HEAD_SIZE + len(jpeg) - 2
    return b"".join((_HEAD, _STAMP.pack(MAGIC, timestamp, total), jpeg[2:]))


def stamp_of(data: bytes) -> float | None:
    """The capture time stamped into a recorded JPEG, None for a JPEG without a stamp."""
    parsed = _read_head(data[:HEAD_SIZE])
    return parsed[0] if parsed else None


def unstamp(data: bytes) -> bytes:
    """A recorded JPEG as the camera made it, without the stamp."""
    return data[:2] + data[HEAD_SIZE:] if stamp_of(data) is not None else data


@dataclass(frozen=True)
class FrameRef:
    """Where one frame lies in a frame file."""

    offset: int
    timestamp: float
    length: int


def _read_head(head: bytes) -> tuple[float, int] | None:
    """(time, length) from the first :data:`HEAD_SIZE` bytes of a frame, None if they are no frame's."""
    if len(head) < HEAD_SIZE or not head.startswith(_HEAD):
        return None
    magic, timestamp, length = _STAMP.unpack_from(head, len(_HEAD))
    if magic != MAGIC or not HEAD_SIZE < length <= MAX_FRAME_BYTES or not math.isfinite(timestamp):
        return None
    return timestamp, length


def scan(path: str | os.PathLike[str]) -> list[FrameRef]:
    """Every whole frame of the file, in order; a cut-off last frame is left out.

    Damage in the middle (bytes that are no frame's head) is skipped up to
    the next frame's head.
    """
    with open_nofollow(path) as file:
        return _scan(file)


def _scan(file: BinaryIO) -> list[FrameRef]:
    refs: list[FrameRef] = []
    data_size = os.fstat(file.fileno()).st_size
    offset = 0
    while offset + HEAD_SIZE <= data_size:
        file.seek(offset)
        parsed = _read_head(file.read(HEAD_SIZE))
        if parsed is None:
            offset = _resync(file, offset + 1, data_size)
            continue
        timestamp, length = parsed
        if offset + length > data_size:
            break
        refs.append(FrameRef(offset, timestamp, length))
        offset += length
    return refs


def _resync(file: object, offset: int, data_size: int) -> int:
    """The offset of the next frame head at or after ``offset``, or the end of the file."""
    chunk_size = 1 << 20
    while offset < data_size:
        file.seek(offset)  # type: ignore[attr-defined]
        chunk = file.read(chunk_size + len(_HEAD))  # type: ignore[attr-defined]
        found = chunk.find(_HEAD)
        if found >= 0:
            return offset + found
        offset += chunk_size
    return data_size


def read(path: str | os.PathLike[str], refs: list[FrameRef]) -> Iterator[tuple[float, bytes]]:
    """The frames ``refs`` point at, as (time, JPEG) pairs; the JPEG keeps its stamp, which decoders skip."""
    with open_nofollow(path) as file:
        for ref in refs:
            file.seek(ref.offset)
            data = file.read(ref.length)
            if len(data) < ref.length:
                return
            yield ref.timestamp, data


def repair(path: str | os.PathLike[str]) -> list[FrameRef]:
    """Cut a frame file after its last whole frame (what a crash left half written); return its frames."""
    with open_nofollow(path, write=True) as file:  # the file itself, never where a symlink points
        refs = _scan(file)
        end = refs[-1].offset + refs[-1].length if refs else 0
        if os.fstat(file.fileno()).st_size != end:
            os.ftruncate(file.fileno(), end)
    return refs


class FrameWriter(Appender):
    """Appends stamped frames to a new frame file, one ``write`` per frame, straight to the OS."""

    def write(self, jpeg: bytes, timestamp: float) -> None:
        self._append(stamp(jpeg, timestamp))
        self.frames += 1
        if self.first is None:
            self.first = timestamp
        self.last = timestamp
