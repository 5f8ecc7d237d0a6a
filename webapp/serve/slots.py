"""A cap on concurrent streams, so page, snapshot and status requests always find a worker.

Every MJPEG viewer holds one of the server's worker threads for as long as
it watches. Past the cap a new viewer is turned away at once with 503
rather than queued behind the others, where it (and everything after it)
would hang.
"""

from __future__ import annotations

import threading
from collections.abc import Callable


class Slot:
    """One taken slot; releasing it more than once gives it back once, and runs what was tied to it once."""

    def __init__(self, slots: StreamSlots) -> None:
        self.slots = slots
        self.released = False
        self._ties: list[Callable[[], None]] = []

    def tie(self, cleanup: Callable[[], None]) -> None:
        """Run ``cleanup`` when the slot is given back (the stream's other bookkeeping ends with it)."""
        self._ties.append(cleanup)

    def release(self) -> None:
        if self.slots.give_back(self):
            for cleanup in self._ties:
                cleanup()


class StreamSlots:
    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError(f"the viewer limit must be at least 1, not {limit}")
        self.limit = limit
        self._used = 0
        # Streams turned away because every slot was taken.
        self.refused = 0
        self._lock = threading.Lock()

    @property
    def used(self) -> int:
        return self._used

    def acquire(self) -> Slot | None:
        """Take a slot if one is free; never waits."""
        with self._lock:
            if self._used >= self.limit:
                self.refused += 1
                return None
            self._used += 1
            return Slot(self)

    def give_back(self, slot: Slot) -> bool:
        """Give ``slot`` back; False if it was given back already."""
        with self._lock:
            if slot.released:
                return False
            slot.released = True
            self._used -= 1
            return True
