"""Turning a source string (``pattern``, ``0``, ``movie.mp4``, ``rtsp://...``) into a camera."""

from __future__ import annotations

import logging
import os
import sys
from urllib.parse import unquote, urlsplit

import cv2

from ..base import BaseCamera
from ..errors import SourceError
from ..redact import redact_url
from .files import VideoFileCamera
from .opencv import OpenCVCamera
from .packets import PacketCamera
from .pattern import PatternCamera
from .relay import HttpCamera

log = logging.getLogger("camstream.camera")

# Network streams: read as packets, their H.264 or H.265 passed through (camera/sources/packets.py).
PACKET_SCHEMES = {"rtsp", "rtsps", "rtmp", "rtmps", "rtp", "udp", "tcp", "srt"}
HTTP_SCHEMES = {"http", "https"}


def create_camera(name: str, source: str = "auto", *, audio: bool = True, **options) -> BaseCamera:
    """Build the camera for ``source``; ``options`` go to :class:`BaseCamera`; ``audio`` says whether a
    source read as packets passes its AAC audio through with its video.

    Raises :class:`SourceError` for a source that can never work, such as a
    missing file or an unknown URL scheme. A device or URL that is merely
    unreachable right now is accepted: it fails (and says why) when watched.
    """
    source = source.strip()
    if not source:
        raise SourceError("empty source")
    lowered = source.lower()
    if lowered == "auto":
        return create_camera(name, _auto_source(), audio=audio, **options)
    if lowered == "pattern":
        return PatternCamera(name, source="pattern", **options)
    if source.isdigit():
        return OpenCVCamera(name, int(source), **options)
    if source.startswith("/dev/video"):
        return OpenCVCamera(name, source, **options)
    scheme = urlsplit(source).scheme.lower() if "://" in source else ""
    if scheme in HTTP_SCHEMES:
        return HttpCamera(name, source, audio=audio, **options)
    if scheme in PACKET_SCHEMES:
        return PacketCamera(name, source, audio=audio, **options)
    if scheme == "file":
        return create_camera(name, unquote(urlsplit(source).path), audio=audio, **options)
    if scheme:
        raise SourceError(f"unknown source scheme {scheme!r} in {redact_url(source)}")
    return _file_camera(name, source, audio=audio, **options)


def _file_camera(name: str, path: str, **options) -> VideoFileCamera:
    if not os.path.exists(path):
        raise SourceError(f"no such file: {path}")
    if not os.path.isfile(path):
        raise SourceError(f"not a video file: {path}")
    if not os.access(path, os.R_OK):
        raise SourceError(f"cannot read file: {path}")
    return VideoFileCamera(name, path, **options)


def _auto_source() -> str:
    """Device 0 if it opens, else the test pattern; says which in one log line."""
    if _device_opens(0):
        log.info("source auto: using capture device 0")
        return "0"
    log.info("source auto: no capture device 0, using the test pattern")
    return "pattern"


def _device_opens(index: int) -> bool:
    # Checking the node first keeps OpenCV from printing warnings on boxes
    # without a camera.
    if sys.platform.startswith("linux") and not os.path.exists(f"/dev/video{index}"):
        return False
    capture = cv2.VideoCapture(index)
    try:
        return capture.isOpened()
    finally:
        capture.release()
