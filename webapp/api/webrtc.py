"""WebRTC through WHEP (the WebRTC-HTTP egress protocol): ``/whep/<name>`` plays a camera's own H.264, passed
through, with its AAC as Opus, to a browser, OBS, GStreamer's ``whepsrc`` or Home Assistant.

- ``POST /whep/<name>`` with an SDP offer (``Content-Type: application/sdp``)
  answers ``201`` with the SDP answer (every candidate of the server's in
  it), and ``Location`` the session's URL.
- ``PATCH`` on that URL with ``application/trickle-ice-sdpfrag`` adds the
  client's candidates as it finds them (trickle ICE, ``204``); an ICE
  restart is refused with ``422``. ``DELETE`` ends the session;
  ``OPTIONS /whep/<name>`` says what is accepted.
- ``GET /api/webrtc`` gives the page the STUN and TURN servers
  (``--webrtc-ice-server``) for its ``RTCPeerConnection``;
  ``GET /api/webrtc/<name>`` a camera's WebRTC side (also its status's
  ``webrtc`` block, and ``camstream_webrtc_*`` in ``/metrics``).

Sign-in is that of ``/mse``: a session (with its CSRF token, as any POST
from the page), HTTP Basic, or a token for that camera in ``?token=``. A
session takes one of ``--max-viewers``'s slots for as long as it lasts,
and is ended like any other stream when its sign-in or token is revoked.
The peer connections run on one asyncio loop for the whole process
(camera/webrtc).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from typing import Any

from flask import Blueprint, Flask, Response, abort, current_app, request, url_for
from flask.blueprints import BlueprintSetupState
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from camera import STARTING, STREAMING, BaseCamera
from camera.webrtc import (
    IceRestartError,
    IceServer,
    OfferError,
    WebRtcEngine,
    parse_ice_server,
    parse_port_range,
)

from ..auth import auth_of, principal, still_allowed
from ..config.values import ConfigError, names_list
from ..runtime.registry import runtime_of
from .common import NO_STORE, get_camera, require_usable, unavailable
from .errors import json_error
from .media import media_of

log = logging.getLogger("camstream.webrtc")

bp = Blueprint("webrtc", __name__)

EXTENSION = "camstream.webrtc"
SDP = "application/sdp"
TRICKLE = "application/trickle-ice-sdpfrag"
# The longest offer taken: a browser's is 3-10 KB.
MAX_OFFER_BYTES = 64 * 1024
_lock = threading.Lock()


@bp.record_once
def _setup(state: BlueprintSetupState) -> None:
    """Read the settings when the app is made, so one that is wrong stops the start, naming it."""
    app = state.app
    try:
        servers = [parse_ice_server(text) for text in names_list(app.config.get("WEBRTC_ICE_SERVERS"))]
        ports = parse_port_range(app.config.get("WEBRTC_PORTS"))
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc
    app.extensions[EXTENSION + ".settings"] = (servers, ports)
    runtime = runtime_of(app)
    runtime.metrics.registry.register(WebRtcCollector(app))
    runtime.status_parts["webrtc"] = lambda camera: camera_status(app, camera)


def engine_of(app: Flask) -> WebRtcEngine:
    """The app's WHEP sessions, started (with the WebRTC loop) by the first offer."""
    with _lock:
        engine = app.extensions.get(EXTENSION)
        if engine is None:
            servers, ports = app.extensions.get(EXTENSION + ".settings", ([], None))
            engine = app.extensions[EXTENSION] = WebRtcEngine(servers, ports)
        return engine


def _allow() -> dict[str, str]:
    return {"Accept-Post": SDP, "Accept-Patch": TRICKLE, "Allow": "OPTIONS, POST"}


@bp.route("/whep/<name>", methods=["OPTIONS"])
def whep_options(name: str) -> Response:
    """What the WHEP endpoint accepts, and the ICE servers (``Link``, as the WHEP draft has it)."""
    get_camera(name)
    response = Response(status=204, headers=_allow())
    _link_ice_servers(response, _ice_servers())
    return response


