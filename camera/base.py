"""BaseCamera: one capture thread per camera, started and stopped by viewer count.

A subclass only says how to get pictures, by writing :meth:`BaseCamera.frames`.
Everything else happens here, once per frame in the capture thread: the fps
cap, resizing, JPEG encoding, building the MJPEG part and handing it to the
:class:`~camera.broadcast.Broadcaster`. Viewers never encode anything.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

import numpy as np

from . import jpeg
from .backoff import Backoff
from .broadcast import Broadcaster, Subscriber, Subscription
from .errors import SourceError
from .frame import Frame
from .limits import MAX_FPS, MAX_SIDE, MIN_FPS, checked
from .nosignal import no_signal_image
from .pacing import RateLimit, RateMeter
from .redact import Redactor, redact_url

if TYPE_CHECKING:
    from .media.feed import MediaFeed

log = logging.getLogger("camstream.camera")



class CameraState(StrEnum):
    """Where a camera is; its value is what the status and the page say."""

    IDLE = "idle"  # nobody watching: the source is closed
    STARTING = "starting"  # opening the source for its first frame
    STREAMING = "streaming"
    RECONNECTING = "reconnecting"  # the source went away; retrying with backoff
    FAILED = "failed"  # stopped while the source was gone, or a source that can never work


IDLE = CameraState.IDLE
STARTING = CameraState.STARTING
STREAMING = CameraState.STREAMING
RECONNECTING = CameraState.RECONNECTING
FAILED = CameraState.FAILED

# How often a camera's watchdog looks at it while it runs.
WATCH_SECONDS = 0.25
# A source that yields nothing for this long is taken for gone.
STALL_TIMEOUT = 5.0
# Viewers get a "no signal" frame this often while the source is gone.
NO_SIGNAL_SECONDS = 1.0
# The longest a camera may be kept open with nobody watching: a day.
MAX_IDLE_TIMEOUT = 86400.0
# Cameras that may be opening their source at once, in this process. Opening (a device, a connection, an
# FFmpeg demuxer) is the costly moment; a request that starts many cameras then starts them a few at a time.
# A camera holds its turn until its first frame, or OPENING_HOLD seconds at most, so dead cameras cannot keep
# the others waiting.
MAX_OPENING = 4
OPENING_HOLD = 3.0
_OPENING = threading.BoundedSemaphore(MAX_OPENING)


@dataclass
class Outage:
    """Why and since when a running camera has had no source."""

    reason: str
    since: float
    since_monotonic: float
    attempts: int = 0
    retry_at: float | None = None


class OpeningTurn:
    """A camera's turn to open its source: given back at its first frame, or after :data:`OPENING_HOLD`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held = True
        self._timer = threading.Timer(OPENING_HOLD, self.give_back)
        self._timer.daemon = True
        self._timer.start()

    @classmethod
    def wait(cls, quit: threading.Event) -> OpeningTurn | None:
        """Wait until fewer than :data:`MAX_OPENING` cameras are opening; None if told to quit meanwhile."""
        while not _OPENING.acquire(timeout=WATCH_SECONDS):
            if quit.is_set():
                return None
        return cls()

    def give_back(self) -> None:
        with self._lock:
            if not self._held:
                return
            self._held = False
        self._timer.cancel()
        _OPENING.release()


class CaptureThread(threading.Thread):
    """A capture thread, with the event that tells it to quit.

    ``waiting_since`` is when it began waiting for the source's next frame,
    None while it works on one: the watchdog takes only a thread stuck in
    the source for gone, never one busy with a frame, so a slow decode is
    never started twice.
    """

    def __init__(self, target: Callable[..., None], name: str, quit: threading.Event) -> None:
        super().__init__(target=target, name=name, daemon=True)
        self.quit = quit
        self.waiting_since: float | None = None


