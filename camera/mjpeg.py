"""MJPEG framing: writing ``multipart/x-mixed-replace`` streams and reading them.

A stream we send looks like this::

    --frame\\r\\n
    Content-Type: image/jpeg\\r\\n
    Content-Length: 51234\\r\\n
    X-Timestamp: 1763840000.123456\\r\\n
    \\r\\n
    <JPEG bytes>\\r\\n
    --frame\\r\\n
    Content-Type: image/jpeg\\r\\n
    ...

The stream opens with a boundary (ffmpeg and ``cv2.VideoCapture`` refuse a
stream without one), and every part ends with the boundary that closes it:
Chromium shows a part only once the next boundary arrives, so writing it
right after the JPEG puts the newest frame on screen at once instead of one
frame late.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import BinaryIO

BOUNDARY = "frame"
CONTENT_TYPE = f"multipart/x-mixed-replace; boundary={BOUNDARY}"
STREAM_START = f"--{BOUNDARY}\r\n".encode()

# An upstream part larger than this is not a camera frame; stop reading.
# (A 4K frame at JPEG quality 95 is 3-4 MB.) Each camera may hold this much
# while it reads a part, so it bounds what a broken upstream costs.
MAX_PART_BYTES = 8 * 1024 * 1024
MAX_HEADER_LINES = 32
MAX_HEADER_LINE = 8192
# Lines are read at most this much at a time, so an upstream that sends
# one endless line costs this much memory, not the part limit, per read.
READ_CHUNK = 64 * 1024


class MjpegError(ValueError):
    """The upstream bytes are not a multipart MJPEG stream we can follow."""


def encode_part(jpeg: bytes, timestamp: float) -> bytes:
    """Return one complete part: headers, the JPEG and the closing boundary.

    Built once per frame and written unchanged to every viewer.
    """
    head = (
        "Content-Type: image/jpeg\r\n"
        f"Content-Length: {len(jpeg)}\r\n"
        f"X-Timestamp: {timestamp:.6f}\r\n"
        "\r\n"
    ).encode("ascii")
    return b"".join((head, jpeg, b"\r\n", STREAM_START))


def camera_header(name: str) -> bytes:
    """The header line that leads each part of a stream carrying several cameras.

    Written just before the shared part, whose own headers follow it.
    """
    return f"X-Camera: {name}\r\n".encode("ascii")


def boundary_from_content_type(content_type: str) -> str:
    """Extract the boundary from a ``multipart/x-mixed-replace`` Content-Type.

    Raises :class:`MjpegError` when the type is not multipart or names no
    boundary. Some cameras quote the boundary or repeat the leading ``--``
    in it; both are accepted.
    """
    if not content_type.lower().startswith("multipart/"):
        raise MjpegError(f"not a multipart stream: {content_type!r}")
    match = re.search(r'boundary\s*=\s*"?([^";,]+)"?', content_type, re.IGNORECASE)
    if not match:
        raise MjpegError(f"no boundary in Content-Type: {content_type!r}")
    boundary = match.group(1).strip()
    while boundary.startswith("--"):
        boundary = boundary[2:]
    if not boundary:
        raise MjpegError(f"empty boundary in Content-Type: {content_type!r}")
    return boundary


def read_parts(stream: BinaryIO, boundary: str) -> Iterator[bytes]:
    """Yield the body of each part of a multipart stream, unchanged.

    ``stream`` needs ``readline`` and ``read`` (a socket file or an HTTP
    response). A part with ``Content-Length`` is read exactly; one without
    runs up to the next boundary line. Ends at the closing boundary or EOF;
    raises :class:`MjpegError` on bytes that do not follow the format.
    """
    marker = b"--" + boundary.encode("latin-1")
    line = _skip_to_boundary(stream, marker)
    while line is not None:
        if line.strip() == marker + b"--":
            return
        headers = _read_headers(stream)
        if headers is None:
            return
        length = headers.get("content-length")
        if length is not None:
            body = _read_exact(stream, _parse_length(length))
            if body is None:
                return
            yield body
            line = _skip_to_boundary(stream, marker)
        else:
            body, line = _read_until_boundary(stream, marker)
            if body:
                yield body


def _is_boundary(line: bytes, marker: bytes) -> bool:
    stripped = line.strip()
    return stripped == marker or stripped == marker + b"--"


def _skip_to_boundary(stream: BinaryIO, marker: bytes) -> bytes | None:
    """Read past anything else to the next boundary line; None at EOF."""
    skipped = 0
    line_start = True
    while True:
        line = stream.readline(READ_CHUNK)
        if not line:
            return None
        if line_start and _is_boundary(line, marker):
            return line
        line_start = line.endswith(b"\n")
        skipped += len(line)
        if skipped > MAX_PART_BYTES:
            raise MjpegError("no boundary found in the upstream stream")


def _read_headers(stream: BinaryIO) -> dict[str, str] | None:
    headers: dict[str, str] = {}
    for _ in range(MAX_HEADER_LINES):
        line = stream.readline(MAX_HEADER_LINE)
        if not line:
            return None
        if not line.endswith(b"\n"):
            raise MjpegError(f"part header line longer than {MAX_HEADER_LINE} bytes")
        line = line.strip()
        if not line:
            return headers
        name, sep, value = line.decode("latin-1").partition(":")
        if not sep:
            raise MjpegError(f"bad part header line: {line[:80]!r}")
        headers[name.strip().lower()] = value.strip()
    raise MjpegError("too many part header lines")


def _parse_length(value: str) -> int:
    try:
        length = int(value)
    except ValueError:
        raise MjpegError(f"bad Content-Length: {value!r}") from None
    if not 0 <= length <= MAX_PART_BYTES:
        raise MjpegError(f"part of {length} bytes is out of range")
    return length


def _read_exact(stream: BinaryIO, length: int) -> bytes | None:
    chunks = []
    remaining = length
    while remaining:
        chunk = stream.read(remaining)
        if not chunk:
            return None
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def _read_until_boundary(stream: BinaryIO, marker: bytes) -> tuple[bytes, bytes | None]:
    """Collect lines up to the next boundary; the CRLF before it is not body."""
    body = bytearray()
    line_start = True
    while True:
        line = stream.readline(READ_CHUNK)
        if not line:
            return bytes(body), None
        if line_start and _is_boundary(line, marker):
            if body.endswith(b"\r\n"):
                del body[-2:]
            elif body.endswith(b"\n"):
                del body[-1:]
            return bytes(body), line
        line_start = line.endswith(b"\n")
        body += line
        if len(body) > MAX_PART_BYTES:
            raise MjpegError("upstream part has no end")
