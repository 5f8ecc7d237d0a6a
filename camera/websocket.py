"""One camera over a WebSocket (RFC 6455), written by the sender thread: frames, events, and what the client asks.

Binary messages are the camera's JPEG frames, newest first: like an MJPEG
viewer, a slow client gets fewer frames, never old ones. Text messages are
the camera's events (see :mod:`camera.events`) as JSON, the same as
``/events`` sends. The client may send ``{"fps": N}`` (0 for the camera's
own rate) and ``{"overlay": true}`` (frames with the newest boxes drawn).
wsproto parses what the client sends and frames what the server sends;
this module only moves bytes between it and the socket, so a protocol error
(an unmasked frame, garbage) closes the connection with the code wsproto
gives, and a message over :data:`MAX_MESSAGE` closes it with 1009.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Callable
from typing import Any

from wsproto.connection import Connection, ConnectionState, ConnectionType
from wsproto.events import BytesMessage, CloseConnection, Ping, TextMessage
from wsproto.frame_protocol import CloseReason

from .broadcast import Broadcaster
from .events import EventLog
from .limits import checked
from .sender import StreamSender
from .sse import LogViewer

# The longest message a client may send; it only ever sends small JSON.
MAX_MESSAGE = 64 * 1024
MIN_FPS, MAX_FPS = 0.1, 120.0


class WebSocketViewer(LogViewer):
    """One ``/ws/<name>`` client: ``source`` gives the plain frames, ``overlay`` (if any) the drawn ones.

    ``source`` and ``overlay`` are cameras or overlay streams: anything with
    ``broadcaster`` and ``attach(subscriber)``.
    """

    def __init__(self, sock: socket.socket, head: bytes, sender: StreamSender, *, source: Any,
                 overlay: Any | None, log: EventLog, on_close: Callable[[], None] | None = None) -> None:
        super().__init__(sock, head, sender, log, log.last_id, on_close)
        self.ws = Connection(ConnectionType.SERVER)
        self.source = source
        self.overlay = overlay
        self.camera_name = source.name
        self.fps: float | None = None
        self.feed = self.add_feed(source.broadcaster)
        self._message: list[str] = []
        self._message_size = 0
        self._ending = False

    def attach(self) -> None:
        """Subscribe to the frames, once the sender owns the socket."""
        self.source.attach(self.feed)

    # -- the sender thread ---------------------------------------------

    def _next_part(self) -> bool:
        if self._ending:
            # The close frame has gone out: end the connection.
            self.close()
            return False
        events = self.new_events((self.camera_name,))
        for event in events:
            self._send(TextMessage(data=event.json))
        frame = self.feed.take()
        if frame is not None:
            self._send(BytesMessage(data=frame.jpeg))
        return bool(events) or frame is not None

    def readable(self) -> None:
        data = self._receive(65536)
        if not data:
            return
        self._message_size += len(data)
        if self._message_size > MAX_MESSAGE + 16:
            self._end(CloseReason.MESSAGE_TOO_BIG, f"messages are limited to {MAX_MESSAGE} bytes")
            return
        self.ws.receive_data(data)
        for event in self.ws.events():
            if not isinstance(event, TextMessage | BytesMessage):
                # Control frames do not count towards a message's size.
                self._message_size = sum(map(len, self._message))
            if isinstance(event, TextMessage):
                self._text(event)
            elif isinstance(event, BytesMessage):
                if event.message_finished:
                    self._end(CloseReason.UNSUPPORTED_DATA, "binary messages are not taken")
            elif isinstance(event, Ping):
                self._send(event.response())
            elif isinstance(event, CloseConnection):
                # The client closed, or wsproto found a protocol error to close with.
                self._end(event.code, event.reason or "")
                break
        self.pump()

    def _text(self, event: TextMessage) -> None:
        self._message.append(event.data)
        if not event.message_finished:
            return
        text = "".join(self._message)
        self._message, self._message_size = [], 0
        try:
            self._command(json.loads(text))
        except (ValueError, TypeError) as exc:
            self._send(TextMessage(data=json.dumps({"error": str(exc)})))

    def _command(self, command: object) -> None:
        """``{"fps": N}`` and ``{"overlay": true|false}``; a wrong one is answered with ``{"error": ...}``."""
        if not isinstance(command, dict) or not command or set(command) - {"fps", "overlay"}:
            raise ValueError('send {"fps": N} or {"overlay": true}')
        if "fps" in command:
            fps = command["fps"]
            camera_rate = fps is None or (fps == 0 and not isinstance(fps, bool))
            self.fps = None if camera_rate else checked("fps", fps, float, MIN_FPS, MAX_FPS)
            self._switch(self.feed.broadcaster)
        if "overlay" in command:
            if not isinstance(command["overlay"], bool):
                raise ValueError("overlay must be true or false")
            if command["overlay"] and self.overlay is None:
                raise ValueError(f"camera {self.camera_name!r} has no detector to draw")
            self._switch((self.overlay if command["overlay"] else self.source).broadcaster)

    def _switch(self, broadcaster: Broadcaster) -> None:
        """Take frames from ``broadcaster`` (the plain or the drawn ones) at the current fps."""
        old = self.feed
        old.broadcaster.unsubscribe(old)
        self.feeds.remove(old)
        self.feed = self.add_feed(broadcaster, fps=self.fps)
        self.feed.continue_from(old)
        target = self.overlay if self.overlay is not None and broadcaster is self.overlay.broadcaster else self.source
        target.attach(self.feed)
        if self.closed:
            # Closed from another thread while switching: leave no feed behind.
            broadcaster.unsubscribe(self.feed)

    def _end(self, code: int, reason: str) -> None:
        """Send a close frame (or answer the client's) and end the connection once it is out."""
        if self.ws.state in (ConnectionState.OPEN, ConnectionState.REMOTE_CLOSING):
            # After what is queued: the first part may be half sent already.
            self._send(CloseConnection(code=code, reason=reason[:100]))
        self._ending = True

    def _send(self, event: Any) -> None:
        if self.ws.state is ConnectionState.OPEN or isinstance(event, CloseConnection):
            self._out.append(memoryview(self.ws.send(event)))
