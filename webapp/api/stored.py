"""What the events and recordings routes share: the storage, times in queries, MP4 files, limits."""

from __future__ import annotations

import math
import threading
from datetime import datetime
from pathlib import Path

from flask import Response, abort, current_app, request, send_file

from camera.record import Storage

from ..runtime.registry import runtime_of
from .common import unavailable, whole_number

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
    """An MP4 file with range requests, which a ``<video>`` uses to seek."""
    return send_file(path, mimetype="video/mp4", conditional=True, download_name=download_name,
                     max_age=0)
