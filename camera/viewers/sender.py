"""Writing MJPEG to many sockets from one thread, newest frame first.

A :class:`SocketViewer` owns one client socket. When its camera publishes a
frame, the viewer is marked ready and the :class:`StreamSender` thread writes
the frame's prebuilt part with a non-blocking ``send``: the same bytes for
every viewer, no copies, no thread per viewer. A viewer whose socket is
full keeps sending the part it started and then jumps to the newest frame,
so a slow link gets fewer frames, never older ones. ``TCP_NOTSENT_LOWAT``
keeps the kernel from queueing more than a little of a frame ahead either.
"""

from __future__ import annotations

import contextlib
import logging
import selectors
import socket
import threading
import time
from collections import deque
from collections.abc import Callable

from ..broadcast import Broadcaster
from ..frame import Frame
from ..pacing import RateLimit

log = logging.getLogger("camstream.sender")

# Unsent bytes the kernel may hold per socket before it reports "full".
NOTSENT_LOWAT = 16 * 1024
# A viewer whose socket takes no bytes at all for this long is gone (a
# client that vanished without closing the connection).
STALL_TIMEOUT = 30.0
# What a viewer of frames may send after its request before it is taken for a flood and closed.
MAX_INBOUND = 64 * 1024


class SenderStopped(RuntimeError):
    """The stream sender has been stopped (the server is shutting down)."""


class Feed:
    """One camera's frames for a :class:`SocketViewer`: it subscribes to that camera's broadcaster."""

    def __init__(self, viewer: SocketViewer, broadcaster: Broadcaster, tag: bytes, fps: float | None) -> None:
        self.viewer = viewer
        self.broadcaster = broadcaster
        self.tag = tag
        self._rate = RateLimit(fps)
        self._pending: Frame | None = None
        self._last_seq = -1

    def offer(self, frame: Frame) -> None:
        self._pending = frame
        self.viewer.wake()

    @property
    def closed(self) -> bool:
        return self.viewer.closed

    def close(self) -> None:
        self.viewer.close()

    def continue_from(self, other: Feed) -> None:
        """Take over where ``other`` left off, so that a frame it sent is not sent again."""
        self._last_seq = other._last_seq

    def take(self) -> Frame | None:
        """The newest frame not yet sent, unless this viewer's frame rate says skip it."""
        frame = self._pending
        if frame is None or frame.seq <= self._last_seq:
            return None
        self._last_seq = frame.seq
        return frame if self._rate.allows(frame.timestamp) else None


