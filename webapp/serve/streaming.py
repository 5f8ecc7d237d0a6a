"""Serving an endless response: take a stream slot, then hand the socket to the sender thread or stream through WSGI.

MJPEG streams and event streams are served the same way; they differ only
in the viewer the sender thread writes for them and in the body a WSGI
server iterates instead.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator

from flask import Response, abort, current_app, g, request
from werkzeug.http import http_date

from camera.viewers.sender import SenderStopped, SocketViewer, StreamSender

from ..api.common import NO_STORE, unavailable
from ..auth import auth_of, principal, still_allowed
from ..runtime.registry import runtime_of
from .handoff import take_socket
from .slots import Slot

# Makes the viewer for a socket taken from the server: (sock, head, sender, on_close) -> (viewer, attach),
# where attach() subscribes it to what it shows once the sender owns it.
ViewerFactory = Callable[[socket.socket, bytes, StreamSender, Callable[[], None]],
                         tuple[SocketViewer, Callable[[], None]]]
# Makes the WSGI body, given waitress's "has the client gone" check (or None).
BodyFactory = Callable[[Callable[[], bool] | None], Iterator[bytes]]


def serve_stream(content_type: str, opening: bytes, make_viewer: ViewerFactory, make_body: BodyFactory) -> Response:
    """Take a stream slot and hand it, with the viewer, to the sender thread or to a WSGI response.

    ``opening`` is what the sender writes right after the headers (the WSGI
    body yields it itself). Whichever gets the slot gives it back when the
    stream ends; if anything fails on the way, it is given back here (a
    slot is given back once).
    """
    # Everything about the answer that could fail is made before a slot or the socket is taken.
    head = _head(content_type) + opening
    slot = _take_slot()
    try:
        handoff = request.method == "GET" and current_app.config["SOCKET_HANDOFF"]
        sock = take_socket(request.environ) if handoff else None
        if sock is None:
            return _wsgi_stream(make_body, content_type, slot)
        return _hand_off(make_viewer, sock, head, slot)
    except BaseException:
        slot.release()
        raise


def serve_socket(head: bytes, make_viewer: ViewerFactory) -> Response:
    """Take a stream slot and hand the socket to the sender thread, which writes ``head`` first.

    For a connection only the sender thread can serve (a WebSocket): the
    caller has checked that sockets are handed off.
    """
    slot = _take_slot()
    try:
        sock = take_socket(request.environ)
        if sock is None:
            slot.release()
            return unavailable("this server cannot hand the connection over", retry=False)
        return _hand_off(make_viewer, sock, head, slot)
    except BaseException:
        slot.release()
        raise


def _take_slot() -> Slot:
    """One of the app's stream slots; a 503 JSON error when all are taken."""
    slots = runtime_of(current_app).slots
    slot = slots.acquire()
    if slot is None:
        abort(unavailable(f"all {slots.limit} stream slots are taken; try again shortly", max_viewers=slots.limit))
    return slot


def _watch(slot: Slot, cut: Callable[[], None]) -> None:
    """Have the stream cut once the requester's session, password or token is revoked; the watch ends with
    the stream's slot."""
    check = still_allowed(principal())
    if check is not None:
        slot.tie(auth_of(current_app).streams.watch(check, cut))


def _hand_off(make_viewer: ViewerFactory, sock: socket.socket, head: bytes, slot: Slot) -> Response:
    """Give the viewer's socket and its stream slot to the sender thread; waitress drops the response returned."""
    sender = runtime_of(current_app).sender
    try:
        viewer, attach = make_viewer(sock, head, sender, slot.release)
        _watch(slot, viewer.close)
        sender.add(viewer)
    except BaseException as exc:
        sock.close()
        if isinstance(exc, SenderStopped):
            slot.release()
            return unavailable("the server is shutting down")
        raise
    # From here the sender owns the socket: closing the viewer releases everything.
    try:
        attach()
    except BaseException:
        viewer.close()
        raise
    return Response(status=200)


def _wsgi_stream(make_body: BodyFactory, content_type: str, slot: Slot) -> Response:
    """Stream through the WSGI server, holding one of its worker threads."""
    # Waitress offers this when it reads ahead on the connection; it lets a
    # stream notice a viewer that left while nothing is being sent.
    left = request.environ.get("waitress.client_disconnected")
    revoked = threading.Event()
    _watch(slot, revoked.set)
    body = make_body(lambda: revoked.is_set() or bool(left and left()))
    response = Response(_until(revoked, body), content_type=content_type,
                        headers={**NO_STORE, "X-Accel-Buffering": "no"})
    # Runs when the server closes the response, however the stream ended.
    response.call_on_close(slot.release)
    return response


def _until(revoked: threading.Event, body: Iterator[bytes]) -> Iterator[bytes]:
    """``body`` until ``revoked`` is set."""
    try:
        for chunk in body:
            if revoked.is_set():
                return
            yield chunk
    finally:
        close = getattr(body, "close", None)
        if close is not None:
            close()


def _head(content_type: str) -> bytes:
    """Status line and headers of a stream the sender writes itself."""
    protocol = request.environ.get("SERVER_PROTOCOL", "HTTP/1.1")
    if protocol not in ("HTTP/1.0", "HTTP/1.1"):
        protocol = "HTTP/1.1"
    headers = {
        "Content-Type": content_type,
        **NO_STORE,
        "X-Accel-Buffering": "no",
        "Connection": "close",
        "Server": "camstream",
        "Date": http_date(),
        # CORS headers for an allowed origin (see webapp/auth/guard.py).
        **g.get("extra_headers", {}),
    }
    lines = [f"{protocol} 200 OK", *(f"{name}: {value}" for name, value in headers.items()), "", ""]
    return "\r\n".join(lines).encode("latin-1")
