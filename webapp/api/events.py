"""Events: what the detectors saw, with snapshots and clips (``/api/events``)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    jsonify,
    render_template,
    request,
    send_file,
)

from camera.record import EventRow, Segment, Storage, clip_segments, delete_event
from camera.record.copy import playable_length, plays_from_zero
from camera.record.formats import COPY
from camera.record.playback import export
from camera.track import eventinfo

from ..runtime.peer_events import events_with_peers, peer_file_response
from ..runtime.registry import runtime_of
from ..serve.files import file_response
from .common import NO_STORE, all_cameras, get_camera, query_flag, visible_names
from .stored import made, mp4_response, query_limit, query_time, storage

bp = Blueprint("events", __name__)

# SQLite's integers stop here; a larger id names no event.
MAX_ID = 2**63 - 1


def find_event(event_id: int) -> EventRow:
    event = storage().index.event(event_id) if event_id <= MAX_ID else None
    visible = visible_names()
    if event is None or visible is not None and event.camera not in visible:
        abort(404, description=f"no event {event_id}")
    return event


@bp.get("/api/events")
def events() -> Response:
    """Events, newest first: ``?camera=&label=&zone=&after=&before=&limit=`` (times bound their start; ``zone``:
    events of objects that entered it). An event of one tracked object has its ``track``, ``label`` and
    ``zones`` (in the order it entered them); one of motion alone has ``track`` and ``label`` null."""
    name = request.args.get("camera") or None
    camera = get_camera(name).name if name else None
    label = request.args.get("label") or None
    if label is not None and len(label) > 100:
        abort(400, description="label must be at most 100 characters")
    zone = request.args.get("zone") or None
    if zone is not None and len(zone) > 100:
        abort(400, description="zone must be at most 100 characters")
    after, before = query_time("after"), query_time("before")
    limit, peers = query_limit(50, 1000), runtime_of(current_app).peers
    index = storage().index if peers is None or runtime_of(current_app).recording.storage else None
    if index is None:
        found = []  # a hub that records nothing itself: its peers' events alone
    elif zone is not None:
        found = eventinfo.in_zone(index, zone, camera, label, after, before, limit, cameras=visible_names())
    else:
        found = eventinfo.with_objects(index, index.events(camera, label, after, before, limit,
                                                           cameras=visible_names()))
    local = [event.as_json() for event in found]
    return jsonify(events=events_with_peers(peers, local, request.args, limit, visible_names()))


@bp.get("/api/events/<peer_event>/<any('snapshot.jpg', 'clip.mp4'):file>")
def peer_event_file(peer_event: str, file: str) -> Response:
    """A peer's event's snapshot or clip (``PEER.ID``), fetched from the peer (webapp/runtime/peer_events.py)."""
    return peer_file_response(runtime_of(current_app).peers, peer_event, file, request.args, visible_names())


@bp.get("/api/events/<int:event_id>")
def event(event_id: int) -> Response:
    return jsonify(eventinfo.with_objects(storage().index, [find_event(event_id)])[0].as_json())


@bp.delete("/api/events/<int:event_id>")
def delete(event_id: int) -> Response:
    found = find_event(event_id)
    if found.end is None:
        abort(409, description=f"event {event_id} is still going on; delete it once it has ended")
    delete_event(storage(), event_id)
    return Response(status=204)


@bp.get("/api/events/<int:event_id>/snapshot.jpg")
def snapshot(event_id: int) -> Response:
    """The event's best frame; ``?boxes=1`` with what was found drawn on it."""
    found = find_event(event_id)
    name = found.snapshot_boxes if query_flag("boxes") else found.snapshot
    path = storage().path(name) if name else None
    if path is None or not path.exists():
        abort(404, description=f"event {event_id} has no snapshot")
    return send_file(path, mimetype="image/jpeg", max_age=0)


@bp.get("/api/events/<int:event_id>/clip.mp4")
def clip(event_id: int) -> Response:
    """The event's clip as MP4, starting at 0: its own clip file as it was recorded by copy, or cut from the
    recording around it (copied where that was recorded by copy, encoded from frames otherwise), made on
    first request and kept once the event has ended."""
    found = find_event(event_id)
    store = storage()
    segments = clip_segments(store, found)
    download_name = f"{found.camera}-event-{found.id}.mp4"
    if len(segments) == 1 and segments[0].kind == "clip" and segments[0].format == COPY \
            and plays_from_zero(store.path(segments[0].path)):
        return _copied_clip(store.path(segments[0].path), segments[0].open, download_name)
    nothing = f"event {event_id} has no recorded frames"
    if found.end is None:
        # The clip so far, kept a while among the downloads: named by what it holds now.
        name = store.exports.name(f"{found.camera}-event-{found.id}", found.clip_start, found.clip_start, segments)
        return made(store.exports.folder / name, _maker(store, found, segments), download_name, nothing)

    maker = _maker(store, found, segments)

    def make(path: Path) -> None:
        maker(path)
        store.index.update_event(found.id, bytes=found.bytes + path.stat().st_size)

    # Made on first request and kept with the event.
    return made(store.path(store.playable_clip_name(found.camera, found.id)), make, download_name, nothing)


def _maker(store: Storage, found: EventRow, segments: list[Segment]) -> Callable[[Path], object]:
    """What makes the event's clip into a file: its span of ``segments``, copied or encoded (see
    camera/record/playback.py's ``export``); an event going on, up to now."""
    camera = runtime_of(current_app).cameras.get(found.camera)
    fps = camera.fps if camera is not None else None
    return lambda path: export(store, segments, found.clip_start,
                               found.clip_end if found.clip_end is not None else time.time(), path, fps)


def _copied_clip(path: Path, growing: bool, download_name: str) -> Response:
    """A clip recorded by copy is an MP4 already: sent as it is, at once. One still being written is sent as
    far as its last whole frame now (it plays to the moment it was asked for); a finished one with ranges."""
    if not growing:
        return mp4_response(path, download_name)
    length = playable_length(path)
    if not length:
        abort(404, description="the clip has no whole frame yet; ask again in a moment")
    # The file only grows (it is appended to), so its first ``length`` bytes stay what they are.
    return file_response(path, "video/mp4", length=length, headers=NO_STORE)


@bp.get("/history")
def page() -> str:
    """The page of events (and recordings) of ``?camera=`` or of every camera that records."""
    name = request.args.get("camera") or None
    camera = get_camera(name).name if name else None
    visible = all_cameras()
    recorders = {name: recorder for name, recorder in runtime_of(current_app).recorders.items() if name in visible}
    return render_template("history.html", camera=camera, recorders=recorders)