class SocketViewer:
    """One client socket fed by the sender thread, with one :class:`Feed` per camera it watches.

    A viewer of several cameras gets their frames in turn, each part led by
    its ``tag`` (an ``X-Camera`` header line), so one connection carries
    them all.
    """

    # Whether the client's input is read while its socket is full (a hang-up is then seen at once). A viewer
    # that answers what the client sends reads nothing then, so a client that does not read cannot make it
    # queue answers.
    reads_while_full = True

    def __init__(
        self,
        sock: socket.socket,
        head: bytes,
        sender: StreamSender,
        on_close: Callable[[], None] | None = None,
    ) -> None:
        self.sock = sock
        self._sender = sender
        self._on_close = on_close
        self.feeds: list[Feed] = []
        self._turn = 0
        self._out: deque[memoryview] = deque([memoryview(head)])
        self._writing = False
        self._closing = False
        self._finished = False
        self._received = 0
        self.last_progress = time.monotonic()

    def add_feed(self, broadcaster: Broadcaster, tag: bytes = b"", fps: float | None = None) -> Feed:
        """A feed for one camera; subscribe it with ``camera.attach(feed)``."""
        feed = Feed(self, broadcaster, tag, fps)
        self.feeds.append(feed)
        return feed

    @property
    def closed(self) -> bool:
        return self._closing

    # -- called from any thread ----------------------------------------

    def wake(self) -> None:
        """A feed has a new frame."""
        self._sender.notify(self)

    def close(self) -> None:
        """Stop the stream; the sender thread closes the socket."""
        if self._closing:
            return
        # Set before unsubscribing: a feed being attached right now then
        # either is removed here or sees the flag (Broadcaster.add).
        self._closing = True
        for feed in list(self.feeds):
            feed.broadcaster.unsubscribe(feed)
        self._sender.notify(self)

    def abort(self) -> None:
        """End this viewer after an error in serving it: whatever else fails, it is closed and reaped."""
        try:
            self.close()
        except Exception:  # noqa: BLE001 - whatever close() raised, this viewer must end
            self._closing = True
            for feed in list(self.feeds):
                with contextlib.suppress(Exception):
                    feed.broadcaster.unsubscribe(feed)

    # -- called on the sender thread -----------------------------------

    def pump(self) -> None:
        """Send until the socket is full or there is nothing newer to send."""
        while not self._closing:
            if not self._out and not self._next_part():
                self._want_writable(False)
                return
            try:
                sent = self.sock.send(self._out[0])
            except BlockingIOError:
                self._want_writable(True)
                return
            except OSError:
                self.close()
                return
            self.last_progress = time.monotonic()
            self._sender.bytes_sent += sent
            if sent < len(self._out[0]):
                self._out[0] = self._out[0][sent:]
            else:
                self._out.popleft()

    def _next_part(self) -> bool:
        """Queue the next feed's newest frame, taking the feeds in turn; False if none has one."""
        count = len(self.feeds)
        for _ in range(count):
            feed = self.feeds[self._turn % count]
            self._turn += 1
            frame = feed.take()
            if frame is not None:
                if feed.tag:
                    self._out.append(memoryview(feed.tag))
                self._out.append(memoryview(frame.part))
                return True
        return False

    def readable(self) -> None:
        """The client sent something or hung up; a viewer of frames has nothing to say, and one that keeps
        sending is closed."""
        self._received += len(self._receive(4096))
        if self._received > MAX_INBOUND:
            log.info("closing a viewer that sent %d bytes after its request", self._received)
            self.close()

    def _receive(self, size: int) -> bytes:
        """What the client sent (b"" if nothing yet); a client that hung up closes the viewer."""
        try:
            data = self.sock.recv(size)
        except BlockingIOError:
            return b""
        except OSError:
            data = b""
        if not data:
            self.close()
        return data

    def finish(self) -> None:
        """Release the socket; runs once, on the sender thread."""
        if self._finished:
            return
        self._finished = True
        try:
            self._sender.selector.unregister(self.sock)
        except (KeyError, ValueError):
            pass
        try:
            # What the client sent and nobody read would make close() reset the connection, and a reset
            # throws away what is still on its way to the client (a WebSocket's close frame).
            for _ in range(MAX_INBOUND // 16384):
                if not self.sock.recv(16384):
                    break
        except OSError:
            pass
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        try:
            self.sock.close()
        finally:
            if self._on_close is not None:
                self._on_close()  # gives the viewer's slot back, whatever happened before

    def tick(self, now: float) -> None:
        """Called about once a second on the sender thread; a viewer of frames has nothing to do."""

    @property
    def full(self) -> bool:
        """True while the socket takes no more bytes and the sender waits for it to drain."""
        return self._writing

    def stalled(self, now: float, timeout: float) -> bool:
        """True if the socket has been full, taking nothing, for ``timeout`` seconds."""
        return self.full and now - self.last_progress > timeout

    def _want_writable(self, wanted: bool) -> None:
        if wanted != self._writing:
            events = selectors.EVENT_WRITE if wanted else selectors.EVENT_READ
            if wanted and self.reads_while_full:
                events |= selectors.EVENT_READ
            self._sender.selector.modify(self.sock, events, self)
            self._writing = wanted


class StreamSender:
    """The thread that writes every socket viewer's frames."""

    def __init__(self, stall_timeout: float = STALL_TIMEOUT) -> None:
        self.stall_timeout = stall_timeout
        self.selector = selectors.DefaultSelector()
        self._wake_recv, self._wake_send = socket.socketpair()
        self._wake_recv.setblocking(False)
        self._wake_send.setblocking(False)
        self.selector.register(self._wake_recv, selectors.EVENT_READ, None)
        self._lock = threading.Lock()
        self._ready: set[SocketViewer] = set()
        self._incoming: list[SocketViewer] = []
        self._woken = False
        self._viewers: set[SocketViewer] = set()
        self._stopping = False
        self._thread: threading.Thread | None = None
        # Counted on the sender thread, read by /metrics: bytes written to viewers, and viewers
        # whose socket was full at the last sweep (about once a second).
        self.bytes_sent = 0
        self.backlog = 0
        # Viewers closed because serving them raised (a bug, or input no check foresaw).
        self.viewer_errors = 0
        self._errors_seen: set[type[BaseException]] = set()

    @property
    def viewer_count(self) -> int:
        return len(self._viewers) + len(self._incoming)

    def add(self, viewer: SocketViewer) -> None:
        """Hand a viewer to the sender thread, starting the thread if needed."""
        viewer.sock.setblocking(False)
        set_notsent_lowat(viewer.sock, NOTSENT_LOWAT)
        with self._lock:
            if self._stopping:
                raise SenderStopped("the stream sender is stopped")
            self._incoming.append(viewer)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="stream-sender", daemon=True)
                self._thread.start()
        self._wake()

    def notify(self, viewer: SocketViewer) -> None:
        """Mark a viewer as having something to do (a new frame, or closing)."""
        with self._lock:
            self._ready.add(viewer)
        self._wake()

    def stop(self, timeout: float = 5.0) -> None:
        """Close every viewer and end the thread."""
        with self._lock:
            self._stopping = True
            thread = self._thread
        self._wake()
        if thread is not None:
            thread.join(timeout)

    def _wake(self) -> None:
        with self._lock:
            if self._woken:
                return
            self._woken = True
        try:
            self._wake_send.send(b"\0")
        except BlockingIOError:
            pass

    def _run(self) -> None:
        """Serve every viewer until stopped; nothing one viewer does or raises may end this loop."""
        next_sweep = time.monotonic() + 1.0
        while True:
            try:
                stopping = self._serve_round()
                now = time.monotonic()
                if now >= next_sweep:
                    next_sweep = now + 1.0
                    self._close_stalled(now)
                self._reap()
            except Exception:  # a fault outside any one viewer: log it, keep serving the others
                log.exception("the stream sender hit an error; it goes on")
                stopping = self._stopping
            if stopping:
                return

    def _serve_round(self) -> bool:
        """Wait for sockets and wake-ups, then do what each viewer has to do; True once stopping."""
        for key, events in self.selector.select(timeout=1.0):
            viewer = key.data
            if viewer is None:
                self._drain_wakeups()
                continue
            if events & selectors.EVENT_READ:
                self._guarded(viewer, viewer.readable)
            if events & selectors.EVENT_WRITE:
                self._guarded(viewer, viewer.pump)
        with self._lock:
            ready, self._ready = self._ready, set()
            incoming, self._incoming = self._incoming, []
            stopping = self._stopping
        for viewer in incoming:
            self._viewers.add(viewer)
            if self._guarded(viewer, lambda v=viewer: self.selector.register(v.sock, selectors.EVENT_READ, v)):
                ready.add(viewer)
        for viewer in ready:
            if viewer in self._viewers:
                self._guarded(viewer, viewer.pump)
        if stopping:
            for viewer in list(self._viewers):
                self._guarded(viewer, viewer.close)
        return stopping

    def _guarded(self, viewer: SocketViewer, action: Callable[[], object]) -> bool:
        """Run one viewer's ``action``; if it raises, that viewer alone is closed, counted and logged once."""
        try:
            action()
            return True
        except Exception as exc:
            self.viewer_errors += 1
            if type(exc) not in self._errors_seen:
                self._errors_seen.add(type(exc))
                log.warning("closing a viewer after an error (%s); later ones of this kind are counted, not "
                            "logged", type(exc).__name__, exc_info=True)
            viewer.abort()
            return False

    def _drain_wakeups(self) -> None:
        # Drain before clearing the flag: a notify in between then either
        # sees the flag still set, and its viewer is in the ready set taken
        # after this, or sees it clear and sends a fresh wake-up byte.
        try:
            while self._wake_recv.recv(4096):
                pass
        except BlockingIOError:
            pass
        with self._lock:
            self._woken = False

    def _close_stalled(self, now: float) -> None:
        self.backlog = sum(1 for viewer in self._viewers if viewer.full)
        for viewer in list(self._viewers):
            if viewer.stalled(now, self.stall_timeout):
                log.info("closing a viewer whose connection took no data for %.0f s", self.stall_timeout)
                self._guarded(viewer, viewer.close)
            else:
                self._guarded(viewer, lambda v=viewer: v.tick(now))

    def _reap(self) -> None:
        for viewer in [v for v in self._viewers if v.closed]:
            self._viewers.discard(viewer)
            self._guarded(viewer, viewer.finish)


def set_notsent_lowat(sock: socket.socket, limit: int) -> None:
    """Bound the unsent bytes the kernel queues for ``sock`` (Linux and macOS)."""
    option = getattr(socket, "TCP_NOTSENT_LOWAT", None)
    if option is None:
        return
    try:
        sock.setsockopt(socket.IPPROTO_TCP, option, limit)
    except OSError:
        pass
