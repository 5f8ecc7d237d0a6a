"""camstream's cameras on an asyncio event loop: MJPEG bodies, the next frame and snapshots, awaited.

For ASGI apps (FastAPI, Starlette, Django under ASGI). Nothing here holds a
thread per viewer: a viewer is a subscription like any other, and the
capture thread wakes the event loop when it offers a frame. Those wake-ups
are gathered: whatever number of viewers a frame is offered to, the loop is
called once (:class:`LoopWaker`), and sets each viewer's :class:`asyncio.Event`.

A slow viewer stays close to live without anything here: an ASGI server
makes ``await send(...)`` wait while the connection's write buffer is full
(uvicorn pauses at 64 KB), and while it waits, newer frames replace the
one pending in the viewer's subscription instead of queueing up.
"""

from __future__ import annotations

import asyncio
import threading
import time
import weakref
from collections.abc import AsyncIterator, Sequence
from types import TracebackType
from typing import Self

from .. import mjpeg
from ..base import BaseCamera
from ..frame import Frame
from ..pacing import RateLimit
from .wsgi import Feeds

_wakers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, LoopWaker] = weakref.WeakKeyDictionary()
_wakers_lock = threading.Lock()


class LoopWaker:
    """Sets asyncio events of one loop from any thread, with one call into the loop per burst."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._lock = threading.Lock()
        self._due: set[asyncio.Event] = set()
        self._scheduled = False

    @classmethod
    def of(cls, loop: asyncio.AbstractEventLoop) -> LoopWaker:
        with _wakers_lock:
            waker = _wakers.get(loop)
            if waker is None:
                waker = _wakers[loop] = cls(loop)
            return waker

    def wake(self, event: asyncio.Event) -> None:
        with self._lock:
            self._due.add(event)
            if self._scheduled:
                return
            self._scheduled = True
        try:
            self._loop.call_soon_threadsafe(self._set_due)
        except RuntimeError:
            # The loop is closed: nobody is left to wake.
            pass

    def _set_due(self) -> None:
        with self._lock:
            due, self._due = self._due, set()
            self._scheduled = False
        for event in due:
            event.set()


class _Signal:
    """What a subscription calls ``set()`` on from the capture thread: sets an asyncio event in its loop."""

    def __init__(self) -> None:
        self.event = asyncio.Event()
        self._waker = LoopWaker.of(asyncio.get_running_loop())

    def set(self) -> None:
        self._waker.wake(self.event)


async def mjpeg_body(cameras: BaseCamera | Sequence[BaseCamera], fps: float | None = None,
                     tagged: bool = False) -> AsyncIterator[bytes]:
    """The bytes of one endless MJPEG response with the frames of ``cameras``, for an ASGI streaming response.

    The same stream as :func:`camera.viewers.wsgi.mjpeg_stream`: each camera's
    newest frame in turn, ``fps`` per camera for this viewer, ``tagged``
    parts for several cameras. Ends when a camera ends its subscription;
    when the client leaves, the server cancels the task iterating it and
    the viewer is unsubscribed at once.
    """
    signal = _Signal()
    feeds = Feeds([cameras] if isinstance(cameras, BaseCamera) else cameras, signal, fps, tagged)
    try:
        yield mjpeg.STREAM_START
        while not feeds.ended:
            await signal.event.wait()
            signal.event.clear()
            for chunk in feeds.due():
                yield chunk
    finally:
        feeds.close()


class AsyncFrames:
    """A viewer of one camera on the event loop: ``await next_frame()``, or ``async for frame in ...``.

    Newest frame first, never one twice, at most ``fps`` a second. Use it
    with ``async with`` (or call :meth:`close`) so the camera can stop when
    nobody watches.
    """

    def __init__(self, camera: BaseCamera, fps: float | None = None) -> None:
        self.camera = camera
        self._signal = _Signal()
        self._rate = RateLimit(fps)
        self._subscription = camera.subscribe(self._signal)  # type: ignore[arg-type]

    @property
    def closed(self) -> bool:
        return self._subscription.closed

    async def next_frame(self, timeout: float | None = None) -> Frame | None:
        """The next frame; None after ``timeout`` seconds, or once the camera ended the subscription."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._subscription.closed:
            self._signal.event.clear()
            frame = self._subscription.take()
            if frame is not None and self._rate.allows(frame.timestamp):
                return frame
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return None
            try:
                await asyncio.wait_for(self._signal.event.wait(), remaining)
            except TimeoutError:
                return None
        return None

    def close(self) -> None:
        self._subscription.close()

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> Frame:
        frame = await self.next_frame()
        if frame is None:
            raise StopAsyncIteration
        return frame

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, kind: type[BaseException] | None, error: BaseException | None,
                        trace: TracebackType | None) -> None:
        self.close()


async def snapshot(camera: BaseCamera, timeout: float = 5.0) -> Frame | None:
    """The newest live frame, starting the camera if needed, as :meth:`BaseCamera.snapshot` but awaited.

    None if none came within ``timeout`` seconds, or at once if the source is gone.
    """
    async with AsyncFrames(camera) as frames:
        frame = await frames.next_frame(timeout)
    return frame if frame is not None and frame.live else None
