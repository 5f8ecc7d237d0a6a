"""Keeping a source at its own frame rate, and a viewer at the rate it asked for."""

from __future__ import annotations

import time

from .frame import Frame


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


class RateLimit:
    """One viewer's own frame-rate cap: which of the camera's frames to pass on.

    Decided by capture time, frame by frame, so it needs no timer: a frame
    that comes too soon after the last one passed is skipped, and a later
    one goes out instead. ``fps`` None passes every frame.
    """

    # Accept a frame this much early, so 15 fps from a 30 fps camera does
    # not drop to 10 fps on timestamp jitter.
    SLACK = 0.2

    def __init__(self, fps: float | None = None) -> None:
        self.interval = 1.0 / fps if fps else 0.0
        self._last: float | None = None

    def allows(self, frame: Frame) -> bool:
        if not self.interval:
            return True
        if self._last is not None and frame.timestamp - self._last < self.interval * (1 - self.SLACK):
            return False
        self._last = frame.timestamp
        return True
