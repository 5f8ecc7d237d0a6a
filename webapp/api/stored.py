"""What the events and recordings routes share: the storage, times in queries, MP4 files, limits."""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from flask import Response, abort, current_app, request

from camera.record import NothingRecorded, Storage
from camera.record.exports import Busy, Making

from ..runtime.registry import runtime_of
from ..serve.files import file_response, followed
from .common import NO_STORE, unavailable, whole_number
from .errors import json_error

log = logging.getLogger(__name__)

# Times before 2000 or after 2200 are no camera's.
EARLIEST, LATEST = 946684800.0, 7258118400.0


def storage() -> Storage:
    """The app's storage, or a 404 JSON error when no camera records."""
    found = runtime_of(current_app).recording.storage
    if found is None:
        abort(404, description="nothing is recorded on this server: no camera has --record")
    return found


def parse_time(name: str, raw: str) -> float:
    """Seconds since the epoch from ``raw``, a number or ISO 8601 (local time without an offset)."""
    text = raw.strip()
    try:
        value = float(text)
    except ValueError:
        try:
            value = datetime.fromisoformat(text.replace("z", "Z")).timestamp()
        except (ValueError, OverflowError, OSError):
            abort(400, description=f"{name} must be seconds since the epoch or an ISO 8601 time, "
                                   f"not {raw[:40]!r}")
    if not math.isfinite(value) or not EARLIEST <= value <= LATEST:
        abort(400, description=f"{name} must be a time between the years 2000 and 2200, not {raw[:40]!r}")
    return value


def query_time(name: str, required: bool = False) -> float | None:
    raw = request.args.get(name, "")
    if raw == "":
        if required:
            abort(400, description=f"{name} is required (seconds since the epoch or ISO 8601)")
        return None
    return parse_time(name, raw)


def query_limit(default: int, high: int) -> int:
    raw = request.args.get("limit", "")
    if raw == "":
        return default
    return whole_number(raw, "limit", f"a whole number from 1 to {high}", 1, high)


def exports() -> threading.BoundedSemaphore:
    """The app's turns for making MP4 files (see webapp/runtime/registry.py)."""
    return runtime_of(current_app).exports


def playbacks() -> threading.BoundedSemaphore:
    """The app's turns for playing recordings back."""
    return runtime_of(current_app).playbacks


def busy(what: str) -> Response:
    return unavailable(f"too many {what} at once; try again shortly")


def mp4_response(path: Path, download_name: str) -> Response:
    """An MP4 file with range requests, which a ``<video>`` uses to seek; sent by the server's loop, so a
    client that stops reading holds no worker thread."""
    return file_response(path, "video/mp4",
                         headers={"Content-Disposition": f'inline; filename="{download_name}"',
                                  "Cache-Control": "no-cache"})


def download(found: Path | Making, download_name: str, nothing: str) -> Response:
    """A download: a whole file with ranges, or one being made, sent as it is written (no length, no ranges:
    a player that seeks asks again once it is whole). ``nothing`` is the 404's words when there is nothing to
    put in it."""
    if isinstance(found, Path):
        response = mp4_response(found, download_name)
        response.headers["Content-Disposition"] = f'attachment; filename="{download_name}"'
        return response
    give_back = runtime_of(current_app).followers.take(request.remote_addr or "")
    if give_back is None:
        return busy("downloads followed while they are made")
    try:
        file = found.open()
    except TimeoutError:
        give_back()
        return unavailable("the download is still being made; ask again shortly")
    except BaseException:
        give_back()
        raise
    if file is None:
        give_back()
        if isinstance(found.error, (NothingRecorded, LookupError)):
            abort(404, description=nothing)
        if isinstance(found.error, OSError):
            return json_error(507, f"the download could not be written: {found.error.strerror or found.error}")
        log.error("a download could not be made: %r", found.error)
        abort(500, description="the download could not be made")
    return Response(followed(found.follow(file), give_back), mimetype="video/mp4",
                    headers={**NO_STORE, "Content-Disposition": f'attachment; filename="{download_name}"',
                             "X-Accel-Buffering": "no"})


def made(path: Path, make: Callable[[Path], object], download_name: str, nothing: str) -> Response:
    """``path``, made by ``make`` in a thread of its own unless it is whole or being made, as a download."""
    try:
        found = storage().exports.fetch(path, make, exports())
    except Busy:
        return busy("downloads being made")
    return download(found, download_name, nothing)