class BaseCamera:
    """A camera whose capture thread runs while anyone is watching.

    The thread starts when the first viewer (or snapshot) arrives, keeps
    running while any subscription exists, and stops ``idle_timeout``
    seconds after the last one left, closing the :meth:`frames` generator so
    its ``finally`` releases the device. A source that fails, ends or sends
    nothing for ``stall_timeout`` seconds is reopened with backoff while
    viewers get a "no signal" frame each second. All state lives on the
    instance, so any number of cameras run side by side.
    """

    # False for a camera that can never start (see camera/unusable.py).
    usable = True
    # The camera's own compressed video, for a source that passes it through (camera/sources/packets.py).
    media: MediaFeed | None = None

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
        stall_timeout: float = STALL_TIMEOUT,
    ) -> None:
        fps = None if fps is None else checked("fps", fps, float, MIN_FPS, MAX_FPS)
        quality = checked("JPEG quality", quality, int, 1, 100)
        width, height = (None if side is None else checked(label, side, int, 1, MAX_SIDE)
                         for label, side in (("width", width), ("height", height)))
        idle_timeout = checked("idle timeout", idle_timeout, float, 0, MAX_IDLE_TIMEOUT)
        stall_timeout = checked("stall timeout", stall_timeout, float, 0.01, MAX_IDLE_TIMEOUT)
        self.name = name
        self.fps = fps
        self.quality = quality
        self.width = width
        self.height = height
        self.idle_timeout = idle_timeout
        self.stall_timeout = stall_timeout
        self.broadcaster = Broadcaster()
        self._redactor = Redactor(source)
        self.source = redact_url(source)

        self._lock = threading.Lock()
        self._thread: CaptureThread | None = None
        self._abandoned: CaptureThread | None = None
        self._session_stop = threading.Event()
        self._running = False
        self._last_wanted = time.monotonic()
        # Holders (a detector that must always see) keep it running without viewers.
        self._holders = 0

        self._state = IDLE
        self._state_listeners: list[Callable[[BaseCamera, str], None]] = []
        self._outage: Outage | None = None
        self._last_error: str | None = None
        self._started_at: float | None = None
        self._last_no_signal = 0.0
        self._frames_captured = 0
        self._frames_encoded = 0
        self._frames_published = 0
        # Every time the source was lost while running (for /metrics; status shows the current outage).
        self.outages = 0
        self._bad_frames = 0
        self._seq = itertools.count(1)
        self._cap = RateLimit(fps, RateLimit.SOURCE_BURST)
        self._size: tuple[int, int] | None = None
        self._published = RateMeter()

    def frames(self) -> Iterator[bytes | np.ndarray | None]:
        """Yield JPEG bytes or BGR images, forever or until the source is done.

        None says the source is alive but no picture is wanted now (a
        source that passes its video through and decodes only on demand).

        Open the device inside the generator and release it in a
        ``finally``: the capture thread closes the generator when it stops.
        Raise (a :class:`~camera.SourceError` for expected trouble) when the
        source fails; the camera reconnects by calling this again. Returning
        ends the camera's run and its viewers' streams.
        """
        raise NotImplementedError

    # -- viewers -------------------------------------------------------

    def subscribe(self, event: threading.Event | None = None) -> Subscription:
        """Register a viewer that waits in its own thread; make sure the capture thread runs.

        ``event``, shared by several subscriptions, wakes one viewer of several cameras.
        """
        subscription = self.broadcaster.subscribe(event)
        self.start()
        return subscription

    def attach(self, subscriber: Subscriber) -> None:
        """Register any other kind of viewer, such as a socket viewer; start capturing.

        A viewer that closed before it got here (a client that left at
        once) is not added and starts nothing.
        """
        if self.broadcaster.add(subscriber):
            self.start()

    def snapshot(self, timeout: float = 5.0) -> Frame | None:
        """The newest live frame, starting the camera if needed.

        None if none came within ``timeout`` seconds, or at once if the
        source is gone (a "no signal" frame is not a picture).
        """
        with self.subscribe() as subscription:
            frame = subscription.next_frame(timeout)
        return frame if frame is not None and frame.live else None

    def hold(self) -> None:
        """Keep the camera running with or without viewers, until :meth:`unhold`.

        A detector holds its camera: detecting is what it is for, watched
        or not. A holder is no viewer: it is not counted in ``viewers``.
        """
        with self._lock:
            self._holders += 1
        self.start()

    def unhold(self) -> None:
        """Let the camera stop again once nobody watches."""
        with self._lock:
            self._holders = max(0, self._holders - 1)
            self._last_wanted = time.monotonic()

    # -- lifecycle -----------------------------------------------------

    @property
    def running(self) -> bool:
        return self._running

    @property
    def stopping(self) -> bool:
        """True once the calling capture thread should quit; a source that blocks can check it."""
        thread = threading.current_thread()
        if isinstance(thread, CaptureThread):
            return thread.quit.is_set()
        return self._session_stop.is_set()

    def start(self) -> None:
        """Start capturing unless the camera runs; keeps an idle camera awake."""
        with self._lock:
            self._last_wanted = time.monotonic()
            if self._running:
                return
            self._running = True
            self._set_state(STARTING)
            self._outage = None
            self._started_at = time.monotonic()
            self._session_stop = threading.Event()
            # A thread that just decided to stop may still be releasing the
            # device; the new one waits for it before opening the source.
            self._launch(previous=self._thread)
            threading.Thread(target=self._watch, args=(self._session_stop,),
                             name=f"camera-{self.name}-watch", daemon=True).start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop capturing now, end every viewer's stream and wait up to ``timeout`` for the thread."""
        with self._lock:
            self._end_session()
        self.broadcaster.close_all()
        self.join(timeout)

    def join(self, timeout: float) -> None:
        """Wait up to ``timeout`` seconds for the capture thread to release the source."""
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def _launch(self, previous: CaptureThread | None) -> None:
        """Start a capture thread; the caller holds the lock."""
        thread = CaptureThread(lambda: self._run(previous), name=f"camera-{self.name}", quit=threading.Event())
        thread.start()
        # Only a started thread is seen: join() reads this without the lock.
        self._thread = thread

    def _end_session(self) -> None:
        """Stop the running session; the caller holds the lock."""
        if self._thread is not None:
            self._thread.quit.set()
        self._session_stop.set()
        if self._running:
            self._set_state(FAILED if self._outage else IDLE)
        self._running = False
        self._outage = None
        self._started_at = None
        self.broadcaster.reset()

    def _run(self, previous: CaptureThread | None) -> None:
        """The capture thread: read the source, and reopen it with backoff when it fails."""
        quit = threading.current_thread().quit  # type: ignore[attr-defined]
        if previous is not None:
            previous.join(self.stall_timeout)
        self._cap = RateLimit(self.fps, RateLimit.SOURCE_BURST)
        log.info("camera %s: starting capture from %s", self.name, self.source)
        backoff = Backoff()
        while not quit.is_set():
            error = self._capture(quit, backoff)
            if quit.is_set():
                break
            if error is None:
                # The source finished on purpose, like a file played once.
                with self._lock:
                    if not quit.is_set():
                        self._end_session()
                break
            self._source_lost(error, quit)
            delay = backoff.next_delay()
            outage = self._outage
            if outage is not None:
                outage.attempts = backoff.attempts
                outage.retry_at = time.monotonic() + delay
            quit.wait(delay)
        self._finish()

    def _capture(self, quit: threading.Event, backoff: Backoff) -> BaseException | None:
        """Read the source until it fails, ends or the thread must quit; return what went wrong.

        An item that is not a picture (an upstream part that is not a JPEG,
        one too large to decode) is dropped; a source that sends nothing
        else for ``stall_timeout`` seconds has failed. It is back from an
        outage only with a frame that decodes.
        """
        thread: CaptureThread = threading.current_thread()  # type: ignore[assignment]
        frames: Iterator[bytes | np.ndarray | None] | None = None
        try:
            turn = OpeningTurn.wait(quit)
            if turn is None:
                return None
            try:
                thread.waiting_since = time.monotonic()
                frames = self.frames()
                first = list(itertools.islice(frames, 1))  # opens the source
            finally:
                turn.give_back()
            last_picture = time.monotonic()
            for item in itertools.chain(first, frames):
                captured_at = time.time()
                thread.waiting_since = None
                if quit.is_set():
                    return None
                last_picture = self._take(item, captured_at, last_picture, quit, backoff)
                thread.waiting_since = time.monotonic()
            return None
        except Exception as exc:  # noqa: BLE001 - any source error must reach the status
            return exc
        finally:
            thread.waiting_since = None
            try:
                close = getattr(frames, "close", None)
                if close is not None:
                    close()
            except Exception:
                log.warning("camera %s: error while releasing the source", self.name, exc_info=True)

    def _take(self, item: bytes | np.ndarray | None, captured_at: float, last_picture: float, quit: threading.Event,
              backoff: Backoff) -> float:
        """Publish one item from the source, or drop it; returns when the source last sent a picture."""
        if item is None:
            self._alive(quit, backoff)
            return time.monotonic()
        self._frames_captured += 1
        try:
            item, size = self._checked(item, decode=self._state != STREAMING or self._outage is not None)
        except jpeg.JpegError as exc:
            self._bad_frame(exc, time.monotonic() - last_picture)
            return last_picture
        self._alive(quit, backoff)
        if self._cap.allows(time.monotonic()):
            self.broadcaster.publish(self._make_frame(item, size, captured_at))
            if quit.is_set():
                # The session ended while this frame was on its way.
                self.broadcaster.reset()
        return time.monotonic()

    def _alive(self, quit: threading.Event, backoff: Backoff) -> None:
        """The source delivers: it is back from an outage, and the camera streams."""
        if self._outage is not None:
            self._source_back()
            backoff.reset()
        if self._state != STREAMING:
            with self._lock:
                if not quit.is_set():
                    self._set_state(STREAMING)

    def _checked(self, item: bytes | np.ndarray, decode: bool) -> tuple[bytes | np.ndarray, tuple[int, int]]:
        """``item`` and its size if it is a picture camstream can use, else :class:`~camera.jpeg.JpegError`.

        JPEG bytes are judged by their header, which gives the size without
        decoding; with ``decode`` (the first frame of a run, or of a source
        coming back) they must also decode.
        """
        if isinstance(item, np.ndarray):
            if item.dtype != np.uint8 or item.ndim not in (2, 3) or not item.size:
                raise jpeg.JpegError(f"not an 8-bit image: {item.dtype} array of shape {item.shape}")
            return item, (item.shape[1], item.shape[0])
        data = bytes(item)
        size = jpeg.image_size(data)
        jpeg.check_size(*size)
        if decode:
            jpeg.decode(data, reduced=True)
        return data, size

    def _bad_frame(self, error: jpeg.JpegError, without_picture: float) -> None:
        """Drop an item that is not a picture; a source that sends only those has failed."""
        self._bad_frames += 1
        reason = self._redactor.redact(str(error))
        if without_picture > self.stall_timeout:
            raise SourceError(f"no picture from the source for {self.stall_timeout:g} s: {reason}")
        if self._bad_frames == 1:
            log.warning("camera %s: dropped a frame that is not a picture: %s", self.name, reason)
        else:
            log.debug("camera %s: dropped a frame that is not a picture: %s", self.name, reason)

    def _source_lost(self, error: BaseException, quit: threading.Event) -> None:
        reason = self._redactor.redact(str(error) if isinstance(error, SourceError)
                                       else f"{type(error).__name__}: {error}")
        with self._lock:
            if quit.is_set():
                return
            first = self._outage is None
            self._last_error = reason
            if first:
                self._begin_outage(reason)
            elif self._outage is not None:
                self._outage.reason = reason
        if not first:
            log.debug("camera %s: still no source: %s", self.name, reason)
        elif isinstance(error, SourceError):
            log.warning("camera %s: source lost: %s; reconnecting", self.name, reason)
        else:
            trace = self._redactor.redact("".join(traceback.format_exception(error)))
            log.error("camera %s: capture failed; reconnecting\n%s", self.name, trace)

    def _begin_outage(self, reason: str) -> None:
        """Enter the reconnecting state; the caller holds the lock."""
        self._outage = Outage(reason, time.time(), time.monotonic())
        self.outages += 1
        self._set_state(RECONNECTING)
        self._last_no_signal = 0.0
        # A snapshot must not be handed the last picture from before.
        self.broadcaster.reset()

    def _source_back(self) -> None:
        with self._lock:
            outage, self._outage = self._outage, None
        if outage is not None:
            log.info("camera %s: source is back after %.1f s", self.name,
                     time.monotonic() - outage.since_monotonic)

    def _finish(self) -> None:
        with self._lock:
            current = self._thread is threading.current_thread()
        log.info("camera %s: capture stopped", self.name)
        if current:
            # With no thread feeding them, viewers would wait forever.
            self.broadcaster.close_all()

    # -- the watchdog --------------------------------------------------

    def _watch(self, session_stop: threading.Event) -> None:
        """A second thread per running camera: idle stop, stalled sources, "no signal" frames."""
        while not session_stop.wait(WATCH_SECONDS):
            with self._lock:
                if session_stop.is_set():
                    return
                now = time.monotonic()
                if self._is_idle(now):
                    log.info("camera %s: no viewers for %.0f s, releasing the source", self.name, self.idle_timeout)
                    self._end_session()
                    return
                thread = self._thread
                waiting_since = thread.waiting_since if thread is not None else None
                if waiting_since is not None and now - waiting_since > self.stall_timeout:
                    self._stalled()
            self._send_no_signal(now)

    def _is_idle(self, now: float) -> bool:
        if self.broadcaster.subscriber_count or self._holders or self.extra_viewers():
            self._last_wanted = now
            return False
        return now - self._last_wanted >= self.idle_timeout

    def extra_viewers(self) -> int:
        """Viewers beside the broadcaster's (a passed-through stream's); they keep the camera running."""
        return 0

    def _stalled(self) -> None:
        """The source has sent nothing for too long; the caller holds the lock.

        Its thread may be stuck inside a driver or a socket without a
        timeout, so it is left behind (told to quit whenever it wakes) and a
        fresh thread reconnects. At most one thread is left behind at a time.
        """
        reason = f"no frame from the source for {self.stall_timeout:g} s"
        if self._outage is None:
            self._last_error = reason
            self._begin_outage(reason)
            log.warning("camera %s: %s; reconnecting", self.name, reason)
        if self._abandoned is not None and self._abandoned.is_alive():
            return
        stuck = self._thread
        if stuck is not None:
            stuck.quit.set()
        self._abandoned = stuck
        self._launch(previous=None)

    def _send_no_signal(self, now: float) -> None:
        outage = self._outage
        if outage is None or not self.broadcaster.subscriber_count:
            return
        if now - self._last_no_signal < NO_SIGNAL_SECONDS:
            return
        self._last_no_signal = now
        size = self._size or jpeg.target_size(640, 480, self.width, self.height)
        image = no_signal_image(self.name, outage.reason, now - outage.since_monotonic, size,
                                reached=self._frames_captured > 0)
        data = jpeg.encode(image, self.quality)
        self.broadcaster.publish(Frame(next(self._seq), data, time.time(), *size, live=False))

    def picture_size(self) -> tuple[int, int] | None:
        """The size of this camera's frames (width, height), once known: the last frame's."""
        return self._size

    # -- per frame -----------------------------------------------------

    def _make_frame(self, item: bytes | np.ndarray, size: tuple[int, int], captured_at: float) -> Frame:
        """The frame to publish: JPEG bytes as they are (or resized), an image encoded once."""
        if isinstance(item, bytes):
            data = item
            if self.width or self.height:
                data, size = self._encode(jpeg.decode(data))
        else:
            data, size = self._encode(item)
        self._size = size
        self._frames_published += 1
        self._published.tick()
        return Frame(next(self._seq), data, captured_at, *size)

    def _encode(self, image: np.ndarray) -> tuple[bytes, tuple[int, int]]:
        image = jpeg.resize(image, self.width, self.height)
        data = jpeg.encode(image, self.quality)
        self._frames_encoded += 1
        return data, (image.shape[1], image.shape[0])

    # -- status --------------------------------------------------------

    @property
    def state(self) -> str:
        return self._state

    def add_state_listener(self, listener: Callable[[BaseCamera, str], None]) -> None:
        """Call ``listener(camera, state)`` on every change of state.

        It is called where the change happens, often with the camera's lock
        held: it must only note the change (queue it), never block or call
        back into the camera.
        """
        self._state_listeners.append(listener)

    def _set_state(self, state: str) -> None:
        if state == self._state:
            return
        self._state = state
        for listener in self._state_listeners:
            listener(self, state)

    def measured_fps(self) -> float:
        """Frames published per second over the last couple of seconds."""
        return self._published.rate()

    def status(self) -> dict:
        """Everything a status page or API shows about this camera, as JSON-able data."""
        started_at = self._started_at
        outage = self._outage
        now = time.monotonic()
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
            "viewers": self.broadcaster.subscriber_count + self.extra_viewers(),
            "frames_captured": self._frames_captured,
            "frames_encoded": self._frames_encoded,
            "frames_published": self._frames_published,
            "bad_frames": self._bad_frames,
            "last_error": self._last_error,
            "uptime": round(now - started_at, 3) if started_at is not None else 0.0,
            "offline_since": outage.since if outage else None,
            "reconnect_attempts": outage.attempts if outage else 0,
            "next_retry_in": (round(max(0.0, outage.retry_at - now), 3)
                              if outage and outage.retry_at is not None else None),
        }