@bp.post("/whep/<name>")
def whep(name: str) -> Response:
    """An SDP offer in; ``201`` with the answer and the session's ``Location`` out."""
    camera = get_camera(name)
    feed = media_of(camera)
    if feed.mime_type and not any(codec in feed.mime_type for codec in ("avc1", "avc3", "hvc1", "hev1")):
        abort(404, description=f"camera {camera.name!r} sends neither H.264 nor H.265 ({feed.mime_type}): "
                               f"/mse/{camera.name} and /hls/{camera.name}/index.m3u8 play it")
    offer = _offer()
    require_usable(camera)
    slots = runtime_of(current_app).slots
    slot = slots.acquire()
    if slot is None:
        abort(unavailable(f"all {slots.limit} stream slots are taken; try again shortly", max_viewers=slots.limit))
    engine = engine_of(current_app)
    try:
        camera.start()  # the offer is answered with the camera's own H.264 profile once its stream is known
        try:
            session = engine.open(feed, camera.name, offer, lambda: camera.state in (STARTING, STREAMING))
        except OfferError as exc:
            abort(400, description=str(exc))
        except TimeoutError:
            abort(unavailable("the offer could not be answered in time (ICE servers that do not answer?)"))
        session.when_closed(slot.release)
        check = still_allowed(principal())
        if check is not None:
            session.when_closed(auth_of(current_app).streams.watch(check, lambda: engine.close_soon(session.id)))
    except BaseException:
        slot.release()
        raise
    answer = session.pc.localDescription.sdp
    location = url_for("webrtc.whep_end", name=camera.name, session_id=session.id)
    token = request.args.get("token")
    if token:
        location += f"?token={token}"
    response = Response(answer, status=201, content_type=SDP,
                        headers={"Location": location, "ETag": f'"{session.id}"', "Accept-Patch": TRICKLE,
                                 **NO_STORE, "Access-Control-Expose-Headers": "Location, ETag, Link, Accept-Patch"})
    _link_ice_servers(response, engine.ice_servers)
    log.info("WebRTC viewer of %s (%s)", camera.name, principal().via)
    return response


@bp.delete("/whep/<name>/<session_id>")
def whep_end(name: str, session_id: str) -> Response:
    """End a session (the WHEP client is done)."""
    camera = get_camera(name)
    engine = engine_of(current_app)
    session = engine.session(session_id)
    if session is None or session.camera != camera.name:
        abort(404, description="no such WebRTC session (it ended, or never was)")
    engine.close(session_id)
    return Response(status=200)


@bp.route("/whep/<name>/<session_id>", methods=["PATCH"])
def whep_patch(name: str, session_id: str) -> Response:
    """Trickle ICE (RFC 9725, 4.3.1; fragments as RFC 8840 has them): the client's candidates after its offer,
    ``204`` once added. An ICE restart (a new ufrag and password) is refused with ``422``: aiortc cannot
    restart ICE; a new session is made instead."""
    camera = get_camera(name)
    engine = engine_of(current_app)
    session = engine.session(session_id)
    if session is None or session.camera != camera.name:
        abort(404, description="no such WebRTC session (it ended, or never was)")
    if (request.mimetype or "").lower() != TRICKLE:
        abort(json_error(415, f"a WHEP PATCH is sent as {TRICKLE}, not {request.mimetype or 'nothing'!r}"))
    wanted = request.headers.get("If-Match")
    if wanted is not None and wanted.strip() not in ("*", f'"{session.id}"'):
        abort(json_error(412, "If-Match names another session's ETag"))
    fragment = _body("an ICE fragment")
    try:
        engine.trickle(session_id, fragment)
    except IceRestartError as exc:
        abort(json_error(422, f"{exc}: ICE restarts are not supported; make a new session"))
    except OfferError as exc:
        abort(400, description=str(exc))
    except KeyError:
        abort(404, description="no such WebRTC session (it ended, or never was)")
    except TimeoutError:
        abort(unavailable("the candidates could not be added in time"))
    return Response(status=204)


@bp.get("/api/webrtc")
def settings() -> Response:
    """What the page's WHEP player needs: the STUN/TURN servers for its ``RTCPeerConnection``."""
    return Response(current_app.json.dumps({"ice_servers": [server.as_json() for server in _ice_servers()],
                                            "whep": "whep/{name}"}),
                    content_type="application/json", headers=NO_STORE)


@bp.get("/api/webrtc/<name>")
def webrtc_status(name: str) -> Response:
    """A camera's WebRTC side: its viewers, whether its video is passed through, how its sound goes."""
    camera = get_camera(name)
    found = camera_status(current_app, camera)
    if found is None:
        abort(404, description=f"camera {camera.name!r} does not pass its video through: no WebRTC")
    return Response(current_app.json.dumps(found), content_type="application/json", headers=NO_STORE)


