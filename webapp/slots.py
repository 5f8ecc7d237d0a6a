"""A cap on concurrent streams, so page, snapshot and status requests always find a worker.

Every MJPEG viewer holds one of the server's worker threads for as long as
it watches. Past the cap a new viewer is turned away at once with 503
rather than queued behind the others, where it (and everything after it)
would hang.
"""

from __future__ import annotations

import threading


class StreamSlots:
    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError(f"the viewer limit must be at least 1, not {limit}")
        self.limit = limit
        self._used = 0
        self._lock = threading.Lock()

    @property
    def used(self) -> int:
        return self._used

    def acquire(self) -> bool:
        """Take a slot if one is free; never waits."""
        with self._lock:
            if self._used >= self.limit:
                return False
            self._used += 1
            return True

    def release(self) -> None:
        with self._lock:
            self._used = max(0, self._used - 1)
