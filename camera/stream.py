"""MJPEG response bodies for viewers served through WSGI, each waiting in its own thread.

One body can carry one camera or several. A browser opens at most six
HTTP/1.1 connections to a server and an MJPEG stream holds one for as long
as it runs, so a page with many cameras, or many tabs, runs out. A tagged
stream is an ordinary MJPEG stream whose parts each start with an
``X-Camera`` header naming their camera; the page's shared worker
(static/camstream-worker.js) splits it up again.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence

from . import mjpeg
from .base import BaseCamera
from .pacing import RateLimit

# A stream wakes at least this often, to notice a client that went away
# while no frame was coming.
POLL_SECONDS = 0.5


def mjpeg_stream(cameras: Sequence[BaseCamera], is_disconnected: Callable[[], bool] | None = None,
                 fps: float | None = None, tagged: bool = False) -> Iterator[bytes]:
    """Yield the bytes of one endless MJPEG response with the frames of ``cameras``.

    Each camera's newest frame goes out in turn, never a backlog; ``fps``
    caps each camera's rate for this viewer; ``tagged`` leads every part
    with its camera's ``X-Camera`` line. Ends when a camera ends its
    subscription (it failed for good or the server stops) or
    ``is_disconnected`` says the client left; closing the generator
    unsubscribes at once.
    """
    wake = threading.Event()
    feeds = [(mjpeg.camera_header(camera.name) if tagged else b"", camera.subscribe(wake), RateLimit(fps))
             for camera in cameras]
    try:
        yield mjpeg.STREAM_START
        while not any(subscription.closed for _, subscription, _ in feeds):
            if not wake.wait(POLL_SECONDS):
                if is_disconnected is not None and is_disconnected():
                    return
                continue
            # Clear before looking, so a frame offered meanwhile wakes the next wait.
            wake.clear()
            for tag, subscription, rate in feeds:
                frame = subscription.take()
                if frame is not None and rate.allows(frame.timestamp):
                    if tag:
                        yield tag
                    yield frame.part
    finally:
        for _, subscription, _ in feeds:
            subscription.close()
