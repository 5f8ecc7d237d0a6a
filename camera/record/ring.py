"""The last few seconds of a camera's frames, kept in memory for the start of an event's clip."""

from __future__ import annotations

import threading
from collections import deque

from ..frame import Frame

# Whatever the seconds asked for, a ring holds at most this much.
MAX_RING_BYTES = 64 * 1024 * 1024


class FrameRing:
    """The frames of the last ``seconds`` (by capture time), at most :data:`MAX_RING_BYTES`."""

    def __init__(self, seconds: float, max_bytes: int = MAX_RING_BYTES) -> None:
        self.seconds = seconds
        self.max_bytes = max_bytes
        self._frames: deque[Frame] = deque()
        self._bytes = 0
        self._lock = threading.Lock()

    def add(self, frame: Frame) -> None:
        with self._lock:
            if self._frames and frame.seq <= self._frames[-1].seq:
                return
            self._frames.append(frame)
            self._bytes += len(frame.jpeg)
            while self._frames and (self._bytes > self.max_bytes
                                    or frame.timestamp - self._frames[0].timestamp > self.seconds):
                self._bytes -= len(self._frames.popleft().jpeg)

    def since(self, timestamp: float) -> list[Frame]:
        """The frames kept from ``timestamp`` on, oldest first."""
        with self._lock:
            return [frame for frame in self._frames if frame.timestamp >= timestamp]

    def clear(self) -> None:
        with self._lock:
            self._frames.clear()
            self._bytes = 0

    def __len__(self) -> int:
        return len(self._frames)
