"""The HTTP endpoints: the page, MJPEG streams, snapshots, status and health."""

from __future__ import annotations

import socket
import time

from flask import Blueprint, Response, current_app, jsonify, render_template, request
from werkzeug.http import http_date

from camera import BaseCamera, mjpeg
from camera.sender import SenderStopped, SocketViewer
from camera.stream import mjpeg_stream

from .config import CONNECTIONS, SENDER, SLOTS
from .detect import overlay_of, overlay_snapshot
from .detectors import detections_of, overlays_of
from .handoff import take_socket
from .shared import (
    NO_STORE,
    all_cameras,
    get_camera,
    jpeg_response,
    live_frame,
    query_flag,
    query_number,
    require_usable,
    status_of,
    unavailable,
)
from .slots import Slot

bp = Blueprint("camstream", __name__)

STARTED_AT = time.time()
# Bounds of /video_feed?fps=.
MIN_VIEWER_FPS, MAX_VIEWER_FPS = 0.1, 120.0


@bp.get("/")
def index() -> str:
    return render_template("index.html", cameras=list(all_cameras().values()),
                           detectors=detections_of(current_app))


@bp.get("/video_feed", defaults={"name": None})
@bp.get("/video_feed/<name>")
def video_feed(name: str | None) -> Response:
    """One camera's MJPEG stream; ``?overlay=1``: with its newest boxes drawn."""
    camera = get_camera(name)
    fps = query_number("fps", MIN_VIEWER_FPS, MAX_VIEWER_FPS)
    overlay = query_flag("overlay")
    require_usable(camera)
    return _stream([overlay_of(camera) if overlay else camera], fps, tagged=False)


@bp.get("/streams")
def streams() -> Response:
    """Several cameras on one connection (``?cameras=a,b``, all by default); each part names its camera.

    The page's shared worker reads this, so that any number of tabs and
    cameras need one of the browser's six connections to this server.
    With ``?overlay=1`` the cameras that have a detector come with their
    boxes drawn.
    """
    names = [name for name in request.args.get("cameras", "").split(",") if name]
    cameras = [get_camera(name) for name in dict.fromkeys(names)] if names else list(all_cameras().values())
    fps = query_number("fps", MIN_VIEWER_FPS, MAX_VIEWER_FPS)
    overlay = query_flag("overlay")
    usable = [camera for camera in cameras if camera.usable]
    if not usable:
        require_usable(cameras[0])
    if overlay:
        overlays = overlays_of(current_app)
        usable = [overlays.get(camera.name, camera) for camera in usable]
    return _stream(usable, fps, tagged=True)


def _stream(cameras: list[BaseCamera], fps: float | None, tagged: bool) -> Response:
    """Take a stream slot and hand it, with the viewer, to the sender thread or to a WSGI response.

    Whichever gets it gives the slot back when the stream ends; if anything
    fails on the way, it is given back here (a slot is given back once).
    """
    # Everything about the answer that could fail is made before a slot or the socket is taken.
    tags = [mjpeg.camera_header(camera.name) if tagged else b"" for camera in cameras]
    head = _stream_head()
    slots = current_app.extensions[SLOTS]
    slot = slots.acquire()
    if slot is None:
        return unavailable(f"all {slots.limit} stream slots are taken; try again shortly", max_viewers=slots.limit)
    try:
        handoff = request.method == "GET" and current_app.config["SOCKET_HANDOFF"]
        sock = take_socket(request.environ) if handoff else None
        if sock is None:
            return _wsgi_stream(cameras, slot, fps, tagged)
        return _hand_off(list(zip(cameras, tags, strict=True)), sock, head, slot, fps)
    except BaseException:
        slot.release()
        raise


def _hand_off(cameras: list[tuple[BaseCamera, bytes]], sock: socket.socket, head: bytes, slot: Slot,
              fps: float | None) -> Response:
    """Give the viewer's socket and its stream slot to the sender thread; waitress drops the response returned."""
    sender = current_app.extensions[SENDER]
    try:
        viewer = SocketViewer(sock, head, sender, on_close=slot.release)
        feeds = [(camera, viewer.add_feed(camera.broadcaster, tag, fps)) for camera, tag in cameras]
        sender.add(viewer)
    except BaseException as exc:
        sock.close()
        if isinstance(exc, SenderStopped):
            slot.release()
            return unavailable("the server is shutting down")
        raise
    # From here the sender owns the socket: closing the viewer releases everything.
    try:
        for camera, feed in feeds:
            camera.attach(feed)
    except BaseException:
        viewer.close()
        raise
    return Response(status=200)


def _wsgi_stream(cameras: list[BaseCamera], slot: Slot, fps: float | None, tagged: bool) -> Response:
    """Stream through the WSGI server, holding one of its worker threads."""
    # Waitress offers this when it reads ahead on the connection; it lets a
    # stream notice a viewer that left while the camera sends nothing.
    is_disconnected = request.environ.get("waitress.client_disconnected")
    body = mjpeg_stream(cameras, is_disconnected, fps, tagged)
    response = Response(body, content_type=mjpeg.CONTENT_TYPE, headers={**NO_STORE, "X-Accel-Buffering": "no"})
    # Runs when the server closes the response, however the stream ended.
    response.call_on_close(slot.release)
    return response


def _stream_head() -> bytes:
    """Status line and headers of a stream the sender writes itself, then its first boundary."""
    protocol = request.environ.get("SERVER_PROTOCOL", "HTTP/1.1")
    if protocol not in ("HTTP/1.0", "HTTP/1.1"):
        protocol = "HTTP/1.1"
    headers = {
        "Content-Type": mjpeg.CONTENT_TYPE,
        **NO_STORE,
        "X-Accel-Buffering": "no",
        "Connection": "close",
        "Server": "camstream",
        "Date": http_date(),
    }
    lines = [f"{protocol} 200 OK", *(f"{name}: {value}" for name, value in headers.items()), "", ""]
    return "\r\n".join(lines).encode("latin-1") + mjpeg.STREAM_START


@bp.get("/snapshot.jpg", defaults={"name": None})
@bp.get("/snapshot/<name>.jpg")
def snapshot(name: str | None) -> Response:
    """The newest frame; with ``?overlay=1`` the frame of the newest detection result, boxes drawn."""
    camera = get_camera(name)
    if query_flag("overlay"):
        return overlay_snapshot(camera)
    frame = live_frame(camera)
    return jpeg_response(frame.jpeg, frame.timestamp)


@bp.get("/api/cameras")
def cameras_status() -> Response:
    return jsonify(cameras=[status_of(camera) for camera in all_cameras().values()])


@bp.get("/api/cameras/<name>")
def camera_status(name: str) -> Response:
    return jsonify(status_of(get_camera(name)))


@bp.get("/healthz")
def healthz() -> Response:
    states = {camera.name: camera.state for camera in all_cameras().values()}
    slots = current_app.extensions[SLOTS]
    connections = current_app.extensions[CONNECTIONS]
    return jsonify(status="ok", uptime=round(time.time() - STARTED_AT, 3), cameras=states,
                   streams=slots.used, max_viewers=slots.limit, streams_refused=slots.refused,
                   # Counted by camstream's own server only (not under waitress-serve).
                   connections=connections.as_dict() if connections.limit else None)
