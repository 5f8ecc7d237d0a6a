"""Keeping a source at its own frame rate, and a viewer at the rate it asked for."""

from __future__ import annotations

import time
from collections import deque


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
    """A frame-rate cap: which frames to pass on, decided frame by frame by their time.

    Each frame that passes books the next slot one interval later (a virtual
    schedule, the "generic cell rate algorithm"), and a frame may come up to
    ``burst`` intervals ahead of its slot. So the long-run rate never
    exceeds ``fps`` and a faster source is thinned evenly. ``fps`` None
    passes every frame. It needs no timer, so it serves both:

    - the camera's own cap (``burst`` :data:`SOURCE_BURST`): a source
      running at exactly ``fps`` must lose no frame to jitter or to catching
      up, and a :class:`Pacer` sends a frame at most two intervals late
      before it starts a new schedule, so two intervals of slack cover
      anything it does, however long its thread was held up;
    - each viewer's ``?fps=`` (``burst`` :data:`VIEWER_BURST`): a quarter
      interval absorbs timestamp jitter, so 15 fps from a 30 fps camera
      stays 15, with no burst after the viewer starts.
    """

    SOURCE_BURST = 2.0
    VIEWER_BURST = 0.25
    # Float sums over hours of frames must not turn "exactly on time" into "early".
    EPSILON = 1e-6

    def __init__(self, fps: float | None = None, burst: float = VIEWER_BURST) -> None:
        self.interval = 1.0 / fps if fps else 0.0
        self.slack = burst * self.interval + self.EPSILON
        self._due: float | None = None

    def allows(self, timestamp: float) -> bool:
        """Whether a frame taken at ``timestamp`` (seconds, any fixed clock) passes; counts it if so."""
        if not self.interval:
            return True
        due = timestamp if self._due is None else self._due
        if timestamp < due - self.slack:
            return False
        self._due = max(due, timestamp) + self.interval
        return True


class RateMeter:
    """Events a second over the last couple of seconds (frames published, frames a camera sent).

    Zero until half a second of events is in: the first few intervals
    after a start are uneven and would overstate the rate.
    """

    WINDOW = 2.0

    def __init__(self, keep: int = 120) -> None:
        self._times: deque[float] = deque(maxlen=keep)

    def tick(self) -> None:
        self._times.append(time.monotonic())

    def rate(self) -> float:
        now = time.monotonic()
        recent = [at for at in list(self._times) if now - at <= self.WINDOW]
        if len(recent) < 2 or recent[-1] - recent[0] < 0.5:
            return 0.0
        return (len(recent) - 1) / (recent[-1] - recent[0])
