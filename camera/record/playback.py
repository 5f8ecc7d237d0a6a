"""Reading recordings back: frames between two times, paced MJPEG playback, and MP4 files.

An MP4 of a span (a download, an event's clip) is made by :func:`export`, the
one place that chooses how: copied when every segment of the span was
recorded by copy from one stream (the camera's own video and audio, its
times rewritten to start at 0), encoded from the frames otherwise.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import numpy as np

from .. import jpeg, mjpeg
from . import copy, formats
from .formats import COPY
from .h264 import H264Writer
from .index import EventRow, Segment
from .storage import Storage

# A pause in a recording longer than this is skipped in playback, not waited out.
MAX_GAP_SECONDS = 2.0
# Playback of a recording still being written waits this long for more before it ends.
FOLLOW_SECONDS = 3.0
# The longest span one MP4 download may cover.
MAX_EXPORT_SECONDS = 3600.0

Payload = bytes | np.ndarray


class NothingRecorded(LookupError):
    """No frame is stored for the time asked for."""


def frames_between(storage: Storage, segments: Iterable[Segment], start: float, end: float | None,
                   after: float | None = None, strict: bool = False) -> Iterator[tuple[float, Payload]]:
    """The frames of ``segments`` from ``start`` to ``end``, in time order, later than ``after``. A segment
    whose file is gone is skipped, or, if ``strict`` (a download, which must not pass a hole off as whole),
    raises FileNotFoundError."""
    last = float("-inf") if after is None else after
    for segment in segments:
        path = storage.path(segment.path)
        if not path.exists():
            if strict:
                raise FileNotFoundError(2, "a recording was deleted while it was being read", segment.path)
            continue
        for timestamp, payload in formats.read(segment.format, path, segment.start, start):
            if end is not None and timestamp > end:
                break
            if timestamp <= last:
                continue
            last = timestamp
            yield timestamp, payload


def export(storage: Storage, segments: list[Segment], start: float, end: float, path: Path,
           fps: float | None = None) -> int:
    """Make the MP4 of ``segments`` from ``start`` to ``end`` at ``path``: copied (no decode, no encode, the
    camera's audio with it) when all of them were recorded by copy from one stream, else encoded from their
    frames. It starts at 0 and lasts what it holds either way. The segments are kept from retention while
    it is made (see :meth:`ExportCache.reading`). How many frames went in; :class:`NothingRecorded` (a
    LookupError) if none."""
    with storage.exports.reading(segment.path for segment in segments):
        if segments and all(segment.format == COPY for segment in segments):
            try:
                return copy.export([(storage.path(segment.path), segment.start, None if segment.open else segment.end)
                                    for segment in segments], start, end, path)
            except ValueError:
                pass  # more than one stream (a camera restarted with other settings): encoded
            except LookupError as exc:
                raise NothingRecorded(str(exc)) from None
        return export_mp4(frames_between(storage, segments, start, end, strict=True), path, fps)


def clip_segments(storage: Storage, event: EventRow) -> list[Segment]:
    """Where an event's clip is: its own clip files, else the continuous recording around it."""
    own = storage.index.segments(event_id=event.id)
    if own:
        return own
    # Events per object at the same time share the clip of the first of them (camera/record/recorder.py).
    shared = storage.index.segments(event.camera, event.clip_start, event.clip_end, kind="clip")
    if shared:
        return shared
    return storage.index.segments(event.camera, event.clip_start, event.clip_end, kind="continuous")


def as_jpeg(payload: Payload, quality: int) -> bytes:
    return payload if isinstance(payload, bytes) else jpeg.encode(payload, quality)


def playback(storage: Storage, camera: str, start: float, quality: int,
             gone: Callable[[], bool] = lambda: False, sleep: Callable[[float], None] = time.sleep) -> Iterator[bytes]:
    """An MJPEG body: ``camera``'s recording from ``start``, paced as it was recorded.

    Gaps between recordings are skipped; a recording still being written
    is followed while it grows, and the stream ends :data:`FOLLOW_SECONDS`
    after the newest frame stored.
    """
    yield mjpeg.STREAM_START
    cursor: float | None = None
    anchor: tuple[float, float] | None = None  # (recording time, wall clock) of the pacing's start
    waited = 0.0
    while not gone():
        segments = storage.index.segments(camera, start if cursor is None else cursor)
        sent = False
        for timestamp, payload in frames_between(storage, segments, start, None, cursor):
            if anchor is None or timestamp - (cursor or timestamp) > MAX_GAP_SECONDS:
                anchor = (timestamp, time.monotonic())
            delay = anchor[1] + (timestamp - anchor[0]) - time.monotonic()
            if delay > 0:
                sleep(delay)
            if gone():
                return
            cursor = timestamp
            sent = True
            yield mjpeg.encode_part(as_jpeg(payload, quality), timestamp)
        if sent:
            waited = 0.0
            continue
        if waited >= FOLLOW_SECONDS:
            return
        sleep(0.5)
        waited += 0.5


def export_mp4(frames: Iterable[tuple[float, Payload]], path: Path, fps: float | None = None) -> int:
    """Encode ``frames`` into a new H.264 MP4 at ``path``, fragmented: each second goes to the file as it is
    made, so a request following the file sends it while it is made. How many frames went in.

    Raises :class:`NothingRecorded` when there is no frame (nothing is left at ``path`` then).
    """
    writer: H264Writer | None = None
    try:
        for timestamp, payload in frames:
            if writer is None:
                writer = H264Writer(path, timestamp, fps)
            writer.write(payload, timestamp)
        if writer is None:
            raise NothingRecorded("no frame is recorded in that time")
        writer.close()
        return writer.frames
    except BaseException:
        if writer is not None:
            with contextlib.suppress(Exception):  # the first error is the one to report
                writer.close()
            path.unlink(missing_ok=True)
        raise
