"""HLS requests that wait (a blocking playlist reload, the hinted next part) without holding a worker thread.

Low-Latency HLS players ask for what does not exist yet: the playlist
once a given part is in it, or the part a playlist's preload hint names.
Such a request's socket is taken from the server and handed, as a
:class:`WaitingAnswer`, to the :class:`~camera.viewers.sender.StreamSender`:
the camera's HLS window wakes it when something new comes (on the capture
thread, which only queues a look), the sender thread then asks the route's
``respond`` whether the answer is there yet and writes it, and its
once-a-second tick looks again (a camera that went down) and answers those
whose time is up. So a hundred players
waiting cost no thread each. :class:`WaitLimit` bounds how many wait at
once in a server; past it a request is answered 503 at once.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable

from .sender import SocketViewer, StreamSender

# Requests that may wait at once in one server (over every camera).
MAX_WAITING_REQUESTS = 256

# Given whether the request's time is up, the whole HTTP answer, or None to wait on (never None once up).
Respond = Callable[[bool], bytes | None]


class WaitLimit:
    """How many requests wait at once; a bound per server."""

    def __init__(self, limit: int = MAX_WAITING_REQUESTS) -> None:
        self.limit = limit
        self._lock = threading.Lock()
        self.waiting = 0

    def acquire(self) -> bool:
        with self._lock:
            if self.waiting >= self.limit:
                return False
            self.waiting += 1
            return True

    def release(self) -> None:
        with self._lock:
            self.waiting = max(0, self.waiting - 1)


class WaitingAnswer(SocketViewer):
    """One waiting request's socket: answered once ``respond`` has its answer (or its time is up), then closed."""

    def __init__(self, sock: socket.socket, sender: StreamSender, respond: Respond, deadline: float,
                 on_close: Callable[[], None] | None = None) -> None:
        super().__init__(sock, b"", sender, on_close)
        self._out.clear()
        self._respond = respond
        self._deadline = deadline
        self._expired = False
        self._answered = False
        self._unlisten: list[Callable[[], None]] = []

    def listen_to(self, add: Callable[[Callable[[], None]], None], remove: Callable[[Callable[[], None]], None]) -> None:
        """Be woken by ``add``'s notifications until closed (then ``remove`` is called)."""
        add(self.wake)
        self._unlisten.append(lambda: remove(self.wake))
        if self.closed:
            remove(self.wake)

    def close(self) -> None:
        for unlisten in self._unlisten:
            unlisten()
        super().close()

    def _next_part(self) -> bool:
        if self._answered:
            return False
        answer = self._respond(self._expired)
        if answer is None:
            return False
        self._answered = True
        self._out.append(memoryview(answer))
        return True

    def pump(self) -> None:
        super().pump()
        if self._answered and not self._out and not self.closed:
            self.close()

    def tick(self, now: float) -> None:
        """Once a second: a look (what the window does not announce, a camera gone, is seen then), and the
        answer for a request whose time is up."""
        if not self._answered:
            self._expired = time.monotonic() >= self._deadline
            self.pump()


def http_answer(status: int, reason: str, headers: dict[str, str], body: bytes, protocol: str = "HTTP/1.1") -> bytes:
    """A whole HTTP/1.x response that closes its connection."""
    if protocol not in ("HTTP/1.0", "HTTP/1.1"):
        protocol = "HTTP/1.1"
    fields = {**headers, "Content-Length": str(len(body)), "Connection": "close"}
    lines = [f"{protocol} {status} {reason}", *(f"{name}: {value}" for name, value in fields.items()), "", ""]
    return "\r\n".join(lines).encode("latin-1") + body
