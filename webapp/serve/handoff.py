"""Taking a stream's socket over from waitress.

A waitress worker thread would otherwise stay with each viewer for as long
as it watches, copying every frame through waitress's buffers. Instead the
route takes the client socket and gives it to the
:class:`~camera.viewers.sender.StreamSender`, which writes frames to every viewer
from one thread, and the worker is free again at once.

Waitress offers no public way to do this, so it leans on two facts about
waitress 3: the ``waitress.client_disconnected`` callable in the environ is
a method of the connection's channel, which holds the socket; and a channel
marked disconnected drops its response without writing a byte and closes
its own descriptor, which leaves our duplicate (and so the connection) open.
Under any other server :func:`take_socket` returns None and the route
streams through WSGI as usual.
"""

from __future__ import annotations

import contextlib
import logging
import socket
from typing import Any

_QUIET = "Client disconnected while serving"


def take_socket(environ: dict[str, Any]) -> socket.socket | None:
    """Take the client connection away from waitress; None if this is not waitress."""
    channel = getattr(environ.get("waitress.client_disconnected"), "__self__", None)
    original = getattr(channel, "socket", None)
    if not isinstance(original, socket.socket) or not getattr(channel, "connected", False):
        return None
    try:
        ours = original.dup()
    except OSError:
        return None
    # Waitress now aborts the response as if the client had left, and logs so.
    channel.connected = False
    # And it must read no more: what the client sends from now on (a
    # WebSocket's messages) is for the new owner. A read it was about to
    # make finds nothing to do, and its next poll leaves the socket out.
    channel.will_close = True
    channel.handle_read = _read_nothing
    # A read the loop had already begun finds the socket drained by its new owner (EAGAIN): that is no
    # error to log with a traceback, only the end of waitress's side.
    channel.handle_error = lambda: _close_quietly(channel)
    trigger = getattr(getattr(channel, "server", None), "pull_trigger", None)
    if trigger is not None:
        trigger()
    _silence_handoff_log()
    return ours


def _read_nothing() -> None:
    """Stands in for a handed-off channel's ``handle_read``."""


def _close_quietly(channel: Any) -> None:
    """Stands in for a handed-off channel's ``handle_error``: close waitress's descriptor (ours stays open)."""
    with contextlib.suppress(OSError):  # a channel already closing may fail to close again: nothing is lost
        channel.handle_close()


class _HandoffFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(_QUIET)


_filter = _HandoffFilter()


def _silence_handoff_log() -> None:
    logger = logging.getLogger("waitress")
    if _filter not in logger.filters:
        logger.addFilter(_filter)
