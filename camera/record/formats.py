"""The ways a segment is stored, behind one face: ``jpeg`` (frame files, as captured), ``h264`` (encoded
here) and ``copy`` (a passed-through camera's own video, as it came; see .copy)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

import numpy as np

from . import copy, framefile, h264

# What RECORD_FORMAT may ask for; ``copy`` is not asked for: a camera that passes its video through records so.
FORMATS = ("jpeg", "h264")
COPY = "copy"
# ``copy`` first: its suffix ends like h264's, and a file is told by its suffix.
SUFFIXES = {COPY: copy.SUFFIX, "jpeg": framefile.SUFFIX, "h264": h264.SUFFIX}


class SegmentWriter(Protocol):
    frames: int
    first: float | None
    last: float | None

    @property
    def size(self) -> int: ...

    def write(self, data: bytes, timestamp: float) -> None: ...

    def close(self) -> None: ...


def open_writer(fmt: str, path: Path, start: float, fps: float | None) -> SegmentWriter:
    if fmt == "h264":
        return h264.H264Writer(path, start, fps)
    return framefile.FrameWriter(path)


def format_of(path: Path) -> str | None:
    return next((fmt for fmt, suffix in SUFFIXES.items() if path.name.endswith(suffix)), None)


def frame_times(fmt: str, path: Path, start: float) -> list[float]:
    """The times of the whole frames in a segment file; a frame file cut by a crash is cut clean first."""
    if fmt == "h264":
        return h264.scan(path, start)
    if fmt == COPY:
        return copy.scan(path, start)
    return [ref.timestamp for ref in framefile.repair(path)]


def read(fmt: str, path: Path, start: float, after: float) -> Iterator[tuple[float, bytes | np.ndarray]]:
    """The frames of a segment from time ``after`` on: JPEG bytes for frame files, images for H.264."""
    if fmt == "h264":
        yield from h264.read(path, start, after)
        return
    if fmt == COPY:
        yield from copy.read(path, start, after)
        return
    refs = [ref for ref in framefile.scan(path) if ref.timestamp >= after]
    yield from framefile.read(path, refs)
