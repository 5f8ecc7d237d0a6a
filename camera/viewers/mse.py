"""One camera's own video to a browser's Media Source Extensions, over a WebSocket, written by the sender thread.

First a text message ``{"type": "mse", "codecs": "video/mp4; codecs=\\"avc1...\\""}``
(what ``MediaSource.isTypeSupported`` and ``addSourceBuffer`` take), then
binary messages: the init segment, then fMP4 fragments. The messages are
framed once per camera (camera/media/feed.py) and written as they are to
every viewer. A viewer still holding, when the next keyframe comes, a
fragment that has waited more than half a second drops what it holds and
goes on from that keyframe; one that cannot keep even that bounded is
skipped to the keyframe after. A viewer only a moment behind (a fragment
or two the sender has not written yet) keeps them: dropping them would
leave a hole in its audio, which a browser takes as a break in the stream
and answers by dropping its video up to the next keyframe.
"""

from __future__ import annotations

import socket
import threading
import time
from collections import deque
from collections.abc import Callable

from ..media.feed import MediaFeed
from .sender import StreamSender
from .websocket import WebSocketClient

# The most a viewer may have waiting beyond what its socket holds; more, and it skips to the next keyframe.
MAX_WAITING = 8 * 1024 * 1024
# How long a fragment may wait before a keyframe takes its place (the viewer is behind, not just busy).
BEHIND_SECONDS = 0.5


class MseViewer(WebSocketClient):
    """One ``/mse/<name>`` client of ``feed``."""

    clock = staticmethod(time.monotonic)

    def __init__(self, sock: socket.socket, head: bytes, sender: StreamSender, *, feed: MediaFeed, camera_name: str,
                 on_close: Callable[[], None] | None = None) -> None:
        super().__init__(sock, head, sender, on_close)
        self.feed = feed
        self.camera_name = camera_name
        self._lock = threading.Lock()
        self._waiting: deque[bytes] = deque()
        self._waiting_bytes = 0
        # When each waiting fragment (not the header and init segment) was offered.
        self._offered_at: deque[float] = deque()
        # How many of the waiting messages, at the front, are a stream's header and init segment.
        self._heads = 0
        self._need_keyframe = True
        self.skipped = 0

    def attach(self) -> None:
        """Join the feed, once the sender owns the socket; closed at once if the camera's video is not passed
        through (a browser then falls back to MJPEG)."""
        if not self.feed.add(self):
            self.close()

    # -- the capture thread --------------------------------------------

    def begin(self, start: list[bytes], complete: bool) -> None:
        """A stream starts (or starts over): its header, init segment and, if ``complete``, the GOP so far."""
        with self._lock:
            self._waiting = deque(start)
            self._waiting_bytes = sum(map(len, start))
            self._heads = min(2, len(start))
            now = self.clock()
            self._offered_at = deque(now for _ in range(len(start) - self._heads))
            self._need_keyframe = not complete
        self.wake()

    def offer(self, message: bytes, keyframe: bool) -> None:
        with self._lock:
            now = self.clock()
            if keyframe:
                if self._need_keyframe is False and self._offered_at and now - self._offered_at[0] > BEHIND_SECONDS:
                    self.skipped += self._drop_fragments()
                self._need_keyframe = False
            elif self._need_keyframe:
                return
            if self._waiting_bytes + len(message) > MAX_WAITING:
                self.skipped += self._drop_fragments()
                self._need_keyframe = True
                return
            self._waiting.append(message)
            self._waiting_bytes += len(message)
            self._offered_at.append(now)
        self.wake()

    def _drop_fragments(self) -> int:
        """Forget the fragments not sent yet (the header and init segment stay); how many. The lock is held."""
        kept = [self._waiting[index] for index in range(self._heads)]
        dropped = len(self._waiting) - len(kept)
        self._waiting = deque(kept)
        self._waiting_bytes = sum(map(len, kept))
        self._offered_at.clear()
        return dropped

    def close(self) -> None:
        self.feed.remove(self)
        super().close()

    # -- the sender thread ---------------------------------------------

    def _next_part(self) -> bool:
        if self._ending:
            self.close()  # the close frame has gone out
            return False
        with self._lock:
            if not self._waiting:
                return False
            message = self._waiting.popleft()
            self._waiting_bytes -= len(message)
            if self._heads:
                self._heads -= 1
            elif self._offered_at:
                self._offered_at.popleft()
        self._out.append(memoryview(message))
        return True

