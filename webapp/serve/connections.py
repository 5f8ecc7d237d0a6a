"""Keeping waitress answering when clients hold connections open and do nothing.

Waitress stops accepting once it holds ``connection_limit`` connections,
and counts every one: a keep-alive connection between two requests, a
client that opened a socket and sent nothing, a slowloris sending one
header byte every few seconds. A few hundred of those and the page,
snapshots and new streams hang for everyone. :class:`GuardedServer`
changes three things:

- a connection that sits idle for ``idle_timeout`` seconds, or whose
  request is still unfinished ``request_timeout`` seconds after its first
  byte, is closed (checked every second);
- at the limit, a new connection pushes out the one that has been quiet
  longest among those with no request being served, instead of waiting in
  the listen queue; only when every connection is busy with a request is
  the new one refused, at once, with a 503 and ``Connection: close``;
- a 503 answer closes its connection, and waitress's own errors (bad
  request line, body or headers too large) answer JSON like the rest of
  camstream.

What it closes and refuses is counted in :class:`ConnectionStats`, which
``/healthz`` shows. Streams handed to the sender thread have left waitress
and count here no longer.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from waitress.adjustments import Adjustments
from waitress.channel import HTTPChannel
from waitress.server import TcpWSGIServer
from waitress.task import ErrorTask, WSGITask

from ..api.errors import RETRY_AFTER_SECONDS, error_body

log = logging.getLogger("camstream.connections")

# A connection with no request for this long is closed (browsers reopen one
# when they need it; the page's status poll every 2 s keeps its own alive).
IDLE_TIMEOUT = 15.0
# A request whose head and body have not all arrived this long after its
# first byte is dropped: a slowloris, or a client that has gone.
REQUEST_TIMEOUT = 10.0


@dataclass
class ConnectionStats:
    """What the server closed or refused, since it started; read by ``/healthz``."""

    limit: int = 0
    refused: int = 0
    evicted: int = 0
    idle_closed: int = 0
    timed_out: int = 0
    # The server's own count of its connections, set when it starts.
    count_open: Callable[[], int] = field(default=lambda: 0, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def count(self, what: str) -> None:
        with self._lock:
            setattr(self, what, getattr(self, what) + 1)

    def as_dict(self) -> dict[str, int]:
        return {"open": self.count_open(), "limit": self.limit, "refused": self.refused, "evicted": self.evicted,
                "idle_closed": self.idle_closed, "timed_out": self.timed_out}


class JsonErrorTask(ErrorTask):
    """Waitress's own error answers (400, 413, 431, ...) as camstream's JSON errors."""

    def execute(self) -> None:
        error = self.request.error
        body = error_body(error.code, f"{error.reason}: {error.body}")
        self.status = f"{error.code} {error.reason}"
        self.response_headers.append(("Content-Type", "application/json"))
        self.set_close_on_finish()
        self.content_length = len(body)
        self.write(body)


class ClosingOn503Task(WSGITask):
    """A request whose answer is 503 ("come back later") closes its connection.

    A client turned away keeps no connection open meanwhile, so a crowd of
    them cannot fill the server's connections. (A WSGI app may not set
    ``Connection`` itself; the server decides.)
    """

    def build_response_header(self) -> bytes:
        if self.status.startswith("503"):
            self.set_close_on_finish()
        return super().build_response_header()


class GuardedChannel(HTTPChannel):
    """A waitress connection that knows when its unfinished request began."""

    task_class = ClosingOn503Task
    error_task_class = JsonErrorTask
    request_started: float | None = None

    def received(self, data: bytes) -> bool:
        starting = self.request is None
        result = super().received(data)
        if self.request is None:
            self.request_started = None
        elif starting or self.request_started is None:
            self.request_started = time.time()
        return result

    @property
    def evictable(self) -> bool:
        """True if nothing is being served on this connection: closing it loses no answer."""
        return not (self.requests or self.total_outbufs_len or self.will_close or self.close_when_flushed)


class GuardedServer(TcpWSGIServer):
    """Waitress's TCP server with the connection handling described in this module's docstring."""

    channel_class = GuardedChannel

    def __init__(self, application: Any, sock: socket.socket, adj: Adjustments, stats: ConnectionStats,
                 idle_timeout: float = IDLE_TIMEOUT, request_timeout: float = REQUEST_TIMEOUT) -> None:
        self.stats = stats
        self.idle_timeout = idle_timeout
        self.request_timeout = request_timeout
        stats.limit = adj.connection_limit
        stats.count_open = lambda: len(self.active_channels)
        super().__init__(application, _sock=sock, adj=adj, bind_socket=False,
                         sockinfo=(sock.family, sock.type, sock.proto, sock.getsockname()))

    def readable(self) -> bool:
        now = time.time()
        if now >= self.next_channel_cleanup:
            self.next_channel_cleanup = now + self.adj.cleanup_interval
            self.maintenance(now)
        # Keep accepting at the limit: handle_accept makes room or refuses.
        return self.accepting

    def handle_accept(self) -> None:
        if len(self.active_channels) >= self.adj.connection_limit and not self._make_room():
            self._refuse()
            return
        super().handle_accept()

    def maintenance(self, now: float) -> None:
        """Close connections idle too long and requests that take too long to arrive.

        Like waitress's own, it marks them and the loop closes them: this runs
        while the loop is gathering descriptors to poll, and a descriptor
        closed now could be reused by a connection accepted before the loop
        gets to the events it polled for the old one.
        """
        for channel in list(self.active_channels.values()):
            if not isinstance(channel, GuardedChannel) or not channel.evictable:
                continue
            started = channel.request_started
            if started is not None and now - started > self.request_timeout:
                self.stats.count("timed_out")
                channel.will_close = True
            elif started is None and now - channel.last_activity > self.idle_timeout:
                self.stats.count("idle_closed")
                channel.will_close = True

    def _make_room(self) -> bool:
        """Close the connection quiet for longest that is serving nothing; False if every one is busy."""
        idle = [channel for channel in self.active_channels.values()
                if isinstance(channel, GuardedChannel) and channel.evictable]
        if not idle:
            return False
        min(idle, key=lambda channel: channel.last_activity).will_close = True
        self.stats.count("evicted")
        return True

    def _refuse(self) -> None:
        """Accept and answer 503 at once, rather than leave the client in the listen queue."""
        try:
            accepted = self.accept()
        except OSError:
            return
        if accepted is None:
            return
        conn = accepted[0]
        self.stats.count("refused")
        with conn:
            try:
                conn.setblocking(False)
                conn.send(REFUSAL)
                conn.shutdown(socket.SHUT_WR)
            except OSError:
                pass
        if self.stats.refused == 1 or self.stats.refused % 1000 == 0:
            log.warning("all %d connections are busy serving requests; refused %d so far",
                        self.adj.connection_limit, self.stats.refused)


def _refusal() -> bytes:
    body = error_body(503, "the server is busy; try again shortly")
    head = ("HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nRetry-After: {RETRY_AFTER_SECONDS}\r\nConnection: close\r\n\r\n")
    return head.encode("ascii") + body


REFUSAL = _refusal()
