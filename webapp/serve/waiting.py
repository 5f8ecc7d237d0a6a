"""HLS requests that wait for what has not come yet, answered by the sender thread where the socket can be taken.

A route gives an *outcome*: called with whether the request's time is up,
it returns the :data:`Answer` once there is one (None: wait on). If there
is one at once, it is answered as any response. Otherwise the socket is
taken from waitress (webapp/serve/handoff.py) and handed, as a
:class:`~camera.viewers.hls_wait.WaitingAnswer`, to the stream sender,
which asks the outcome again whenever the camera's HLS window changes and
once a second, and writes the answer; no worker thread waits. The number
of requests waiting at once in a server is bounded (503 beyond it). Under
a server whose sockets cannot be taken, a worker thread waits, bounded.
The outcome runs on the sender thread: it must not touch Flask's request.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from http import HTTPStatus

from flask import Flask, Response, abort, current_app, g, request
from werkzeug.http import http_date

from camera import BaseCamera
from camera.media.hls import HlsWindow
from camera.viewers.hls_wait import WaitingAnswer, WaitLimit, http_answer
from camera.viewers.sender import SenderStopped

from ..api.common import unavailable
from ..api.errors import RETRY_AFTER_SECONDS, error_body
from ..runtime.registry import runtime_of
from .handoff import take_socket

# An answer: status, body, content type, Cache-Control (None: none).
Answer = tuple[int, bytes, str, str | None]
_WAITS_LOCK = threading.Lock()


def waited(camera: BaseCamera, what: str) -> Answer:
    """503: what the request waited for did not come (players ask again after ``Retry-After``)."""
    return 503, error_body(503, f"camera {camera.name!r} {what}"), "application/json", None


def answer_or_wait(camera: BaseCamera, hls: HlsWindow, outcome: Callable[[bool], Answer | None],
                    timeout: float) -> Response:
    """The answer now if it is there; else wait for it, on the sender thread where the socket can be taken."""
    found = outcome(False)
    if found is not None:
        return response_of(found)
    if request.method == "GET" and current_app.config["SOCKET_HANDOFF"]:
        waits = _waits(current_app)
        if not waits.acquire():
            abort(unavailable(f"{waits.limit} HLS requests are waiting already; try again shortly"))
        handed = _hand_to_sender(camera, hls, outcome, timeout, waits)
        if handed is not None:
            return handed
        waits.release()
    # A worker thread waits: a server whose sockets cannot be taken.
    camera.hold()
    try:
        hls.wait(lambda: outcome(False) is not None, timeout)
    finally:
        camera.unhold()
    return response_of(outcome(True) or waited(camera, "sent nothing in time"))


def _hand_to_sender(camera: BaseCamera, hls: HlsWindow, outcome: Callable[[bool], Answer | None],
                    timeout: float, waits: WaitLimit) -> Response | None:
    """Take the socket and let the sender thread answer it when ``outcome`` has the answer; None if the
    socket cannot be taken. From the moment it is taken, what the request holds (the camera awake, its
    place among the waiting) is given back once, when the socket closes."""
    base = {"Server": "camstream", **g.get("extra_headers", {})}  # CORS for an allowed origin (auth/guard.py)
    protocol = request.environ.get("SERVER_PROTOCOL", "HTTP/1.1")

    def respond(expired: bool) -> bytes | None:
        found = outcome(expired)
        if found is None:
            return None
        status, body, content_type, cache = found
        headers = {**base, "Date": http_date(), "Content-Type": content_type}
        headers["Cache-Control"] = cache or "no-store"
        if status == 503:
            headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return http_answer(status, HTTPStatus(status).phrase, headers, body, protocol)

    sock = take_socket(request.environ)
    if sock is None:
        return None
    camera.hold()  # awake while this request waits, however short the camera's idle timeout

    def done() -> None:
        camera.unhold()
        waits.release()
    sender = runtime_of(current_app).sender
    try:
        viewer = WaitingAnswer(sock, sender, respond, time.monotonic() + timeout, done)
        sender.add(viewer)
    except BaseException as exc:
        sock.close()
        done()
        if isinstance(exc, SenderStopped):
            return Response(status=503)  # waitress writes nothing: the socket is no longer its own
        raise
    viewer.listen_to(hls.add_listener, hls.remove_listener)
    viewer.wake()  # what came between the look above and listening
    return Response(status=200)


def _waits(app: Flask) -> WaitLimit:
    """The server's bound on waiting HLS requests."""
    with _WAITS_LOCK:
        return app.extensions.setdefault("camstream.hls_waits", WaitLimit())


def response_of(found: Answer) -> Response:
    """An answer as a response of the WSGI server's own."""
    status, body, content_type, cache = found
    response = Response(body, status=status, content_type=content_type)
    if cache is not None:
        response.headers["Cache-Control"] = cache
    if status == 503:
        response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


