"""A hub's peers' recordings: listed with the hub's own, played back and downloaded through the hub.

``/api/recordings`` at the hub asks the peer of a ``PEER.CAMERA`` (or, for
every camera, each peer in parallel) for its ``/api/recordings``, bounded in
time and size like its events (webapp/runtime/peer_events.py), and names
each segment's camera and playback URL as the hub's. A peer camera's
``/playback`` (MJPEG) and span download (``/api/recordings/NAME.mp4``) are
the peer's, read from it as they come and handed on: nothing is kept at the
hub, the peer makes the file once (and keeps it a while, as for its own
viewers), and a player's range requests go to the peer as they are.

The hub checks a request as for a local camera before it asks the peer, so a
bad one gets the hub's own 400; what the peer refuses becomes a 4xx JSON of
the hub's words, and a peer that is down or answers garbage a 502 JSON,
never a 500 and never with the hub's credential.
"""

from __future__ import annotations

import http.client
import logging
from collections.abc import Collection, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import quote

from flask import Response, abort, jsonify

from camera import BaseCamera
from camera.sources.peer import PeerCamera

from ..config.values import NAME_PATTERN
from .peer_events import CHUNK, PeerAccess, PeerRequestError, Peers, list_of

log = logging.getLogger("camstream.peers")

# A peer makes a span's MP4 before its first bytes (or sends a playback's frames paced as recorded): a read may
# wait this long before the peer is taken for gone.
STREAM_TIMEOUT = 30.0
# What each route of a peer that is relayed answers.
EXPECTED = {"/playback/{}": "multipart/x-mixed-replace", "/api/recordings/{}.mp4": "video/mp4"}
# What a player sends and gets back about ranges, handed on both ways; nothing else of the peer's headers is.
RANGE_HEADERS = ("Range", "If-Range")
PASSED_HEADERS = ("Content-Length", "Content-Range", "Accept-Ranges", "Last-Modified", "ETag", "Cache-Control",
                  "Pragma")


def peer_of(camera: BaseCamera | None) -> PeerCamera | None:
    """``camera`` when it is a peer's (``PEER.CAMERA``), else None."""
    return camera if isinstance(camera, PeerCamera) else None


def _renamed(peer: str, segment: Mapping[str, Any]) -> dict[str, Any] | None:
    camera, start = segment.get("camera"), segment.get("start")
    if not isinstance(camera, str) or not NAME_PATTERN.fullmatch(camera) or not isinstance(start, int | float) \
            or isinstance(start, bool) or not isinstance(segment.get("end"), int | float):
        return None
    name = f"{peer}.{camera}"
    return {**segment, "camera": name, "peer": peer, "playback": f"/playback/{name}?start={start:.3f}"}


def _recordings_of(access: PeerAccess, params: Mapping[str, str]) -> list[dict[str, Any]]:
    found = [_renamed(access.name, segment) for segment in list_of(access, "/api/recordings", params, "recordings")]
    return [segment for segment in found if segment is not None]


def peer_recordings(peers: Peers | None, camera: BaseCamera | None, start: float | None, end: float | None,
                    limit: int, visible: Collection[str] | None) -> list[dict[str, Any]] | None:
    """The peers' recordings for ``/api/recordings``, oldest first: a peer camera's (502 JSON if its peer
    fails), or for ``camera`` None every peer's that the requester may see (a peer that fails is left out).
    None when no peer is to be asked: a local camera, or a server without peers."""
    found = peer_of(camera)
    if peers is None or not peers.links or camera is not None and found is None:
        return None
    params = {"limit": str(limit), "start": "" if start is None else f"{start:.3f}",
              "end": "" if end is None else f"{end:.3f}"}
    if found is not None:
        access = peers.access(found.health.name)
        if access is None:
            abort(404, description=f"no camera named {found.name!r}")
        try:
            return _recordings_of(access, {**params, "camera": found.remote_name})[:limit]
        except PeerRequestError as exc:
            abort(_refused(exc, f"nothing of camera {found.name!r} is recorded"))
    accesses = peers.accesses()
    if not accesses:
        return None

    def ask(access: PeerAccess) -> list[dict[str, Any]]:
        try:
            return _recordings_of(access, params)
        except PeerRequestError as exc:
            log.debug("recordings of %s", exc)
            return []

    with ThreadPoolExecutor(max_workers=min(8, len(accesses)), thread_name_prefix="peer-recordings") as pool:
        listed = [segment for segments in pool.map(ask, accesses) for segment in segments]
    return merged([segment for segment in listed if visible is None or segment["camera"] in visible], [], limit)


def merged(local: list[dict[str, Any]], remote: list[dict[str, Any]], limit: int) -> list[dict[str, Any]]:
    """One list of segments, oldest first, at most ``limit``."""
    return sorted(local + remote, key=lambda segment: (segment["start"], segment["camera"]))[:limit]


def peer_stream(camera: BaseCamera, peers: Peers | None, route: str, params: Mapping[str, str],
                headers: Mapping[str, str], nothing: str, download_name: str | None = None) -> Response | None:
    """A peer camera's ``route`` (``/playback/{}`` or ``/api/recordings/{}.mp4``, ``{}`` its name at the peer)
    read from the peer as it comes and handed on, with the player's range headers; None for a local camera.
    ``nothing``: the 404's words when the peer has nothing of it. An answer of another kind than the route's
    (MJPEG, MP4) is the peer's garbage: a 502."""
    found = peer_of(camera)
    if found is None:
        return None
    access = peers.access(found.health.name) if peers is not None else None
    if access is None:
        abort(404, description=f"no camera named {camera.name!r}")
    sent = {key: headers[key] for key in RANGE_HEADERS if headers.get(key)}
    try:
        response = access.open(route.format(quote(found.remote_name)), params, timeout=STREAM_TIMEOUT, headers=sent)
    except PeerRequestError as exc:
        abort(_refused(exc, nothing))
    passed = {key: value for key in PASSED_HEADERS if (value := response.headers.get(key))}
    if download_name is not None:
        passed["Content-Disposition"] = f'attachment; filename="{download_name}"'
    passed["X-Accel-Buffering"] = "no"
    content_type = response.headers.get("Content-Type", "")
    if not content_type.startswith(EXPECTED[route]):
        response.close()
        abort(_json(502, f"peer {access.name} answered {content_type[:60]!r}, not {EXPECTED[route]}"))

    def body() -> Iterator[bytes]:
        try:
            # read1: what has come, at once (a playback's frames are paced; a download is sent as it is made).
            while chunk := response.read1(CHUNK):
                yield chunk
        except (OSError, http.client.HTTPException):
            return  # the peer went away mid-stream: the client sees it end, as from any upstream
        finally:
            response.close()
    return Response(body(), status=response.status, content_type=content_type, headers=passed,
                    direct_passthrough=True)


def _refused(exc: PeerRequestError, nothing: str) -> Response:
    """The hub's answer to a peer's failure: its 404 and range errors as the hub's, a peer that is busy as 503,
    and anything else (down, garbage, the hub's credential refused) as 502; the words name no secret."""
    if exc.status == 404:
        return _json(404, nothing)
    if exc.status == 416:
        return _json(416, "the range asked for is not in the file")
    if exc.status == 400:
        return _json(400, f"{exc}: the request was refused")
    if exc.status == 503:
        response = _json(503, f"{exc}: it is busy; try again shortly")
        response.headers["Retry-After"] = "2"
        return response
    return _json(502, str(exc))



def _json(status: int, message: str) -> Response:
    """An error as the hub's API tells every error (webapp/api/errors.py)."""
    response = jsonify(error=message, status=status)
    response.status_code = status
    return response
