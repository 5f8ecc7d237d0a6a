"""A camera's own video, passed through: ``/mse/<name>`` (a WebSocket for Media Source Extensions) and HLS.

Only for a camera whose source passes its video through (an RTSP H.264 or
H.265 camera); any other answers 404 with where its MJPEG is. HLS segments
are whole GOPs with names that never change their bytes, so an HTTP cache
(nginx, a CDN) may keep them: on a server without sign-in they say
``public``; behind sign-in ``private``, so no shared cache hands them on.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Callable

from flask import Blueprint, Response, abort, current_app, request

from camera import BaseCamera
from camera.media import MediaFeed
from camera.viewers.mse import MseViewer
from camera.viewers.sender import SocketViewer, StreamSender

from ..auth import auth_of
from ..serve.websocket import NOT_UPGRADED, serve_websocket
from .common import get_camera, require_usable, unavailable

bp = Blueprint("media", __name__)

# How long the first playlist request waits for the camera's first segment.
FIRST_SEGMENT_TIMEOUT = 15.0
PLAYLIST = "application/vnd.apple.mpegurl"
_SEGMENT = re.compile(r"seg-([0-9a-f]{8})-([0-9]{1,12})\.m4s")
_INIT = re.compile(r"init-([0-9a-f]{8})\.mp4")


def media_of(camera: BaseCamera) -> MediaFeed:
    """The camera's passed-through video; a 404 JSON error for a camera that has none."""
    if camera.media is None or camera.media.refused is not None:
        why = camera.media.refused if camera.media is not None else "only an H.264 or H.265 camera's is"
        abort(404, description=f"camera {camera.name!r} sends no video that is passed through ({why}); "
                               f"its MJPEG is /video_feed/{camera.name}")
    return camera.media


@bp.get("/mse/<name>")
def mse_not_upgraded(name: str) -> Response:
    """A plain request to the MSE WebSocket."""
    media_of(get_camera(name))
    abort(400, description=NOT_UPGRADED)


@bp.route("/mse/<name>", websocket=True)
def mse(name: str) -> Response:
    """The camera's fMP4 over a WebSocket: a text header with the codecs, the init segment, then fragments."""
    camera = get_camera(name)
    feed = media_of(camera)

    def socket_viewer(sock: socket.socket, head: bytes, sender: StreamSender,
                      on_close: Callable[[], None]) -> tuple[SocketViewer, Callable[[], None]]:
        viewer = MseViewer(sock, head, sender, feed=feed, camera_name=camera.name, on_close=on_close)

        def attach() -> None:
            viewer.attach()
            camera.start()  # the first viewer wakes the camera; the viewer count keeps it awake
        return viewer, attach

    return serve_websocket(camera, socket_viewer)


@bp.get("/hls/<name>/index.m3u8")
def playlist(name: str) -> Response:
    """The live playlist: the newest few segments. The first request wakes the camera and waits for a segment."""
    camera = get_camera(name)
    feed = media_of(camera)
    require_usable(camera)
    camera.hold()  # awake while this request waits, however short the camera's idle timeout
    try:
        ready = feed.hls.wait_ready(FIRST_SEGMENT_TIMEOUT)
    finally:
        camera.unhold()
    if not ready:
        abort(unavailable(f"camera {camera.name!r} has sent no whole segment yet", camera=camera.status()))
    text = feed.hls.playlist()
    if text is None:
        abort(unavailable(f"camera {camera.name!r} is restarting its stream"))
    return Response(text, content_type=PLAYLIST, headers={"Cache-Control": _cache("max-age=1")})


@bp.get("/hls/<name>/<file>")
def segment(name: str, file: str) -> Response:
    """An init segment or a media segment named by the playlist; 404 once it has left the window."""
    camera = get_camera(name)
    hls = media_of(camera).hls
    camera.start()  # a reader keeps the camera awake
    if match := _SEGMENT.fullmatch(file):
        data = hls.segment(match[1], int(match[2]))
    elif match := _INIT.fullmatch(file):
        data = hls.init_of(match[1])
    else:
        abort(404, description=f"no HLS file named {file[:80]!r}")
    if data is None:
        abort(404, description=f"{file[:80]!r} is no longer (or not yet) in camera {camera.name!r}'s window")
    return Response(data, content_type="video/mp4",
                    headers={"Cache-Control": _cache("max-age=3600, immutable")})


def _cache(policy: str) -> str:
    """``policy`` for every cache on an open server; for the browser's alone behind sign-in."""
    shared = auth_of(current_app).open and "token" not in request.args
    return f"{'public' if shared else 'private'}, {policy}"
