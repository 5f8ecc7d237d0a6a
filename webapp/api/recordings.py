"""Recordings: what is stored (``/api/recordings``), played back as MJPEG or downloaded as MP4."""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, Response, abort, current_app, jsonify, request

from camera import mjpeg
from camera.record import MAX_EXPORT_SECONDS, playback
from camera.record.playback import export

from ..runtime.peer_recordings import merged, peer_recordings, peer_stream
from ..runtime.registry import runtime_of
from .common import NO_STORE, get_camera, visible_names
from .stored import busy, made, playbacks, query_limit, query_time, storage

bp = Blueprint("recordings", __name__)


@bp.get("/api/recordings")
def recordings() -> Response:
    """Stored segments, oldest first: ``?camera=&start=&end=&limit=``."""
    name = request.args.get("camera") or None
    chosen = get_camera(name) if name else None
    camera = chosen.name if chosen else None
    start, end = query_time("start"), query_time("end")
    _check_order(start, end)
    limit, runtime = query_limit(1000, 10000), runtime_of(current_app)
    # A peer camera's, or every peer's too (webapp/runtime/peer_recordings.py); a hub may record nothing itself.
    remote = peer_recordings(runtime.peers, chosen, start, end, limit, visible_names())
    if remote is not None and (chosen is not None or runtime.recording.storage is None):
        return jsonify(recordings=remote)
    found = storage().index.segments(camera, start, end, limit=limit, cameras=visible_names())
    return jsonify(recordings=merged([{**segment.as_json(),
                                       "playback": f"/playback/{segment.camera}?start={segment.start:.3f}"}
                                      for segment in found], remote or [], limit))


@bp.get("/playback/<name>")
def play(name: str) -> Response:
    """``name``'s recording from ``?start=T`` (the oldest kept by default) as MJPEG, paced as recorded."""
    camera = get_camera(name)
    start = query_time("start")
    relayed = peer_stream(camera, runtime_of(current_app).peers, "/playback/{}",
                          {"start": f"{start:.3f}"} if start is not None else {}, request.headers,
                          f"nothing of camera {camera.name!r} is recorded")
    if relayed is not None:
        return relayed
    store = storage()
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
    nothing = f"nothing of camera {camera.name!r} is recorded between {start:.3f} and {end:.3f}"
    relayed = peer_stream(camera, runtime_of(current_app).peers, "/api/recordings/{}.mp4",
                          {"start": f"{start:.3f}", "end": f"{end:.3f}"}, request.headers, nothing,
                          f"{camera.name}-{int(start)}-{int(end)}.mp4")
    if relayed is not None:
        return relayed  # the peer's file, read from it as it comes, ranges passed through
    store = storage()
    segments = store.index.segments(camera.name, start, end)

    def make(path: Path) -> None:
        export(store, segments, start, end, path, camera.fps)  # copied if recorded by copy, else encoded

    # Made once and kept a while: a player's range requests (each seek) read the same file.
    return made(store.exports.folder / store.exports.name(camera.name, start, end, segments), make,
                f"{camera.name}-{int(start)}-{int(end)}.mp4",
                nothing)


def _check_order(start: float | None, end: float | None) -> None:
    if start is not None and end is not None and end < start:
        abort(400, description="end must not be before start")
