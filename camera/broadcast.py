"""Fan-out of frames from one capture thread to any number of viewers.

Each viewer holds its own :class:`Subscription` with its own event (the
"BaseCamera event pattern"), rather than an entry keyed by thread id, so two
streams read from one thread, or a worker thread reused by the server,
cannot collide. A subscription keeps only the newest frame: a viewer that
was busy while several frames went by gets the latest one next, never a
backlog of stale frames and never the same frame twice.

Anything with ``offer(frame)`` and ``close()`` can subscribe; the socket
viewers of :mod:`camera.viewers.sender` do, without a thread each. A processing
step, such as a detector, *watches* instead: it gets every frame like a
viewer, but is no viewer, so it neither keeps the camera running nor is
ended when the camera stops.
"""

from __future__ import annotations

import threading
import time
from typing import Protocol, Self

from .frame import Frame


class Subscriber(Protocol):
    @property
    def closed(self) -> bool:
        """True once this viewer's stream has ended; a broadcaster never adds a closed viewer."""

    def offer(self, frame: Frame) -> None:
        """Take a new frame; called from the capture thread, so it must not block."""

    def close(self) -> None:
        """End this viewer's stream."""


class Subscription:
    """One viewer's slot: the newest frame published since it last took one."""

    def __init__(self, broadcaster: Broadcaster, event: threading.Event | None = None,
                 fps: float | None = None) -> None:
        self._broadcaster = broadcaster
        # How many frames a second it takes at most (None: every one), so a source may make no more.
        self.fps = fps
        # Several subscriptions may share one event, for a viewer of several cameras.
        self._event = event or threading.Event()
        self._pending: Frame | None = None
        self._last_seq = -1
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    def offer(self, frame: Frame) -> None:
        """Called by the broadcaster: replace the pending frame and wake the viewer."""
        self._pending = frame
        self._event.set()

    def next_frame(self, timeout: float) -> Frame | None:
        """Wait up to ``timeout`` seconds for a frame newer than the last one taken.

        Returns None on timeout, or once the subscription is closed and its
        last frame taken: a file played once ends with its last frame shown.
        """
        deadline = time.monotonic() + timeout
        while True:
            # Read the slot after clearing the event: a frame offered in
            # between is then either seen here or wakes the next wait.
            frame = self._pending
            if frame is not None and frame.seq > self._last_seq:
                self._last_seq = frame.seq
                return frame
            remaining = deadline - time.monotonic()
            if self._closed or remaining <= 0:
                return None
            self._event.wait(remaining)
            self._event.clear()

    def take(self) -> Frame | None:
        """The newest frame not taken yet, without waiting; None if there is none."""
        frame = self._pending
        if self._closed or frame is None or frame.seq <= self._last_seq:
            return None
        self._last_seq = frame.seq
        return frame

    def close(self) -> None:
        """Unsubscribe now and wake a viewer blocked in :meth:`next_frame`."""
        self._closed = True
        self._broadcaster.unsubscribe(self)
        self._event.set()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class Broadcaster:
    """Hands every published frame to every current subscription."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subscriptions: set[Subscriber] = set()
        self._watchers: set[Subscriber] = set()
        self._latest: Frame | None = None

    @property
    def latest(self) -> Frame | None:
        """The newest frame published since the last :meth:`reset`."""
        return self._latest

    @property
    def subscriber_count(self) -> int:
        with self._lock:
            return len(self._subscriptions)

    @property
    def wanted(self) -> bool:
        """Whether anyone takes frames now, viewer or watcher (one that says it takes 0 a second does not): a
        source that decodes on demand decodes."""
        with self._lock:
            return bool(self._subscriptions) or any(getattr(watcher, "fps", None) != 0 for watcher in self._watchers)

    @property
    def wanted_fps(self) -> float | None:
        """How many frames a second are taken: None for every one (a viewer, or a watcher that takes every one),
        else the most any watcher takes (0 with nobody). A source that decodes on demand makes no more pictures
        than that: a camera watched by its detector alone converts and encodes a few a second, not thirty."""
        with self._lock:
            if self._subscriptions:
                return None
            rates = [getattr(watcher, "fps", None) for watcher in self._watchers]
        if any(rate is None for rate in rates):
            return None
        return max(rates, default=0.0)

    def subscribe(self, event: threading.Event | None = None) -> Subscription:
        """Add a viewer that waits for frames in its own thread (on ``event``, if given)."""
        subscription = Subscription(self, event)
        self.add(subscription)
        return subscription

    def watch(self, event: threading.Event | None = None, fps: float | None = None) -> Subscription:
        """Add a subscription that is offered every frame but counts as no viewer; ``fps`` says it takes no more
        than that many a second (see :attr:`wanted_fps`).

        It does not keep the camera running and outlives the camera's
        stops and starts, until it is closed itself.
        """
        subscription = Subscription(self, event, fps)
        with self._lock:
            self._watchers.add(subscription)
            if self._latest is not None:
                subscription.offer(self._latest)
        return subscription

    def add(self, subscriber: Subscriber) -> bool:
        """Add a viewer and offer it the newest frame, if there is one; False if it has closed already.

        A viewer closes by setting its ``closed`` flag and then unsubscribing,
        so checking the flag under the lock leaves no moment in which a viewer
        closing elsewhere could be added after its unsubscribe and stay forever.
        """
        with self._lock:
            if subscriber.closed:
                return False
            self._subscriptions.add(subscriber)
            if self._latest is not None:
                subscriber.offer(self._latest)
        return True

    def unsubscribe(self, subscription: Subscriber) -> None:
        with self._lock:
            self._subscriptions.discard(subscription)
            self._watchers.discard(subscription)

    def publish(self, frame: Frame) -> None:
        with self._lock:
            self._latest = frame
            subscriptions = [*self._subscriptions, *self._watchers]
        for subscription in subscriptions:
            subscription.offer(frame)

    def reset(self) -> None:
        """Forget the newest frame, so no viewer is handed one from a stopped camera."""
        with self._lock:
            self._latest = None

    def close_all(self) -> None:
        """End every subscription; their viewers see :meth:`Subscription.next_frame` return None."""
        with self._lock:
            subscriptions = list(self._subscriptions)
        for subscription in subscriptions:
            subscription.close()
