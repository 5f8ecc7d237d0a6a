"""One MJPEG stream carrying several cameras, for viewers that can only open a few connections.

A browser opens at most six HTTP/1.1 connections to one server and an MJPEG
stream holds one for as long as it runs, so a page with many cameras, or
many tabs, runs out. A multiplexed stream is an ordinary MJPEG stream whose
parts each start with an ``X-Camera`` header naming their camera; the
page's shared worker (static/camstream-worker.js) splits it up again.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence

from . import mjpeg
from .base import STREAM_POLL_SECONDS, BaseCamera
from .pacing import RateLimit


def multiplexed_stream(cameras: Sequence[BaseCamera], is_disconnected: Callable[[], bool] | None = None,
                       fps: float | None = None) -> Iterator[bytes]:
    """Yield the bytes of one endless MJPEG response with the frames of every camera in ``cameras``.

    Each camera's newest frame goes out in turn, never a backlog; ``fps``
    caps each camera's rate for this viewer. Ends when a camera ends its
    subscription (the server stops) or ``is_disconnected`` says the client left.
    """
    wake = threading.Event()
    feeds = [(mjpeg.camera_header(camera.name), camera.subscribe(wake), RateLimit(fps)) for camera in cameras]
    try:
        yield mjpeg.STREAM_START
        while not any(subscription.closed for _, subscription, _ in feeds):
            if not wake.wait(STREAM_POLL_SECONDS):
                if is_disconnected is not None and is_disconnected():
                    return
                continue
            # Clear before looking, so a frame offered meanwhile wakes the next wait.
            wake.clear()
            for tag, subscription, rate in feeds:
                frame = subscription.take()
                if frame is not None and rate.allows(frame):
                    yield tag
                    yield frame.part
    finally:
        for _, subscription, _ in feeds:
            subscription.close()
