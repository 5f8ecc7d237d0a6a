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

A client costs the server what it reads, no more: one that sends faster
than :data:`MESSAGE_RATE` (after a burst) is closed with 1008, one that lets
more than :data:`MAX_OWED` bytes of replies (pongs, errors) pile up unread
is dropped, and nothing is read from a client while its socket is full.
"""

from __future__ import annotations

import json
import logging
import socket
import time
from collections.abc import Callable
from typing import Any

from wsproto.connection import Connection, ConnectionState, ConnectionType
from wsproto.events import BytesMessage, CloseConnection, Ping, TextMessage
from wsproto.frame_protocol import CloseReason

from ..broadcast import Broadcaster
from ..events import EventLog
from ..limits import checked
from .sender import SocketViewer, StreamSender
from .sse import LogViewer

logger = logging.getLogger("camstream.websocket")

# The longest message a client may send; it only ever sends small JSON.
MAX_MESSAGE = 64 * 1024
MIN_FPS, MAX_FPS = 0.1, 120.0
# Frames (messages, fragments, pings) a client may send at once, and per second after that. A page sends a
# command when its user clicks; a library pings every few seconds.
MESSAGE_BURST = 100
MESSAGE_RATE = 20.0
# Replies queued for a client that is not reading them.
MAX_OWED = 64 * 1024


class WebSocketClient(SocketViewer):
    """The WebSocket side of a socket viewer: what the client sends, parsed and bounded; what is sent, framed.

    A subclass says what to send next (``_next_part``) and what a text
    message from the client asks for (``_command``).
    """

    reads_while_full = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.ws = Connection(ConnectionType.SERVER)
        self._message: list[str] = []
        self._message_size = 0
        self._ending = False
        self._allowance = TokenBucket(MESSAGE_BURST, MESSAGE_RATE)
        self._owed = 0
        self.camera_name = ""

    def _command(self, command: object) -> None:
        raise ValueError("this stream takes no commands")

    # -- the sender thread ---------------------------------------------

    def readable(self) -> None:
        data = self._receive(65536)
        if not data:
            return
        if self._ending:
            if self.ws.state is ConnectionState.CLOSED:
                # Nothing may follow the client's close frame (RFC 6455, 5.5.1): one that sends more is dropped.
                self.close()
            return  # after our close frame: read and forget until it is out
        self._message_size += len(data)
        if self._message_size > MAX_MESSAGE + 16:
            self._end(CloseReason.MESSAGE_TOO_BIG, f"messages are limited to {MAX_MESSAGE} bytes")
            return
        self.ws.receive_data(data)
        for event in self.ws.events():
            if not self._allowance.take(time.monotonic()):
                self._end(CloseReason.POLICY_VIOLATION, f"more than {MESSAGE_RATE:g} messages a second")
                break
            if not isinstance(event, TextMessage | BytesMessage):
                # Control frames do not count towards a message's size.
                self._message_size = sum(map(len, self._message))
            if isinstance(event, TextMessage):
                self._text(event)
            elif isinstance(event, BytesMessage):
                if event.message_finished:
                    self._end(CloseReason.UNSUPPORTED_DATA, "binary messages are not taken")
            elif isinstance(event, Ping):
                self._reply(event.response())
            elif isinstance(event, CloseConnection):
                # The client closed, or wsproto found a protocol error to close with.
                self._end(event.code, event.reason or "")
            if self._ending or self.closed:
                break
        self.pump()

    def _text(self, event: TextMessage) -> None:
        self._message.append(event.data)
        if not event.message_finished:
            return
        text = "".join(self._message)
        self._message, self._message_size = [], 0
        try:
            self._command(_parse(text))
        except (ValueError, TypeError) as exc:
            self._reply(TextMessage(data=json.dumps({"error": str(exc)})))

    def _end(self, code: int, reason: str) -> None:
        """Send a close frame (or answer the client's) and end the connection once it is out."""
        if self.ws.state in (ConnectionState.OPEN, ConnectionState.REMOTE_CLOSING):
            # After what is queued: the first part may be half sent already.
            self._send(CloseConnection(code=code, reason=reason[:100]))
        self._ending = True

    def _send(self, event: Any) -> int:
        """Queue ``event``'s bytes, if the connection still takes it; how many."""
        if self.ws.state is not ConnectionState.OPEN and not isinstance(event, CloseConnection):
            return 0
        data = self.ws.send(event)
        self._out.append(memoryview(data))
        return len(data)

    def _reply(self, event: Any) -> None:
        """Queue an answer the client asked for (a pong, an error); drop a client that lets them pile up."""
        if not self._out:
            self._owed = 0  # all that was owed has gone out
        self._owed += self._send(event)
        if self._owed > MAX_OWED:
            logger.info("dropping a WebSocket client of %s that does not read the replies it asks for",
                     self.camera_name)
            self.close()


class WebSocketViewer(WebSocketClient, LogViewer):
    """One ``/ws/<name>`` client: ``source`` gives the plain frames, ``overlay`` (if any) the drawn ones.

    ``source`` and ``overlay`` are cameras or overlay streams: anything with
    ``broadcaster`` and ``attach(subscriber)``.
    """

    def __init__(self, sock: socket.socket, head: bytes, sender: StreamSender, *, source: Any,
                 overlay: Any | None, log: EventLog, on_close: Callable[[], None] | None = None) -> None:
        super().__init__(sock, head, sender, log, log.last_id, on_close)
        self.source = source
        self.overlay = overlay
        self.camera_name = source.name
        self.fps: float | None = None
        self.feed = self.add_feed(source.broadcaster)

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


class TokenBucket:
    """``burst`` at once, then ``rate`` per second: how many things a client may do."""

    def __init__(self, burst: float, rate: float) -> None:
        self.burst = burst
        self.rate = rate
        self._tokens = burst
        self._last = time.monotonic()

    def take(self, now: float) -> bool:
        self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
        self._last = now
        if self._tokens < 1:
            return False
        self._tokens -= 1
        return True


def _parse(text: str) -> object:
    """The JSON of a command; ValueError for anything that is not (deep nesting included)."""
    try:
        return json.loads(text)
    except RecursionError:
        raise ValueError("the message is nested too deeply to be a command") from None
