"""JPEG encoding, resizing and reading a JPEG's size without decoding it."""

from __future__ import annotations

import cv2
import numpy as np

from .limits import MAX_PIXELS, MAX_SIDE

_SOF_MARKERS = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


class JpegError(ValueError):
    """Bytes that are not a JPEG we can read."""


def encode(image: np.ndarray, quality: int) -> bytes:
    """Encode a BGR (or grayscale) image as JPEG at ``quality`` (1-100)."""
    ok, buffer = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise JpegError("OpenCV could not encode the frame as JPEG")
    return buffer.tobytes()


def decode(data: bytes, reduced: bool = False) -> np.ndarray:
    """Decode JPEG bytes to a BGR image; ``reduced``: a grey eighth-size one, to check that it decodes.

    Check the size with :func:`check_size` first: the header decides how
    much memory the decode takes.
    """
    flags = cv2.IMREAD_REDUCED_GRAYSCALE_8 if reduced else cv2.IMREAD_COLOR
    image = cv2.imdecode(np.frombuffer(data, np.uint8), flags)
    if image is None:
        raise JpegError("not a decodable JPEG")
    return image


def decode_quarter(data: bytes) -> np.ndarray:
    """Decode JPEG bytes to a BGR image a quarter as wide and high, in a fraction of the time."""
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_REDUCED_COLOR_4)
    if image is None:
        raise JpegError("not a decodable JPEG")
    return image


def check_size(width: int, height: int) -> None:
    """Raise :class:`JpegError` for a picture too large to decode (or of no size), as its header says."""
    if not (0 < width <= MAX_SIDE and 0 < height <= MAX_SIDE and width * height <= MAX_PIXELS):
        raise JpegError(f"a {width}x{height} picture is larger than camstream takes "
                        f"({MAX_SIDE} pixels a side, {MAX_PIXELS // 1_000_000} million in all)")


def target_size(width: int, height: int, want_width: int | None, want_height: int | None) -> tuple[int, int]:
    """The output size for a frame of ``width`` x ``height``.

    With one side given the other keeps the aspect ratio; with neither the
    frame keeps its size.
    """
    if want_width and want_height:
        return want_width, want_height
    if want_width:
        return want_width, max(1, round(height * want_width / width))
    if want_height:
        return max(1, round(width * want_height / height)), want_height
    return width, height


def resize(image: np.ndarray, width: int | None, height: int | None) -> np.ndarray:
    """Resize to the configured size, or return the image unchanged."""
    h, w = image.shape[:2]
    size = target_size(w, h, width, height)
    if size == (w, h):
        return image
    shrinking = size[0] * size[1] < w * h
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)


def image_size(data: bytes) -> tuple[int, int]:
    """Return ``(width, height)`` read from a JPEG's frame header.

    Walks the marker segments up to the first start-of-frame; raises
    :class:`JpegError` if the bytes are not a JPEG.
    """
    if data[:2] != b"\xff\xd8":
        raise JpegError("missing JPEG start-of-image marker")
    pos = 2
    end = len(data)
    while pos + 4 <= end:
        if data[pos] != 0xFF:
            raise JpegError("corrupt JPEG marker segment")
        marker = data[pos + 1]
        if marker == 0xFF:
            pos += 1
            continue
        if marker in (0x01, *range(0xD0, 0xD8)):
            pos += 2
            continue
        length = int.from_bytes(data[pos + 2 : pos + 4], "big")
        if marker in _SOF_MARKERS:
            if pos + 9 > end:
                break
            height = int.from_bytes(data[pos + 5 : pos + 7], "big")
            width = int.from_bytes(data[pos + 7 : pos + 9], "big")
            return width, height
        pos += 2 + length
    raise JpegError("no JPEG frame header found")
