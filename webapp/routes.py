"""The HTTP endpoints: the page, MJPEG streams, snapshots, status and health."""

from __future__ import annotations

import time

from flask import Blueprint, Response, abort, current_app, jsonify, render_template, request

from camera import BaseCamera, mjpeg

from .config import cameras_of
from .errors import json_error

bp = Blueprint("camstream", __name__)

NO_STORE = {"Cache-Control": "no-store, no-cache, must-revalidate, max-age=0", "Pragma": "no-cache"}
STARTED_AT = time.time()


def all_cameras() -> dict[str, BaseCamera]:
    return cameras_of(current_app)


def get_camera(name: str | None) -> BaseCamera:
    """The named camera (the first one for None), or a 404 JSON error."""
    cameras = all_cameras()
    if name is None:
        return next(iter(cameras.values()))
    camera = cameras.get(name)
    if camera is None:
        abort(404, description=f"no camera named {name!r}")
    return camera


@bp.get("/")
def index() -> str:
    return render_template("index.html", cameras=list(all_cameras().values()))


@bp.get("/video_feed", defaults={"name": None})
@bp.get("/video_feed/<name>")
def video_feed(name: str | None) -> Response:
    camera = get_camera(name)
    # Waitress offers this when it reads ahead on the connection; it lets a
    # stream notice a viewer that left while the camera sends nothing.
    is_disconnected = request.environ.get("waitress.client_disconnected")
    return Response(
        camera.mjpeg_stream(is_disconnected),
        content_type=mjpeg.CONTENT_TYPE,
        headers={**NO_STORE, "X-Accel-Buffering": "no"},
    )


@bp.get("/snapshot.jpg", defaults={"name": None})
@bp.get("/snapshot/<name>.jpg")
def snapshot(name: str | None) -> Response:
    camera = get_camera(name)
    timeout = current_app.config["SNAPSHOT_TIMEOUT"]
    frame = camera.snapshot(float(timeout))
    if frame is None:
        response = json_error(
            503, f"camera {camera.name!r} gave no frame within {timeout} s",
            camera=camera.status(),
        )
        response.headers["Retry-After"] = "2"
        return response
    return Response(
        frame.jpeg,
        mimetype="image/jpeg",
        headers={**NO_STORE, "X-Timestamp": f"{frame.timestamp:.6f}"},
    )


@bp.get("/api/cameras")
def cameras_status() -> Response:
    return jsonify(cameras=[camera.status() for camera in all_cameras().values()])


@bp.get("/api/cameras/<name>")
def camera_status(name: str) -> Response:
    return jsonify(get_camera(name).status())


@bp.get("/healthz")
def healthz() -> Response:
    states = {camera.name: camera.state for camera in all_cameras().values()}
    return jsonify(status="ok", uptime=round(time.time() - STARTED_AT, 3), cameras=states)
