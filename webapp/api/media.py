"""A camera's own video, passed through: ``/mse/<name>`` (a WebSocket for Media Source Extensions) and HLS.

Only for a camera whose source passes its video through (an RTSP H.264 or
H.265 camera); any other answers 404 with where its MJPEG is. HLS segments
and parts have names that never change their bytes, so an HTTP cache
(nginx, a CDN) may keep them: on a server without sign-in they say
``public``; behind sign-in ``private``, so no shared cache hands them on.

HLS (camera/media/hls.py keeps the rules): ``index.m3u8`` is the media
playlist, Low-Latency HLS included (regular players skip its parts);
``master.m3u8`` the multivariant playlist naming its codecs, size and bit
rate. A blocking reload (``_HLS_msn``, ``_HLS_part``) and a request for the
hinted next part wait for it without a worker thread: the socket is taken
and answered by the sender thread (webapp/serve/waiting.py); under a
server whose sockets cannot be taken, a worker waits, bounded. A camera
that is down answers its playlists 503 at once, with ``Retry-After``.
Every URI in a playlist carries the request's ``token``.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Callable

from flask import Blueprint, Response, abort, current_app, request

from camera import FAILED, RECONNECTING, BaseCamera
from camera.media import MediaFeed
from camera.media.hls import token_query
from camera.viewers.mse import MseViewer
from camera.viewers.sender import SocketViewer, StreamSender

from ..auth import auth_of
from ..serve.waiting import Answer, answer_or_wait, response_of, waited
from ..serve.websocket import NOT_UPGRADED, serve_websocket
from .common import get_camera, require_usable, unavailable, whole_number
from .errors import error_body

bp = Blueprint("media", __name__)

# How long the first playlist request waits for three target durations of segments (a camera starting).
FIRST_SEGMENT_TIMEOUT = 15.0
# A blocking reload or part request waits this many target durations at most, then answers 503.
BLOCKING_TARGETS = 3
PLAYLIST = "application/vnd.apple.mpegurl"
_SEGMENT = re.compile(r"seg-([0-9a-f]{8})-([0-9]{1,12})\.m4s")
_PART = re.compile(r"part-([0-9a-f]{8})-([0-9]{1,12})\.m4s")
_INIT = re.compile(r"init-([0-9a-f]{8})\.mp4")
_CODECS = re.compile(r'codecs="([^"]+)"')


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
    """The media playlist. The first request wakes the camera and waits (bounded) for three target durations;
    ``_HLS_msn`` (and ``_HLS_part``) ask for it once that segment (or part) is in it."""
    camera = get_camera(name)
    hls = media_of(camera).hls
    require_usable(camera)
    msn, part = _blocking_query()
    _refuse_if_down(camera)
    camera.start()
    token = request.args.get("token")
    cache = _cache("max-age=1")

    def give(enough: bool) -> Answer | None:
        text = hls.playlist(token) if hls.playlist_ready(enough) else None
        return None if text is None else (200, text.encode(), PLAYLIST, cache)

    if msn is None:
        def outcome(expired: bool) -> Answer | None:
            return _down_answer(camera) or give(enough=not expired) or (
                waited(camera, "has sent no whole segment yet") if expired else None)
        return answer_or_wait(camera, hls, outcome, FIRST_SEGMENT_TIMEOUT)
    if hls.blocking_state(msn, part) == "far":
        abort(400, description=f"_HLS_msn={msn} is more than two segments ahead of the playlist")

    def blocked(expired: bool) -> Answer | None:
        if hls.blocking_state(msn, part) == "ready" and hls.playlist_ready(False):
            return give(enough=False)
        down = _down_answer(camera)
        if down is not None or expired:
            return down or waited(camera, f"segment {msn} part {part} did not come in time")
        return None
    return answer_or_wait(camera, hls, blocked, BLOCKING_TARGETS * (hls.target or 2))


def _blocking_query() -> tuple[int | None, int | None]:
    """``_HLS_msn`` and ``_HLS_part`` (RFC 8216bis 6.2.5.2); a 400 for a part without a segment."""
    raw_msn, raw_part = request.args.get("_HLS_msn"), request.args.get("_HLS_part")
    if raw_part is not None and raw_msn is None:
        abort(400, description="_HLS_part needs _HLS_msn")
    msn = whole_number(raw_msn, "_HLS_msn", "a media sequence number") if raw_msn is not None else None
    part = whole_number(raw_part, "_HLS_part", "a part number", high=100_000) if raw_part is not None else None
    return msn, part


def _down(camera: BaseCamera) -> bool:
    return camera.state in (RECONNECTING, FAILED)


def _refuse_if_down(camera: BaseCamera) -> None:
    """A camera without signal answers at once: players ask again after ``Retry-After``."""
    if _down(camera):
        status = camera.status()
        abort(unavailable(f"camera {camera.name!r} has no signal: {status['last_error']}", camera=status))


def _down_answer(camera: BaseCamera) -> Answer | None:
    if not _down(camera):
        return None
    return 503, error_body(503, f"camera {camera.name!r} has no signal"), "application/json", None


def _master(camera: BaseCamera, feed: MediaFeed) -> Response:
    """The multivariant playlist: one variant, the media playlist, with its codecs, size and peak bit rate."""
    hls = feed.hls
    require_usable(camera)
    _refuse_if_down(camera)
    camera.start()
    token = request.args.get("token")
    query = token_query(token)
    cache = _cache("max-age=1")
    video = camera.status().get("video", {})
    told = (video.get("width"), video.get("height"))  # where the init's tkhd says no size

    def outcome(expired: bool) -> Answer | None:
        if not hls.playlist_ready(False):
            down = _down_answer(camera)
            return down or (waited(camera, "has sent no whole segment yet") if expired else None)
        codecs = _CODECS.search(feed.mime_type)
        size = hls.size_of_video or told
        attributes = [f"BANDWIDTH={hls.peak_bitrate() or 1_000_000}"]
        if codecs:
            attributes.append(f'CODECS="{codecs[1]}"')
        if size[0] and size[1]:
            attributes.append(f"RESOLUTION={size[0]}x{size[1]}")
        text = "\n".join(["#EXTM3U", "#EXT-X-VERSION:9", "#EXT-X-INDEPENDENT-SEGMENTS",
                          f"#EXT-X-STREAM-INF:{','.join(attributes)}", f"index.m3u8{query}"]) + "\n"
        return 200, text.encode(), PLAYLIST, cache
    return answer_or_wait(camera, hls, outcome, FIRST_SEGMENT_TIMEOUT)


@bp.get("/hls/<name>/<file>")
def segment(name: str, file: str) -> Response:
    """The multivariant playlist, an init segment, a segment or a part named by the playlist; 404 once it is
    gone. The part a preload hint names is answered when it comes."""
    camera = get_camera(name)
    feed = media_of(camera)
    hls = feed.hls
    if file == "master.m3u8":
        return _master(camera, feed)
    camera.start()  # a reader keeps the camera awake
    immutable = _cache("max-age=3600, immutable")
    if match := _PART.fullmatch(file):
        number = int(match[2])
        if match[1] == hls.id:
            state, data = hls.part_state(number)
            if state == "ready" and data is not None:
                return response_of((200, data, "video/mp4", immutable))
            if state == "wait":
                def part(expired: bool) -> Answer | None:
                    now, found = hls.part_state(number)
                    if now == "ready" and found is not None:
                        return 200, found, "video/mp4", immutable
                    if now == "gone" or expired or _down(camera):
                        return waited(camera, f"part {number} did not come")
                    return None
                return answer_or_wait(camera, hls, part, BLOCKING_TARGETS * (hls.target or 2))
        data = None
    elif match := _SEGMENT.fullmatch(file):
        data = hls.segment(match[1], int(match[2]))
    elif match := _INIT.fullmatch(file):
        data = hls.init_of(match[1])
    else:
        abort(404, description=f"no HLS file named {file[:80]!r}")
    if data is None:
        abort(404, description=f"{file[:80]!r} is no longer (or not yet) in camera {camera.name!r}'s window")
    return Response(data, content_type="video/mp4", headers={"Cache-Control": immutable})


def _cache(policy: str) -> str:
    """``policy`` for every cache on an open server; for the browser's alone behind sign-in."""
    shared = auth_of(current_app).open and "token" not in request.args
    return f"{'public' if shared else 'private'}, {policy}"
