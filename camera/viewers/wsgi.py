"""MJPEG response bodies: what a viewer of one camera or several is sent, for WSGI and for asyncio.

One body can carry one camera or several. A browser opens at most six
HTTP/1.1 connections to a server and an MJPEG stream holds one for as long
as it runs, so a page with many cameras, or many tabs, runs out. A tagged
stream is an ordinary MJPEG stream whose parts each start with an
``X-Camera`` header naming their camera; the page's shared worker
(static/camstream-worker.js) splits it up again.

:class:`Feeds` is what every body shares: a viewer's subscriptions, its
frame-rate cap and the bytes of each frame it is due. :func:`mjpeg_stream`
waits for frames in its thread (WSGI); :func:`camera.viewers.aio.mjpeg_body`
awaits them on an event loop.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Protocol

from .. import mjpeg
from ..base import BaseCamera
from ..broadcast import Subscription
from ..pacing import RateLimit

# A stream wakes at least this often, to notice a client that went away
# while no frame was coming.
POLL_SECONDS = 0.5


class Wake(Protocol):
    def set(self) -> None:
        """Called from a capture thread when a frame is offered: wake the viewer."""


class Feeds:
    """One viewer's subscriptions to ``cameras``, each woken through ``wake``, capped at ``fps`` each."""

    def __init__(self, cameras: Sequence[BaseCamera], wake: Wake, fps: float | None = None,
                 tagged: bool = False) -> None:
        self._feeds: list[tuple[bytes, Subscription, RateLimit]] = []
        try:
            for camera in cameras:
                tag = mjpeg.camera_header(camera.name) if tagged else b""
                self._feeds.append((tag, camera.subscribe(wake), RateLimit(fps)))  # type: ignore[arg-type]
        except BaseException:
            self.close()
            raise

    @property
    def ended(self) -> bool:
        """True once a camera ended its subscription (it failed for good, or the server stops)."""
        return any(subscription.closed for _, subscription, _ in self._feeds)

    def due(self) -> list[bytes]:
        """The bytes to send now: each camera's newest frame not sent yet, if this viewer's rate allows it."""
        chunks = []
        for tag, subscription, rate in self._feeds:
            frame = subscription.take()
            if frame is not None and rate.allows(frame.timestamp):
                if tag:
                    chunks.append(tag)
                chunks.append(frame.part)
        return chunks

    def close(self) -> None:
        """Unsubscribe from every camera, now."""
        for _, subscription, _ in self._feeds:
            subscription.close()


def mjpeg_stream(cameras: Sequence[BaseCamera], is_disconnected: Callable[[], bool] | None = None,
                 fps: float | None = None, tagged: bool = False) -> Iterator[bytes]:
    """Yield the bytes of one endless MJPEG response with the frames of ``cameras``, waiting in this thread.

    Each camera's newest frame goes out in turn, never a backlog; ``fps``
    caps each camera's rate for this viewer; ``tagged`` leads every part
    with its camera's ``X-Camera`` line. Ends when a camera ends its
    subscription or ``is_disconnected`` says the client left; closing the
    generator unsubscribes at once.
    """
    wake = threading.Event()
    feeds = Feeds(cameras, wake, fps, tagged)
    try:
        yield mjpeg.STREAM_START
        while not feeds.ended:
            if not wake.wait(POLL_SECONDS):
                if is_disconnected is not None and is_disconnected():
                    return
                continue
            # Clear before looking, so a frame offered meanwhile wakes the next wait.
            wake.clear()
            yield from feeds.due()
    finally:
        feeds.close()
