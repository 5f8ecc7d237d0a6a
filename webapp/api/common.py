"""What the routes of every blueprint share: finding a camera, reading query values, common answers."""

from __future__ import annotations

from flask import Response, abort, current_app, request

from camera import RECONNECTING, BaseCamera, Frame
from camera.limits import checked

from ..auth.guard import principal
from ..runtime.registry import runtime_of
from .errors import RETRY_AFTER_SECONDS, json_error

NO_STORE = {"Cache-Control": "no-store, no-cache, must-revalidate, max-age=0", "Pragma": "no-cache"}
# Bound of ?timeout= on snapshots and detection.
MAX_SNAPSHOT_TIMEOUT = 30.0


def all_cameras() -> dict[str, BaseCamera]:
    """The cameras the requester may see (every one, for an admin or on an open server)."""
    cameras = runtime_of(current_app).cameras
    allowed = principal().cameras
    if allowed is None:
        return cameras
    return {name: camera for name, camera in cameras.items() if name in allowed}


def visible_names() -> list[str] | None:
    """The names of the cameras the requester may see; None when that is every camera (recorded ones included)."""
    allowed = principal().cameras
    return None if allowed is None else sorted(allowed)


def some_cameras() -> dict[str, BaseCamera]:
    """The cameras the requester may see, or a 404 JSON error if there are none (a token whose camera a
    reload removed)."""
    cameras = all_cameras()
    if not cameras:
        abort(404, description="there is no camera you may see")
    return cameras


def get_camera(name: str | None) -> BaseCamera:
    """The named camera (the first one for None), or a 404 JSON error."""
    if name is None:
        return next(iter(some_cameras().values()))
    cameras = all_cameras()
    camera = cameras.get(name)
    if camera is None:
        abort(404, description=f"no camera named {name!r}")
    return camera


def status_of(camera: BaseCamera) -> dict:
    """A camera's status with its detector's and recorder's (see :meth:`Runtime.status_of`)."""
    return runtime_of(current_app).status_of(camera)


def query_flag(name: str) -> bool:
    """The query parameter ``name`` as a yes/no (``1``, ``true``, ``0``, ``false``, ...); else a 400 JSON error."""
    raw = request.args.get(name, "").strip().lower()
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("", "0", "false", "no", "off"):
        return False
    abort(400, description=f"{name} must be 1 or 0, not {request.args[name]!r}")


def query_number(name: str, low: float, high: float) -> float | None:
    """The query parameter ``name`` as a number in [low, high], None if absent; else a 400 JSON error."""
    raw = request.args.get(name, "")
    if raw == "":
        return None
    try:
        return float(checked(name, raw, float, low, high))
    except ValueError as exc:
        abort(400, description=str(exc))


def whole_number(raw: str, name: str, what: str, low: int = 0, high: int = 2**63 - 1) -> int:
    """``raw`` (a query value or header) as a whole number from ``low`` to ``high``; else a 400 JSON error
    saying that ``name`` must be ``what``."""
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 19) or not low <= int(raw) <= high:
        abort(400, description=f"{name} must be {what}, not {raw[:40]!r}")
    return int(raw)


def require_usable(camera: BaseCamera) -> None:
    """Answer 503 at once for a camera whose source string can never work."""
    if not camera.usable:
        abort(unavailable(f"camera {camera.name!r} cannot start: {camera.status()['last_error']}",
                           retry=False, camera=camera.status()))


def unavailable(message: str, retry: bool = True, **extra: object) -> Response:
    response = json_error(503, message, **extra)
    if retry:
        response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


def live_frame(camera: BaseCamera) -> Frame:
    """The camera's newest live frame, starting it and waiting as a snapshot does; else a 503 JSON error.

    ``?timeout=S`` (0-30) overrides ``SNAPSHOT_TIMEOUT``.
    """
    timeout = query_number("timeout", 0, MAX_SNAPSHOT_TIMEOUT)
    require_usable(camera)
    if timeout is None:
        timeout = float(current_app.config["SNAPSHOT_TIMEOUT"])
    frame = camera.snapshot(timeout)
    if frame is None:
        status = camera.status()
        if status["state"] == RECONNECTING:
            abort(unavailable(f"camera {camera.name!r} has no signal: {status['last_error']}", camera=status))
        abort(unavailable(f"camera {camera.name!r} gave no frame within {timeout:g} s", camera=status))
    return frame


def jpeg_response(data: bytes, timestamp: float, **headers: str) -> Response:
    return Response(data, mimetype="image/jpeg",
                    headers={**NO_STORE, "X-Timestamp": f"{timestamp:.6f}", **headers})
