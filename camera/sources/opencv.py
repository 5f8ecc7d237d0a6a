"""Sources read through OpenCV: capture devices, video files and stream URLs."""

from __future__ import annotations

import math
import os
from collections.abc import Iterator

import cv2
import numpy as np

from ..base import BaseCamera
from ..errors import SourceError
from ..pacing import Pacer

# Open and read timeout for URLs: OpenCV/FFmpeg otherwise waits 30 s on one
# that does not answer. Below the camera's 5 s stall timeout, so the source
# reports its own error first.
URL_TIMEOUT_MS = 4000
FALLBACK_FILE_FPS = 25.0


def quiet_native_logs() -> None:
    """Silence what OpenCV and its FFmpeg print on their own (``[tcp @ 0x...] Connection ... failed``,
    ``[ WARN:0@1.2] ...``): camstream reports the same trouble in its own log, once, with the camera's name.

    FFmpeg's level is read when OpenCV first opens a capture, so call this before any camera starts.
    """
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # AV_LOG_QUIET
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)


def open_capture(target: int | str, description: str, params: tuple[int, ...] = ()) -> cv2.VideoCapture:
    """Open ``target`` with OpenCV or raise :class:`SourceError` naming ``description``."""
    capture = cv2.VideoCapture(target, cv2.CAP_ANY, list(params))
    if not capture.isOpened():
        capture.release()
        raise SourceError(f"could not open {description}")
    return capture


class OpenCVCamera(BaseCamera):
    """A capture device (``0``, ``/dev/video0``) or a URL OpenCV/FFmpeg can read (``rtsp://``).

    Live sources pace themselves; the capture thread reads as fast as frames
    come so that OpenCV's own buffer never holds stale ones.
    """

    def __init__(self, name: str, target: int | str, **options) -> None:
        super().__init__(name, source=str(target), **options)
        self.target = target

    def _open(self) -> cv2.VideoCapture:
        params: tuple[int, ...] = ()
        if isinstance(self.target, str) and "://" in self.target:
            params = (
                cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, URL_TIMEOUT_MS,
                cv2.CAP_PROP_READ_TIMEOUT_MSEC, URL_TIMEOUT_MS,
            )
        return open_capture(self.target, self.source, params)

    def frames(self) -> Iterator[np.ndarray]:
        capture = self._open()
        try:
            while True:
                ok, image = capture.read()
                if not ok:
                    raise SourceError(f"{self.source} stopped sending frames")
                yield image
        finally:
            capture.release()


class VideoFileCamera(OpenCVCamera):
    """A video file played at its own frame rate, from the start again at its end."""

    def __init__(self, name: str, path: str, *, loop: bool = True, **options) -> None:
        super().__init__(name, path, **options)
        self.loop = loop

    def frames(self) -> Iterator[np.ndarray]:
        pacer: Pacer | None = None
        while True:
            capture = self._open()
            try:
                pacer = pacer or Pacer(file_fps(capture))
                count = 0
                while True:
                    ok, image = capture.read()
                    if not ok:
                        break
                    count += 1
                    pacer.wait()
                    yield image
            finally:
                capture.release()
            if count == 0:
                raise SourceError(f"no frames could be read from {self.source}")
            if not self.loop:
                return


def file_fps(capture: cv2.VideoCapture) -> float:
    """The frame rate a file declares, or a common default when it declares none."""
    fps = capture.get(cv2.CAP_PROP_FPS)
    if not fps or math.isnan(fps) or not 0 < fps <= 240:
        return FALLBACK_FILE_FPS
    return fps
