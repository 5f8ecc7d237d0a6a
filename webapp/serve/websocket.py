"""Answering a WebSocket handshake and handing the connection to the sender thread.

Waitress has no WebSocket support; camstream's socket handoff gives it the
connection, so the handshake (RFC 6455) is checked and answered here and
the socket goes to the sender thread, where wsproto frames what the client
sends. ``/ws`` and ``/mse`` both come this way.
"""

from __future__ import annotations

import base64
import binascii

from flask import Response, abort, current_app, request
from wsproto.utilities import generate_accept_token

from camera import BaseCamera

from ..api.common import require_usable
from ..api.errors import json_error
from .streaming import ViewerFactory, serve_socket

NOT_UPGRADED = "a WebSocket needs 'Upgrade: websocket' and 'Connection: Upgrade'"


def serve_websocket(camera: BaseCamera, make_viewer: ViewerFactory) -> Response:
    """Answer the handshake of a WebSocket for ``camera`` and give the socket to a viewer from ``make_viewer``."""
    key = _handshake_key()
    require_usable(camera)
    if not current_app.config["SOCKET_HANDOFF"]:
        return json_error(501, "WebSocket needs camstream's own server with socket handoff (python -m webapp, "
                               "without --no-handoff): the WSGI path cannot take the connection over")
    head = ("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Accept: {generate_accept_token(key.encode('ascii')).decode('ascii')}\r\n"
            "Server: camstream\r\n\r\n")
    return serve_socket(head.encode("latin-1"), make_viewer)


def _handshake_key() -> str:
    """The client's ``Sec-WebSocket-Key`` from a valid RFC 6455 upgrade request; else a 4xx JSON error."""
    headers = request.headers
    if headers.get("Upgrade", "").lower() != "websocket" or "upgrade" not in headers.get("Connection", "").lower():
        abort(400, description=NOT_UPGRADED)
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
