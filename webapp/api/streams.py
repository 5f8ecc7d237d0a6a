"""Live video: MJPEG streams of one camera or several, and snapshots."""

from __future__ import annotations

import socket
from collections.abc import Callable

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    request,
)

from camera import BaseCamera, mjpeg
from camera.viewers.sender import SocketViewer, StreamSender
from camera.viewers.wsgi import mjpeg_stream

from ..runtime.registry import runtime_of
from ..serve.streaming import serve_stream
from .common import (
    all_cameras,
    get_camera,
    jpeg_response,
    live_frame,
    query_flag,
    query_number,
    require_usable,
    some_cameras,
)
from .detection import overlay_of, overlay_snapshot

bp = Blueprint("streams", __name__)

# Bounds of /video_feed?fps=.
MIN_VIEWER_FPS, MAX_VIEWER_FPS = 0.1, 120.0


@bp.get("/video_feed", defaults={"name": None})
@bp.get("/video_feed/<name>")
def video_feed(name: str | None) -> Response:
    """One camera's MJPEG stream; ``?overlay=1``: with its newest boxes drawn."""
    return camera_stream(get_camera(name))


def camera_stream(camera: BaseCamera) -> Response:
    """``camera``'s MJPEG stream as this request asks for it (``?fps=``, ``?overlay=1``)."""
    fps = query_number("fps", MIN_VIEWER_FPS, MAX_VIEWER_FPS)
    overlay = query_flag("overlay")
    require_usable(camera)
    return _stream([overlay_of(camera) if overlay else camera], fps, tagged=False)


# Cameras one /streams request may carry (and so start): one request must not wake a whole site.
MAX_STREAM_CAMERAS = 32


@bp.get("/streams")
def streams() -> Response:
    """Several cameras on one connection (``?cameras=a,b``, all by default); each part names its camera.

    The page's shared worker reads this, so that any number of tabs and
    cameras need one of the browser's six connections to this server.
    With ``?overlay=1`` the cameras that have a detector come with their
    boxes drawn.
    """
    names = list(dict.fromkeys(name for name in request.args.get("cameras", "").split(",") if name))
    if len(names) > MAX_STREAM_CAMERAS or (not names and len(all_cameras()) > MAX_STREAM_CAMERAS):
        abort(400, description=f"one stream carries at most {MAX_STREAM_CAMERAS} cameras; name them with "
                               "?cameras=a,b,... and open another stream for the rest")
    cameras = [get_camera(name) for name in names] if names else list(some_cameras().values())
    fps = query_number("fps", MIN_VIEWER_FPS, MAX_VIEWER_FPS)
    overlay = query_flag("overlay")
    usable = [camera for camera in cameras if camera.usable]
    if not usable:
        require_usable(cameras[0])
    if overlay:
        overlays = runtime_of(current_app).overlays
        usable = [overlays.get(camera.name, camera) for camera in usable]
    return _stream(usable, fps, tagged=True)


def _stream(cameras: list[BaseCamera], fps: float | None, tagged: bool) -> Response:
    """An MJPEG stream of ``cameras``; ``tagged`` leads each part with its camera's ``X-Camera`` line."""
    tags = [mjpeg.camera_header(camera.name) if tagged else b"" for camera in cameras]

    def socket_viewer(sock: socket.socket, head: bytes, sender: StreamSender,
                      on_close: Callable[[], None]) -> tuple[SocketViewer, Callable[[], None]]:
        viewer = SocketViewer(sock, head, sender, on_close=on_close)
        feeds = [(camera, viewer.add_feed(camera.broadcaster, tag, fps))
                 for camera, tag in zip(cameras, tags, strict=True)]

        def attach() -> None:
            for camera, feed in feeds:
                camera.attach(feed)
        return viewer, attach

    return serve_stream(mjpeg.CONTENT_TYPE, mjpeg.STREAM_START, socket_viewer,
                        lambda is_disconnected: mjpeg_stream(cameras, is_disconnected, fps, tagged))


@bp.get("/snapshot.jpg", defaults={"name": None})
@bp.get("/snapshot/<name>.jpg")
def snapshot(name: str | None) -> Response:
    """The newest frame; with ``?overlay=1`` the frame of the newest detection result, boxes drawn."""
    return camera_snapshot(get_camera(name))


def camera_snapshot(camera: BaseCamera) -> Response:
    """``camera``'s newest frame as this request asks for it (``?overlay=1``, ``?timeout=``)."""
    if query_flag("overlay"):
        return overlay_snapshot(camera)
    frame = live_frame(camera)
    return jpeg_response(frame.jpeg, frame.timestamp)
