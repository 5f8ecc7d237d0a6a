"""Server-Sent Events: an :class:`~camera.events.EventLog` as a ``text/event-stream``, read by ``EventSource``.

:class:`EventViewer` is served by the sender thread like a socket viewer of
frames; :func:`event_stream` is the same stream as a WSGI body. Both send
what the log holds after the reader's last event number, so a reader that
reconnects with ``Last-Event-ID`` resumes without duplicates, and a slow
reader only falls behind (at most the log's length), holding nothing up.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Collection, Iterator

from ..events import Event, EventLog
from .sender import SocketViewer, StreamSender

CONTENT_TYPE = "text/event-stream; charset=utf-8"
# How soon EventSource reconnects, in ms; sent first.
OPENING = b"retry: 2000\n\n"
# A comment line this often keeps proxies and browsers from taking a quiet stream for dead.
KEEPALIVE_SECONDS = 15.0
KEEPALIVE = b": keepalive\n\n"
BATCH = 50


class LogViewer(SocketViewer):
    """A socket viewer that follows an :class:`~camera.events.EventLog` from ``last_id`` on.

    New events wake it; the log closing, or ending its streams, ends it.
    """

    def __init__(self, sock: socket.socket, head: bytes, sender: StreamSender, log: EventLog, last_id: int,
                 on_close: Callable[[], None] | None = None) -> None:
        super().__init__(sock, head, sender, on_close)
        self.log = log
        self.last_id = last_id
        self.generation = log.generation
        log.listen(self._logged)

    def _logged(self) -> None:
        if self.log.closed or self.log.generation != self.generation:
            self.close()
        else:
            self.wake()

    def close(self) -> None:
        self.log.unlisten(self._logged)
        super().close()

    def new_events(self, cameras: Collection[str] | None) -> list[Event]:
        """The next events of ``cameras`` (all if None) since the last call, a batch at a time."""
        events, self.last_id = self.log.after(self.last_id, cameras, BATCH)
        return events


class EventViewer(LogViewer):
    """One ``/events`` client on the sender thread: the log's events of ``cameras`` after ``last_id``."""

    def __init__(self, sock: socket.socket, head: bytes, sender: StreamSender, log: EventLog,
                 cameras: Collection[str] | None, last_id: int, on_close: Callable[[], None] | None = None) -> None:
        super().__init__(sock, head, sender, log, last_id, on_close)
        self.cameras = cameras

    def _next_part(self) -> bool:
        events = self.new_events(self.cameras)
        self._out.extend(memoryview(event.sse) for event in events)
        return bool(events)

    def tick(self, now: float) -> None:
        if not self._out and now - self.last_progress > KEEPALIVE_SECONDS:
            self._out.append(memoryview(KEEPALIVE))
            self.pump()


def event_stream(log: EventLog, cameras: Collection[str] | None, last_id: int,
                 is_disconnected: Callable[[], bool] | None = None) -> Iterator[bytes]:
    """The same stream as a WSGI body, waiting in its own thread; ends when the log ends its streams or
    the client leaves."""
    wake = threading.Event()
    generation = log.generation
    log.listen(wake.set)
    try:
        yield OPENING
        last_sent = time.monotonic()
        while not log.closed and log.generation == generation:
            events, last_id = log.after(last_id, cameras, BATCH)
            if events:
                yield b"".join(event.sse for event in events)
                last_sent = time.monotonic()
                continue
            # Woken by events of other cameras too: the keepalive counts from the last bytes sent.
            if not wake.wait(0.5) and is_disconnected is not None and is_disconnected():
                return
            wake.clear()
            if time.monotonic() - last_sent > KEEPALIVE_SECONDS:
                yield KEEPALIVE
                last_sent = time.monotonic()
    finally:
        log.unlisten(wake.set)
