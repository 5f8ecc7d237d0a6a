"""H.264 segments: the compact recording format, through PyAV (FFmpeg's libx264).

Each frame is decoded from JPEG once and encoded into a fragmented MP4 (a
fragment per keyframe, one keyframe a second), so a process killed at any
moment leaves a file that plays up to its last whole fragment. Frame times
are kept as the stream's timestamps, in milliseconds from the segment's start.
"""

from __future__ import annotations

import errno
import logging
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from .. import jpeg
from .safeopen import open_nofollow

SUFFIX = ".mp4"
MS = Fraction(1, 1000)
# Fragment boundaries, and how much a kill can lose at most.
KEYFRAME_SECONDS = 1.0

logging.getLogger("libav").setLevel(logging.ERROR)


class H264Writer:
    """Encodes frames into a new MP4 at ``path`` (fragmented while recording); it starts at ``start`` (epoch seconds)."""

    def __init__(self, path: Path, start: float, fps: float | None, fragmented: bool = True) -> None:
        self.path = path
        self.start = start
        self._fps = fps or 30.0
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists():
            raise FileExistsError(str(path))
        # A file to download is whole: its index goes first, so it plays while it loads.
        flags = "frag_keyframe+empty_moov+default_base_moof" if fragmented else "+faststart"
        # flush_packets: each fragment goes to the OS as soon as it is made, not when a buffer fills.
        self._container = av.open(str(path), "w", format="mp4", options={"movflags": flags, "flush_packets": "1"})
        self._stream: av.VideoStream | None = None
        self._last_pts = -1
        self.frames = 0
        self.first: float | None = None
        self.last: float | None = None

    @property
    def size(self) -> int:
        try:
            return self.path.stat().st_size
        except OSError:
            return 0

    def _open_stream(self, width: int, height: int) -> av.VideoStream:
        stream = self._container.add_stream("libx264", rate=round(self._fps))
        # H.264 in 4:2:0 needs even sides.
        stream.width, stream.height = width - width % 2, height - height % 2
        stream.pix_fmt = "yuv420p"
        stream.codec_context.time_base = MS
        stream.time_base = MS
        keyint = str(max(1, round(self._fps * KEYFRAME_SECONDS)))
        stream.options = {"preset": "veryfast", "tune": "zerolatency", "crf": "28",
                          "g": keyint, "keyint_min": keyint}
        return stream

    def write(self, data: bytes | np.ndarray, timestamp: float) -> None:
        try:
            self._write(data, timestamp)
        except av.FFmpegError as exc:
            raise as_os_error(exc) from exc

    def _write(self, data: bytes | np.ndarray, timestamp: float) -> None:
        image = jpeg.decode(data) if isinstance(data, bytes) else data
        if self._stream is None:
            self._stream = self._open_stream(image.shape[1], image.shape[0])
        stream = self._stream
        if image.shape[1] != stream.width or image.shape[0] != stream.height:
            image = jpeg.resize(image, stream.width, stream.height)
        pts = max(self._last_pts + 1, round((timestamp - self.start) * 1000))
        self._last_pts = pts
        frame = av.VideoFrame.from_ndarray(image, format="bgr24")
        frame.pts = pts
        frame.time_base = MS
        for packet in stream.encode(frame):
            self._container.mux(packet)
        self.frames += 1
        if self.first is None:
            self.first = timestamp
        self.last = timestamp

    def close(self) -> None:
        """Flush the encoder and close the file; safe to call twice."""
        if self._container is None:
            return
        container, self._container = self._container, None
        try:
            if self._stream is not None:
                for packet in self._stream.encode():
                    container.mux(packet)
        except av.FFmpegError as exc:
            raise as_os_error(exc) from exc
        finally:
            try:
                container.close()
            except av.FFmpegError:
                pass


def as_os_error(error: av.FFmpegError) -> OSError:
    """FFmpeg's error as the OSError it is (a full disk is ENOSPC either way), so callers handle one kind."""
    return OSError(error.errno or errno.EIO, error.strerror or str(error))


def scan(path: Path, start: float) -> list[float]:
    """The times of the frames a segment holds, up to the last whole fragment."""
    times: list[float] = []
    try:
        with open_nofollow(path) as file, av.open(file) as container:
            stream = container.streams.video[0]
            for packet in container.demux(stream):
                if packet.pts is not None:
                    times.append(start + float(packet.pts * packet.time_base))
    except (av.FFmpegError, IndexError, OSError):
        pass
    times.sort()
    return times


def read(path: Path, start: float, after: float = 0.0) -> Iterator[tuple[float, np.ndarray]]:
    """The frames of a segment from time ``after`` on, as (time, BGR image) pairs."""
    try:
        with open_nofollow(path) as file, av.open(file) as container:
            for frame in container.decode(video=0):
                if frame.pts is None:
                    continue
                timestamp = start + float(frame.pts * frame.time_base)
                if timestamp >= after:
                    yield timestamp, frame.to_ndarray(format="bgr24")
    except (av.FFmpegError, IndexError, OSError):
        return
