"""Status: every camera's state with its detector and recorder, and the server's health."""

from __future__ import annotations

import time

from flask import Blueprint, Response, current_app, jsonify

from camera import STREAMING

from ..auth import principal
from ..runtime.registry import runtime_of
from .common import all_cameras, get_camera, status_of

bp = Blueprint("status", __name__)


@bp.get("/api/cameras")
def cameras_status() -> Response:
    return jsonify(cameras=[status_of(camera) for camera in all_cameras().values()])


@bp.get("/api/cameras/<name>")
def camera_status(name: str) -> Response:
    return jsonify(status_of(get_camera(name)))


@bp.get("/healthz")
def healthz() -> Response:
    """Liveness: ``ok`` and counts for anyone; the details for a requester who is signed in (or an open server)."""
    runtime = runtime_of(current_app)
    if principal().anonymous:
        cameras = runtime.cameras.values()
        return jsonify(status="ok", cameras=len(cameras),
                       streaming=sum(camera.state == STREAMING for camera in cameras))
    states = {camera.name: camera.state for camera in all_cameras().values()}
    slots, connections = runtime.slots, runtime.connections
    return jsonify(status="ok", uptime=round(time.time() - runtime.started_at, 3), cameras=states,
                   streams=slots.used, max_viewers=slots.limit, streams_refused=slots.refused,
                   viewer_errors=runtime.sender.viewer_errors,
                   # Counted by camstream's own server only (not under waitress-serve).
                   connections=connections.as_dict() if connections.limit else None,
                   mqtt=runtime.mqtt.status() if runtime.mqtt else None,
                   broker=runtime.broker.status() if runtime.broker else None)
