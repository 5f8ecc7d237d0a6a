"""Recordings: what is stored (``/api/recordings``), played back as MJPEG or downloaded as MP4."""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, Response, abort, jsonify, request

from camera import mjpeg
from camera.record import MAX_EXPORT_SECONDS, playback
from camera.record.playback import export

from .common import NO_STORE, get_camera, visible_names
from .stored import busy, made, playbacks, query_limit, query_time, storage

bp = Blueprint("recordings", __name__)


@bp.get("/api/recordings")
def recordings() -> Response:
    """Stored segments, oldest first: ``?camera=&start=&end=&limit=``."""
    name = request.args.get("camera") or None
    camera = get_camera(name).name if name else None
    start, end = query_time("start"), query_time("end")
    _check_order(start, end)
    found = storage().index.segments(camera, start, end, limit=query_limit(1000, 10000), cameras=visible_names())
    return jsonify(recordings=[{**segment.as_json(),
                                "playback": f"/playback/{segment.camera}?start={segment.start:.3f}"}
                               for segment in found])


@bp.get("/playback/<name>")
def play(name: str) -> Response:
    """``name``'s recording from ``?start=T`` (the oldest kept by default) as MJPEG, paced as recorded."""
    camera = get_camera(name)
    store = storage()
    start = query_time("start")
    if start is None:
        oldest = store.index.segments(camera.name, limit=1)
        if not oldest:
            abort(404, description=f"nothing of camera {camera.name!r} is recorded")
        start = oldest[0].start
    elif not store.index.segments(camera.name, start, limit=1):
        abort(404, description=f"nothing of camera {camera.name!r} is recorded after {start:.3f}")
    turns = playbacks()
    if not turns.acquire(blocking=False):
        return busy("playbacks")
    gone = request.environ.get("waitress.client_disconnected") or (lambda: False)
    body = playback(store, camera.name, start, camera.quality, gone)
    response = Response(body, content_type=mjpeg.CONTENT_TYPE, headers={**NO_STORE, "X-Accel-Buffering": "no"})
    response.call_on_close(turns.release)
    return response


@bp.get("/api/recordings/<name>.mp4")
def download(name: str) -> Response:
    """``name``'s recording from ``?start=`` to ``?end=`` as an MP4 file that starts at 0: the camera's own
    video and audio where it was recorded by copy, else H.264 encoded from the frames."""
    camera = get_camera(name)
    start, end = query_time("start", required=True), query_time("end", required=True)
    _check_order(start, end)
    assert start is not None and end is not None
    if end - start > MAX_EXPORT_SECONDS:
        abort(400, description=f"one download covers at most {MAX_EXPORT_SECONDS:g} s; ask for several")
    store = storage()
    segments = store.index.segments(camera.name, start, end)

    def make(path: Path) -> None:
        export(store, segments, start, end, path, camera.fps)  # copied if recorded by copy, else encoded

    # Made once and kept a while: a player's range requests (each seek) read the same file.
    return made(store.exports.folder / store.exports.name(camera.name, start, end, segments), make,
                f"{camera.name}-{int(start)}-{int(end)}.mp4",
                f"nothing of camera {camera.name!r} is recorded between {start:.3f} and {end:.3f}")


def _check_order(start: float | None, end: float | None) -> None:
    if start is not None and end is not None and end < start:
        abort(400, description="end must not be before start")
