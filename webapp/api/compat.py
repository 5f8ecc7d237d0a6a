"""mjpg-streamer's and ustreamer's URLs, so camstream replaces either with no change on the client side.

OctoPrint, Home Assistant and many dashboards were set up with these:

- mjpg-streamer: ``/?action=stream`` and ``/?action=snapshot``; ``stream_N``
  and ``snapshot_N`` for its input N (camstream's camera N, counting from
  0); OctoPi's ``/webcam/?action=...``, the same behind its proxy's prefix.
- ustreamer: ``/stream``, ``/snapshot`` and ``/state`` (its JSON status).

``?camera=NAME`` picks a camera by name on any of them. Without an
``action``, ``/`` is camstream's page as before.
"""

from __future__ import annotations

import re

from flask import Blueprint, Response, abort, jsonify, redirect, request, url_for

from camera import STREAMING, BaseCamera

from .common import all_cameras, get_camera, status_of
from .streams import camera_snapshot, camera_stream

bp = Blueprint("compat", __name__)

ACTION = re.compile(r"(stream|snapshot)(?:_(\d{1,4}))?")


@bp.before_app_request
def mjpg_streamer_action() -> Response | None:
    """``/?action=stream`` and friends: answered before the page's route would answer with the page."""
    if request.path not in ("/", "/webcam/") or "action" not in request.args:
        return None
    raw = request.args["action"]
    match = ACTION.fullmatch(raw)
    if match is None:
        abort(400, description=f"unknown action {raw[:40]!r}: camstream answers action=stream and "
                               "action=snapshot (stream_N, snapshot_N for camera N, from 0)")
    camera = _camera(match[2])
    return camera_stream(camera) if match[1] == "stream" else camera_snapshot(camera)


@bp.get("/webcam/")
def octopi_page() -> Response:
    """OctoPi's prefix without an action: camstream's page."""
    return redirect(url_for("page.index"))


@bp.get("/stream")
def stream() -> Response:
    return camera_stream(_camera(None))


@bp.get("/snapshot")
def snapshot() -> Response:
    return camera_snapshot(_camera(None))


@bp.get("/state")
def state() -> Response:
    """ustreamer's status document, for the tools that read it, filled from camstream's status."""
    camera = _camera(None)
    status = status_of(camera)
    return jsonify(ok=True, result={
        "encoder": {"type": "CPU", "quality": status["quality"]},
        "source": {
            "resolution": {"width": status["width"] or 0, "height": status["height"] or 0},
            "online": status["state"] == STREAMING,
            "desired_fps": round(status["fps"] or 0),
            "captured_fps": round(status["measured_fps"]),
        },
        "stream": {"queued_fps": round(status["measured_fps"]), "clients": status["viewers"], "clients_stat": {}},
        "camera": status,
    })


def _camera(index: str | None) -> BaseCamera:
    """``?camera=NAME``, else camera number ``index`` (the first for None), else a 404 JSON error."""
    name = request.args.get("camera")
    if name:
        return get_camera(name)
    cameras = list(all_cameras().values())
    number = int(index or 0)
    if number >= len(cameras):
        abort(404, description=f"no camera number {number}: there are {len(cameras)} (counted from 0)")
    return cameras[number]
