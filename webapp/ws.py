"""``/ws/<name>``: one camera's frames and events over a WebSocket, served by the sender thread.

Waitress has no WebSocket support; camstream's socket handoff gives it the
connection, so the handshake is answered here and the socket goes to the
sender thread, where wsproto frames what goes each way.
"""

from __future__ import annotations

import base64
import binascii
import socket
from collections.abc import Callable

from flask import Blueprint, Response, abort, current_app, request
from wsproto.utilities import generate_accept_token

from camera.sender import SocketViewer, StreamSender
from camera.websocket import WebSocketViewer

from .detectors import overlays_of
from .errors import json_error
from .events import events_of
from .shared import get_camera, require_usable
from .streaming import serve_socket

bp = Blueprint("ws", __name__)


@bp.get("/ws/<name>")
def not_upgraded(name: str) -> Response:
    """A plain request to a WebSocket endpoint."""
    get_camera(name)
    abort(400, description="a WebSocket needs 'Upgrade: websocket' and 'Connection: Upgrade'")


# Werkzeug routes a request with "Upgrade: websocket" only to rules marked websocket=True.
@bp.route("/ws/<name>", websocket=True)
def websocket(name: str) -> Response:
    camera = get_camera(name)
    key = _handshake_key()
    require_usable(camera)
    if not current_app.config["SOCKET_HANDOFF"]:
        return json_error(501, "WebSocket needs camstream's own server with socket handoff (python -m webapp, "
                               "without --no-handoff): the WSGI path cannot take the connection over")
    head = ("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Accept: {generate_accept_token(key.encode('ascii')).decode('ascii')}\r\n"
            "Server: camstream\r\n\r\n")
    overlay = overlays_of(current_app).get(camera.name)
    log = events_of(current_app)

    def socket_viewer(sock: socket.socket, head: bytes, sender: StreamSender,
                      on_close: Callable[[], None]) -> tuple[SocketViewer, Callable[[], None]]:
        viewer = WebSocketViewer(sock, head, sender, source=camera, overlay=overlay, log=log, on_close=on_close)
        return viewer, viewer.attach

    return serve_socket(head.encode("latin-1"), socket_viewer)


def _handshake_key() -> str:
    """The client's ``Sec-WebSocket-Key`` from a valid RFC 6455 upgrade request; else a 4xx JSON error."""
    headers = request.headers
    if headers.get("Upgrade", "").lower() != "websocket" or "upgrade" not in headers.get("Connection", "").lower():
        abort(400, description="a WebSocket needs 'Upgrade: websocket' and 'Connection: Upgrade'")
    if headers.get("Sec-WebSocket-Version") != "13":
        response = json_error(426, "only WebSocket version 13 (RFC 6455) is spoken here")
        response.headers["Sec-WebSocket-Version"] = "13"
        abort(response)
    key = headers.get("Sec-WebSocket-Key", "").strip()
    try:
        valid = len(base64.b64decode(key, validate=True)) == 16
    except (binascii.Error, ValueError):
        valid = False
    if not valid:
        abort(400, description="Sec-WebSocket-Key must be 16 bytes in base64")
    return key
