"""BaseCamera: one capture thread per camera, started and stopped by viewer count.

A subclass only says how to get pictures, by writing :meth:`BaseCamera.frames`.
Everything else happens here, once per frame in the capture thread: the fps
cap, resizing, JPEG encoding, building the MJPEG part and handing it to the
:class:`~camera.broadcast.Broadcaster`. Viewers never encode anything.
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable, Iterator

import numpy as np

from . import jpeg, mjpeg
from .broadcast import Broadcaster, Subscriber, Subscription
from .frame import Frame
from .redact import Redactor, redact_url

log = logging.getLogger("camstream.camera")

IDLE = "idle"
STARTING = "starting"
STREAMING = "streaming"
FAILED = "failed"

# A stream generator wakes at least this often, to notice a closed
# subscription or a client that went away while no frame was coming.
STREAM_POLL_SECONDS = 0.5


class BaseCamera:
    """A camera whose capture thread runs while anyone is watching.

    The thread starts when the first viewer (or snapshot) arrives, keeps
    running while any subscription exists, and stops ``idle_timeout``
    seconds after the last one left, closing the :meth:`frames` generator so
    its ``finally`` releases the device. All state lives on the instance, so
    any number of cameras run side by side.
    """

    def __init__(
        self,
        name: str = "default",
        *,
        source: str = "",
        fps: float | None = None,
        quality: int = 80,
        width: int | None = None,
        height: int | None = None,
        idle_timeout: float = 10.0,
    ) -> None:
        if fps is not None and fps <= 0:
            raise ValueError(f"fps must be positive, not {fps}")
        if not 1 <= quality <= 100:
            raise ValueError(f"JPEG quality must be 1-100, not {quality}")
        for side, value in (("width", width), ("height", height)):
            if value is not None and value <= 0:
                raise ValueError(f"{side} must be positive, not {value}")
        if idle_timeout < 0:
            raise ValueError(f"idle timeout must be >= 0, not {idle_timeout}")
        self.name = name
        self.fps = fps
        self.quality = quality
        self.width = width
        self.height = height
        self.idle_timeout = idle_timeout
        self.broadcaster = Broadcaster()
        self._redactor = Redactor(source)
        self.source = redact_url(source)

        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop_event = threading.Event()
        self._running = False
        self._last_wanted = time.monotonic()

        self._state = IDLE
        self._last_error: str | None = None
        self._started_at: float | None = None
        self._frames_captured = 0
        self._frames_encoded = 0
        self._seq = 0
        self._next_due = 0.0
        self._size: tuple[int, int] | None = None
        self._publish_times: deque[float] = deque(maxlen=60)

    def frames(self) -> Iterator[bytes | np.ndarray]:
        """Yield JPEG bytes or BGR images, forever or until the source ends.

        Open the device inside the generator and release it in a
        ``finally``: the capture thread closes the generator when it stops.
        """
        raise NotImplementedError

    # -- viewers -------------------------------------------------------

    def subscribe(self) -> Subscription:
        """Register a viewer that waits in its own thread; make sure the capture thread runs."""
        subscription = self.broadcaster.subscribe()
        self.start()
        return subscription

    def attach(self, subscriber: Subscriber) -> None:
        """Register any other kind of viewer, such as a socket viewer; start capturing."""
        self.broadcaster.add(subscriber)
        self.start()

    def snapshot(self, timeout: float = 5.0) -> Frame | None:
        """The newest frame, starting the camera if needed; None if none came in time."""
        with self.subscribe() as subscription:
            return subscription.next_frame(timeout)

    def mjpeg_stream(self, is_disconnected: Callable[[], bool] | None = None) -> Iterator[bytes]:
        """Yield the bytes of an endless MJPEG response for one viewer.

        Ends when the camera ends the subscription or ``is_disconnected``
        says the client went away; closing the generator unsubscribes.
        """
        subscription = self.subscribe()
        try:
            yield mjpeg.STREAM_START
            while not subscription.closed:
                frame = subscription.next_frame(STREAM_POLL_SECONDS)
                if frame is not None:
                    yield frame.part
                elif is_disconnected is not None and is_disconnected():
                    return
        finally:
            subscription.close()

    # -- lifecycle -----------------------------------------------------

    @property
    def running(self) -> bool:
        return self._running

    @property
    def stopping(self) -> bool:
        """True once :meth:`stop` was called; a source that blocks can check it."""
        return self._stop_event.is_set()

    def start(self) -> None:
        """Start the capture thread unless it runs; keeps an idle camera awake."""
        with self._lock:
            self._last_wanted = time.monotonic()
            if self._running:
                return
            self._running = True
            self._state = STARTING
            self._stop_event = threading.Event()
            # A thread that just decided to stop may still be releasing the
            # device; the new one waits for it before opening the source.
            previous = self._thread
            self._thread = threading.Thread(
                target=self._run,
                args=(previous, self._stop_event),
                name=f"camera-{self.name}",
                daemon=True,
            )
            self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop capturing now, end every viewer's stream and wait for the thread."""
        with self._lock:
            self._running = False
            self._stop_event.set()
            thread = self._thread
            self.broadcaster.reset()
        self.broadcaster.close_all()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def _run(self, previous: threading.Thread | None, stop: threading.Event) -> None:
        if previous is not None:
            previous.join()
        self._started_at = time.monotonic()
        self._next_due = 0.0
        log.info("camera %s: starting capture from %s", self.name, self.source)
        error: BaseException | None = None
        frames: Iterator[bytes | np.ndarray] | None = None
        try:
            frames = self.frames()
            for item in frames:
                captured_at = time.time()
                if stop.is_set() or self._stop_if_idle():
                    break
                self._frames_captured += 1
                if self._under_fps_cap():
                    self.broadcaster.publish(self._make_frame(item, captured_at))
                    self._state = STREAMING
        except Exception as exc:  # noqa: BLE001 - any source error must reach the status
            error = exc
        finally:
            try:
                close = getattr(frames, "close", None)
                if close is not None:
                    close()
            except Exception:
                log.warning("camera %s: error while releasing the source", self.name, exc_info=True)
            self._finish(error)

    def _stop_if_idle(self) -> bool:
        """Decide, under the lifecycle lock, whether the camera has been unwatched too long."""
        with self._lock:
            now = time.monotonic()
            if self.broadcaster.subscriber_count:
                self._last_wanted = now
                return False
            if now - self._last_wanted < self.idle_timeout:
                return False
            self._running = False
            self.broadcaster.reset()
            return True

    def _finish(self, error: BaseException | None) -> None:
        with self._lock:
            current = self._thread is threading.current_thread()
            if current:
                self._running = False
                self._started_at = None
                self._state = FAILED if error else IDLE
                self.broadcaster.reset()
        if error is not None:
            self._last_error = self._redactor.redact(f"{type(error).__name__}: {error}")
            trace = "".join(traceback.format_exception(error))
            log.error("camera %s failed: %s", self.name, self._redactor.redact(trace))
        else:
            log.info("camera %s: capture stopped", self.name)
        if current:
            # With no thread feeding them, viewers would wait forever.
            self.broadcaster.close_all()

    # -- per frame -----------------------------------------------------

    def _under_fps_cap(self) -> bool:
        """Drop frames that come faster than the fps cap allows.

        Frames follow a schedule of one per interval: one up to a quarter
        interval early still counts, and one that is late does not move the
        schedule unless it is a whole interval late, so a source running at
        exactly the cap loses no frames to jitter or to catching up.
        """
        if not self.fps:
            return True
        interval = 1.0 / self.fps
        now = time.monotonic()
        if now < self._next_due - interval / 4:
            return False
        self._next_due = max(self._next_due, now - interval) + interval
        return True

    def _make_frame(self, item: bytes | np.ndarray, captured_at: float) -> Frame:
        if isinstance(item, (bytes, bytearray, memoryview)):
            data = bytes(item)
            if self.width or self.height:
                data, size = self._encode(jpeg.decode(data))
            else:
                size = jpeg.image_size(data)
        else:
            data, size = self._encode(item)
        self._seq += 1
        self._size = size
        self._publish_times.append(time.monotonic())
        return Frame(self._seq, data, captured_at, *size)

    def _encode(self, image: np.ndarray) -> tuple[bytes, tuple[int, int]]:
        image = jpeg.resize(image, self.width, self.height)
        data = jpeg.encode(image, self.quality)
        self._frames_encoded += 1
        return data, (image.shape[1], image.shape[0])

    # -- status --------------------------------------------------------

    @property
    def state(self) -> str:
        return self._state

    def measured_fps(self) -> float:
        """Frames published per second over the last couple of seconds.

        Zero until half a second of frames is in: the first few intervals
        after a start are uneven and would overstate the rate.
        """
        now = time.monotonic()
        recent = [t for t in list(self._publish_times) if now - t <= 2.0]
        if len(recent) < 2 or recent[-1] - recent[0] < 0.5:
            return 0.0
        return (len(recent) - 1) / (recent[-1] - recent[0])

    def status(self) -> dict:
        """Everything a status page or API shows about this camera, as JSON-able data."""
        started_at = self._started_at
        width, height = self._size or (None, None)
        return {
            "name": self.name,
            "source": self.source,
            "state": self._state,
            "fps": self.fps,
            "measured_fps": round(self.measured_fps(), 2),
            "width": width,
            "height": height,
            "quality": self.quality,
            "viewers": self.broadcaster.subscriber_count,
            "frames_captured": self._frames_captured,
            "frames_encoded": self._frames_encoded,
            "last_error": self._last_error,
            "uptime": round(time.monotonic() - started_at, 3) if started_at is not None else 0.0,
        }