def camera_status(app: Flask, camera: BaseCamera) -> dict[str, Any] | None:
    """The ``webrtc`` block of a camera's status; None for a camera that passes no video through (MJPEG,
    a webcam): WebRTC does not play it."""
    feed = camera.media
    if feed is None:
        return None
    engine = app.extensions.get(EXTENSION)
    if engine is None:
        return WebRtcEngine.idle_status(feed)
    return engine.status_of(feed, camera.name)


class WebRtcCollector(Collector):
    """The cameras' WebRTC numbers for ``/metrics``, read at scrape time (nothing is counted for it)."""

    def __init__(self, app: Flask) -> None:
        self.app = app

    def collect(self) -> Iterator[Metric]:
        viewers = GaugeMetricFamily("camstream_webrtc_viewers", "WebRTC (WHEP) sessions of the camera",
                                    labels=["camera"])
        connected = GaugeMetricFamily("camstream_webrtc_connected", "WebRTC sessions whose peer is connected",
                                      labels=["camera"])
        frames = CounterMetricFamily("camstream_webrtc_frames_packetized",
                                     "Video frames made into RTP payloads, once for all the camera's WebRTC viewers",
                                     labels=["camera"])
        audio = CounterMetricFamily("camstream_webrtc_audio_packets",
                                    "Sound packets made once for all WebRTC viewers (Opus from AAC, or G.711 as it came)",
                                    labels=["camera", "codec"])
        path = GaugeMetricFamily("camstream_webrtc_path", "1 for how the camera reaches WebRTC viewers",
                                 labels=["camera", "video", "audio"])
        for name, camera in runtime_of(self.app).cameras.items():
            found = camera_status(self.app, camera)
            if found is None:
                continue
            viewers.add_metric([name], found["viewers"])
            connected.add_metric([name], found["connected"])
            frames.add_metric([name], found["frames_packetized"])
            audio.add_metric([name, "opus"], found["opus_packets"])
            audio.add_metric([name, "g711"], found["g711_packets"])
            path.add_metric([name, str(found["video"]), str(found["audio"])], 1.0)
        yield from (viewers, connected, frames, audio, path)


def _ice_servers() -> list[IceServer]:
    return list(current_app.extensions.get(EXTENSION + ".settings", ([], None))[0])


def _offer() -> str:
    """The request's SDP offer; a 4xx JSON error for anything else."""
    kind = (request.mimetype or "").lower()
    if kind != SDP:
        abort(json_error(415, f"a WHEP offer is sent as {SDP}, not {kind or 'nothing'!r}"))
    text = _body("an SDP offer")
    if not text.lstrip().startswith("v=0"):
        abort(400, description="the body is not an SDP offer (it starts with v=0)")
    return text


def _body(what: str) -> str:
    """The request's body as text, bounded; a 4xx JSON error for one too long or not UTF-8."""
    if (request.content_length or 0) > MAX_OFFER_BYTES:
        abort(413, description=f"{what} of more than {MAX_OFFER_BYTES} bytes")
    raw = request.get_data(cache=False)
    if len(raw) > MAX_OFFER_BYTES:
        abort(413, description=f"{what} of more than {MAX_OFFER_BYTES} bytes")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        abort(400, description=f"{what} that is not UTF-8 text")


def _link_ice_servers(response: Response, servers: list[IceServer]) -> None:
    """The ICE servers as WHEP's ``Link: <url>; rel="ice-server"`` headers (with TURN's credentials)."""
    for server in servers:
        link = f'<{server.url}>; rel="ice-server"'
        if server.username is not None:
            link += f'; username="{_quoted(server.username)}"; credential="{_quoted(server.credential or "")}"'
            link += '; credential-type="password"'
        response.headers.add("Link", link)


def _quoted(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def status_of_sessions(app: Flask, camera: str | None = None) -> list[dict[str, Any]]:
    """The app's WebRTC sessions, for a status page or a test."""
    engine = app.extensions.get(EXTENSION)
    return [] if engine is None else [session.stats() for session in engine.sessions(camera)]


def shutdown(app: Flask, timeout: float = 2.0) -> None:
    """End the app's WebRTC sessions and stop taking its cameras' fragments (webapp.app.shutdown calls it)."""
    engine = app.extensions.pop(EXTENSION, None)
    if engine is not None:
        engine.close_all(timeout)
        engine.detach()
