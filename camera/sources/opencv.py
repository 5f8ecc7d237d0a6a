"""Sources read through OpenCV: capture devices (``0``, ``/dev/video0``)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import cv2
import numpy as np

from ..base import BaseCamera
from ..errors import SourceError


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
        return open_capture(self.target, self.source)

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
