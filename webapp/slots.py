"""A cap on concurrent streams, so page, snapshot and status requests always find a worker.

Every MJPEG viewer holds one of the server's worker threads for as long as
it watches. Past the cap a new viewer is turned away at once with 503
rather than queued behind the others, where it (and everything after it)
would hang.
"""

from __future__ import annotations

import threading


class Slot:
    """One taken slot; releasing it more than once gives it back once."""

    def __init__(self, slots: StreamSlots) -> None:
        self.slots = slots
        self.released = False

    def release(self) -> None:
        self.slots.give_back(self)


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

    def give_back(self, slot: Slot) -> None:
        with self._lock:
            if not slot.released:
                slot.released = True
                self._used -= 1
