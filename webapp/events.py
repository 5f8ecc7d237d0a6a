"""``/events``: every detection result and camera state change, pushed as Server-Sent Events."""

from __future__ import annotations

import socket
from collections.abc import Callable

from flask import Blueprint, Flask, Response, abort, current_app, request

from camera import sse
from camera.events import EventHub, EventLog
from camera.sender import SocketViewer, StreamSender

from .shared import get_camera, some_cameras, visible_names
from .streaming import serve_stream

bp = Blueprint("events", __name__)

# The keys under app.extensions that hold an app's event log and what feeds it.
EVENTS = "camstream.events"
HUB = "camstream.events.hub"


def events_of(app: Flask) -> EventLog:
    return app.extensions[EVENTS]


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
    log = events_of(current_app)
    last_id = _last_event_id(log)
    current_app.extensions[HUB].reader_joined()

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
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 19):
        abort(400, description=f"Last-Event-ID must be an event number, not {raw[:40]!r}")
    return int(raw)


def hub_of(app: Flask) -> EventHub:
    """What feeds the event log: its cameras' states and detectors' results (see :meth:`EventHub.watch`)."""
    return app.extensions[HUB]


def start_events(app: Flask, status_of: Callable) -> None:
    """Give ``app`` its event log; each camera is added to its hub as it starts."""
    log = EventLog()
    app.extensions[EVENTS] = log
    app.extensions[HUB] = EventHub(log, lambda camera: status_of(camera, app))
