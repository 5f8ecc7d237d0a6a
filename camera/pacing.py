"""Keeping a source at its own frame rate."""

from __future__ import annotations

import time


class Pacer:
    """Sleeps so that successive calls to :meth:`wait` are ``1 / fps`` apart.

    Ticks follow a fixed schedule, so the average rate stays exact even when
    single frames are late; a source that falls more than one frame behind
    starts a new schedule rather than rushing to catch up.
    """

    def __init__(self, fps: float) -> None:
        if fps <= 0:
            raise ValueError(f"fps must be positive, not {fps}")
        self.interval = 1.0 / fps
        self._next: float | None = None

    def wait(self) -> None:
        now = time.monotonic()
        if self._next is None or now - self._next > self.interval:
            self._next = now
        elif self._next > now:
            time.sleep(self._next - now)
        self._next += self.interval
