"""Results pushed as they happen: ``/events`` (Server-Sent Events) and ``/ws/<name>`` (WebSocket).

``/events`` carries every detection result and camera state change.
``/ws/<name>`` carries one camera's frames and events both ways; waitress
has no WebSocket support, so camstream's socket handoff gives it the
connection: the handshake is answered here and the socket goes to the
sender thread, where wsproto frames what goes each way.
"""

from __future__ import annotations

import socket
from collections.abc import Callable

from flask import Blueprint, Response, abort, current_app, request

from camera.events import EventLog
from camera.viewers import sse
from camera.viewers.sender import SocketViewer, StreamSender
from camera.viewers.websocket import WebSocketViewer

from ..runtime.registry import runtime_of
from ..serve.streaming import serve_stream
from ..serve.websocket import NOT_UPGRADED, serve_websocket
from .common import get_camera, some_cameras, visible_names, whole_number

bp = Blueprint("push", __name__)


@bp.get("/events")
def events() -> Response:
    """``text/event-stream`` of ``?cameras=a,b`` (all by default): ``detection``, ``state`` and ``status`` events.

    A reader that comes back with ``Last-Event-ID`` (``EventSource`` sends
    it by itself) gets what it missed, as far as the log still holds it.
    """
    names = [name for name in request.args.get("cameras", "").split(",") if name]
    visible = visible_names()
    if visible is not None:
        some_cameras()  # a 404 for a requester who can see none
    cameras = {get_camera(name).name for name in names} or (set(visible) if visible is not None else None)
    runtime = runtime_of(current_app)
    log = runtime.events
    last_id = _last_event_id(log)
    runtime.hub.reader_joined()

    def socket_viewer(sock: socket.socket, head: bytes, sender: StreamSender,
                      on_close: Callable[[], None]) -> tuple[SocketViewer, Callable[[], None]]:
        return sse.EventViewer(sock, head, sender, log, cameras, last_id, on_close), lambda: None

    return serve_stream(sse.CONTENT_TYPE, sse.OPENING, socket_viewer,
                        lambda is_disconnected: sse.event_stream(log, cameras, last_id, is_disconnected))


def _last_event_id(log: EventLog) -> int:
    """Where the reader left off: ``Last-Event-ID`` (or ``?last_event_id=``); a new reader starts now."""
    raw = request.headers.get("Last-Event-ID") or request.args.get("last_event_id", "")
    if not raw:
        return log.last_id
    return whole_number(raw, "Last-Event-ID", "an event number")


@bp.get("/ws/<name>")
def not_upgraded(name: str) -> Response:
    """A plain request to a WebSocket endpoint."""
    get_camera(name)
    abort(400, description=NOT_UPGRADED)


# Werkzeug routes a request with "Upgrade: websocket" only to rules marked websocket=True.
@bp.route("/ws/<name>", websocket=True)
def websocket(name: str) -> Response:
    camera = get_camera(name)
    runtime = runtime_of(current_app)
    overlay, log = runtime.overlays.get(camera.name), runtime.events

    def socket_viewer(sock: socket.socket, head: bytes, sender: StreamSender,
                      on_close: Callable[[], None]) -> tuple[SocketViewer, Callable[[], None]]:
        viewer = WebSocketViewer(sock, head, sender, source=camera, overlay=overlay, log=log, on_close=on_close)
        return viewer, viewer.attach

    return serve_websocket(camera, socket_viewer)
