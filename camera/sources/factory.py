"""Turning a source string (``pattern``, ``0``, ``movie.mp4``, ``rtsp://...``) into a camera."""

from __future__ import annotations

import logging
import os
import sys
from urllib.parse import unquote, urlsplit

import cv2

from ..base import BaseCamera
from ..errors import SourceError
from ..limits import MAX_PICTURE_PIXELS, MIN_PICTURE_PIXELS, checked
from ..redact import redact_url
from ..suggest import did_you_mean
from .files import VideoFileCamera
from .hardware import NONE
from .opencv import OpenCVCamera
from .packets import PacketCamera
from .pattern import PatternCamera
from .relay import HttpCamera

log = logging.getLogger("camstream.camera")

# Network streams: read as packets, their H.264 or H.265 passed through (camera/sources/packets.py).
PACKET_SCHEMES = {"rtsp", "rtsps", "rtmp", "rtmps", "rtp", "udp", "tcp", "srt"}
HTTP_SCHEMES = {"http", "https"}
# The source strings that are words, not files.
SOURCE_KINDS = ("auto", "pattern")


def create_camera(name: str, source: str = "auto", *, audio: bool = True, hwaccel: str = NONE,
                  max_picture_pixels: int | None = None, **options) -> BaseCamera:
    """Build the camera for ``source``; ``options`` go to :class:`BaseCamera`; ``audio`` says whether a
    source read as packets passes its AAC audio through with its video, ``hwaccel`` which device decodes its
    pictures (see camera/sources/hardware.py), ``max_picture_pixels`` the biggest picture such a source may
    claim before it is refused (``--max-picture-pixels``; camera.limits.MAX_PIXELS when None).

    Raises :class:`SourceError` for a source that can never work, such as a
    missing file or an unknown URL scheme. A device or URL that is merely
    unreachable right now is accepted: it fails (and says why) when watched.
    """
    camera = _create(name, source, audio=audio, hwaccel=hwaccel, **options)
    if max_picture_pixels is not None and isinstance(camera, PacketCamera):
        # Read when the stream is opened and at each new SPS, never before: set here, after construction.
        camera.max_pixels = checked("max_picture_pixels", max_picture_pixels, int, MIN_PICTURE_PIXELS,
                                    MAX_PICTURE_PIXELS)
    return camera


def _create(name: str, source: str, *, audio: bool, hwaccel: str, **options) -> BaseCamera:
    source = source.strip()
    if not source:
        raise SourceError("empty source")
    lowered = source.lower()
    if lowered == "auto":
        return _create(name, _auto_source(), audio=audio, hwaccel=hwaccel, **options)
    if lowered == "pattern":
        return PatternCamera(name, source="pattern", **options)
    if source.isdigit() or source.startswith("/dev/video"):
        node = f"/dev/video{source}" if source.isdigit() else source
        if sys.platform.startswith("linux") and not os.path.exists(node):
            # Said at start, not first when someone watches; it may yet be plugged in, so it is tried then.
            log.warning("camera %s: there is no %s on this machine (yet); it is tried whenever someone watches",
                        name, node)
        return OpenCVCamera(name, int(source) if source.isdigit() else source, **options)
    scheme = urlsplit(source).scheme.lower() if "://" in source else ""
    if scheme in HTTP_SCHEMES:
        return HttpCamera(name, source, audio=audio, hwaccel=hwaccel, **options)
    if scheme in PACKET_SCHEMES:
        return PacketCamera(name, source, audio=audio, hwaccel=hwaccel, **options)
    if scheme == "file":
        return _create(name, unquote(urlsplit(source).path), audio=audio, hwaccel=hwaccel, **options)
    if scheme:
        schemes = ["rtsp", "http", "https", "file", *sorted(PACKET_SCHEMES - {"rtsp"})]
        raise SourceError(f"unknown source scheme {scheme!r} in {redact_url(source)}{did_you_mean(scheme, schemes)}")
    return _file_camera(name, source, audio=audio, hwaccel=hwaccel, **options)


def _file_camera(name: str, path: str, **options) -> VideoFileCamera:
    if not os.path.exists(path):
        # A word with no folder or extension was more likely a mistyped kind of source than a file.
        kinds = () if os.sep in path or "." in path else SOURCE_KINDS
        raise SourceError(f"no such file: {path}{did_you_mean(path, kinds)}")
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
