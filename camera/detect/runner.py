"""A camera's detector at work: the newest frame, at up to the detection rate, in a worker process.

A camera may have a second, smaller stream for detection (``source``, most IP cameras' sub-stream): the
detector then watches that one, and its boxes are given in the main stream's pixels (with the detect stream's
size in the result), so overlays, events and clients never need to know.

:class:`CameraDetection` keeps its camera running from the moment the
detector is ready, watched or not (detecting is what it is for), and
watches it the way a viewer does (newest frame wins: frames that come while
the detector is busy are skipped, never queued) without counting as one.
Its thread only waits: the work happens in a
:class:`~camera.detect.worker.DetectorProcess`, which is restarted with
backoff when it dies or hangs.
"""

from __future__ import annotations

import logging
import statistics
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from enum import StrEnum
from typing import Any

from ..backoff import Backoff
from ..base import BaseCamera
from ..frame import Frame
from ..pacing import RateLimit
from .detection import Detection
from .errors import DetectorCrashed, DetectorError, DetectorLoadError, FrameError
from .result import DetectionResult
from .spec import GATED, MOTION, DetectorSpec
from .worker import DetectorProcess

log = logging.getLogger("camstream.detect")



class DetectorState(StrEnum):
    """Where a camera's detector is; its value is what the status says."""

    STARTING = "starting"  # its worker process is loading the model
    RUNNING = "running"
    ERROR = "error"  # the last frame failed; the next one is tried
    RESTARTING = "restarting"  # the worker died and is started again, with backoff
    FAILED = "failed"  # the detector cannot load (a missing model, a bad spec): no more restarts
    STOPPED = "stopped"


STARTING = DetectorState.STARTING
RUNNING = DetectorState.RUNNING
ERROR = DetectorState.ERROR
RESTARTING = DetectorState.RESTARTING
FAILED = DetectorState.FAILED
STOPPED = DetectorState.STOPPED

# Results kept for ?seq= look-ups (a few seconds at the default rate).
HISTORY = 32
# Rates in the status count the results of this many seconds.
RATE_WINDOW = 5.0


class CameraDetection:
    """Runs ``spec`` on ``camera``'s newest frames at up to ``fps``, and keeps the newest result.

    ``timeout``: a frame that takes longer restarts the worker;
    ``load_timeout``: how long loading the detector may take.
    """

    def __init__(self, camera: BaseCamera, spec: DetectorSpec, *, confidence: float = 0.5,
                 classes: Sequence[str] = (), fps: float = 5.0, timeout: float = 10.0,
                 load_timeout: float = 60.0, source: BaseCamera | None = None) -> None:
        self.camera = camera
        # The camera whose frames are detected on: the camera itself, or its detect stream.
        self.source = source or camera
        self.spec = spec
        self.fps = fps
        self.timeout = timeout
        self.load_timeout = load_timeout
        self._process = DetectorProcess(spec, confidence, classes, camera.name)
        self._cond = threading.Condition()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._wanted: Frame | None = None
        self._latest: DetectionResult | None = None
        self._history: deque[DetectionResult] = deque(maxlen=HISTORY)
        # The newest frame the detector failed on, and why.
        self._failure: tuple[int, str] | None = None
        self._state = STARTING
        self._last_error: str | None = None
        self._results = self._errors = self._restarts = 0
        self._gated = self._worker_gated = 0
        self._runs: deque[tuple[float, float]] = deque(maxlen=50)
        # How old each of the last results was when it came out (its frame's capture to its end), seconds.
        self._ages: deque[float] = deque(maxlen=100)
        self._let_go = False
        self._result_listeners: list[Callable[[DetectionResult], None]] = []
        # The camera's tracking (camera.track.Tracking, set by camera.track.track_camera): each result goes
        # through it before it is kept or handed to anyone, so every reader sees tracked boxes.
        self.tracking: Any = None
        self._mask_key: tuple | None = None
        self._mask: tuple = ()

    # -- lifecycle -----------------------------------------------------

    def start(self) -> None:
        """Start the worker process; it loads the detector meanwhile (see :meth:`wait_ready`)."""
        self._process.start()

    def wait_ready(self) -> str | None:
        """Wait for the detector to load and start detecting; None, or the reason it cannot
        (then call :meth:`fail` or :meth:`stop`)."""
        try:
            self._process.wait_ready(self.load_timeout)
        except DetectorError as exc:
            return str(exc)
        log.info("camera %s: detector %s is ready (%s)", self.camera.name, self.spec.text,
                 self._process.description)
        self._begin()
        return None

    def _begin(self) -> None:
        """Start detecting: the detection thread, and the cameras kept running for it."""
        self._state = RUNNING
        self._thread = threading.Thread(target=self._run, name=f"detect-{self.camera.name}", daemon=True)
        self._thread.start()
        for camera in self._held():
            camera.hold()

    def _held(self) -> list[BaseCamera]:
        """The cameras kept running while detecting: the one detected on, and the main stream too (its size is
        what boxes are given in; with nothing decoded there, keeping it open costs a copy of its packets)."""
        return [self.camera] if self.source is self.camera else [self.source, self.camera]

    def fail(self, reason: str) -> None:
        """Mark the detector as never working, with ``reason``."""
        with self._cond:
            self._state = FAILED
            self._last_error = reason
            self._cond.notify_all()
        log.error("camera %s: detector %s cannot run: %s", self.camera.name, self.spec.text, reason)

    def _stopped_once(self) -> bool:
        """Whether :meth:`stop` ran before (a camera is let go once)."""
        stopped, self._let_go = self._let_go, True
        return stopped

    def stop(self, timeout: float = 2.0) -> None:
        """Stop detecting, let the camera stop when unwatched, and end the worker process."""
        self._stop.set()
        self._wake.set()
        with self._cond:
            if self._state != FAILED:
                self._state = STOPPED
            self._cond.notify_all()
        thread = self._thread
        if thread is None:
            self._process.stop(0)
            return
        if not self._stopped_once():
            for camera in self._held():
                camera.unhold()
        thread.join(timeout)
        if thread.is_alive():
            # Stuck in a slow detection: killing the worker ends the wait.
            self._process.kill()
            thread.join(timeout)

    # -- results -------------------------------------------------------

    def add_result_listener(self, listener: Callable[[DetectionResult], None]) -> None:
        """Call ``listener(result)`` with every new result, on the detection thread; it must not block."""
        self._result_listeners.append(listener)

    @property
    def latest(self) -> DetectionResult | None:
        return self._latest

    def result(self, seq: int) -> DetectionResult | None:
        """The recent result for frame ``seq``, if it is still kept."""
        return next((result for result in list(self._history) if result.frame.seq == seq), None)

    def detect(self, frame: Frame, timeout: float) -> DetectionResult:
        """The result for ``frame``, or for a newer one, run ahead of the rate cap.

        Raises :class:`~camera.detect.errors.DetectorError` (with the reason)
        when the detector cannot run or failed on that frame, and
        :class:`TimeoutError` when no result came within ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        with self._cond:
            if self._state in (FAILED, STOPPED):
                raise DetectorLoadError(self._last_error or f"the detector is {self._state}")
            if self._wanted is None or self._wanted.seq < frame.seq:
                self._wanted = frame
            self._wake.set()
            while True:
                latest, failure = self._latest, self._failure
                if latest is not None and latest.frame.seq >= frame.seq:
                    return latest
                if failure is not None and failure[0] >= frame.seq:
                    raise FrameError(failure[1])
                if self._state in (FAILED, STOPPED):
                    raise DetectorLoadError(self._last_error or f"the detector is {self._state}")
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"the detector gave no result within {timeout:g} s")
                self._cond.wait(remaining)

    # -- the detection thread ------------------------------------------

    def _run(self) -> None:
        subscription = self.source.broadcaster.watch(self._wake, fps=self.fps)
        rate = RateLimit(self.fps)
        backoff = Backoff()
        try:
            while not self._stop.is_set():
                self._wake.wait()
                self._wake.clear()
                frame = self._next_frame(subscription.take(), rate)
                if frame is not None and not self._stop.is_set():
                    self._detect(frame, backoff)
        finally:
            subscription.close()
            self._process.stop()

    def _next_frame(self, newest: Frame | None, rate: RateLimit) -> Frame | None:
        """The frame to run on now: one asked for by :meth:`detect`, else the newest within the rate."""
        with self._cond:
            wanted, self._wanted = self._wanted, None
        if newest is not None and not newest.live:
            newest = None
        allowed = newest is not None and rate.allows(newest.timestamp)
        if wanted is not None:
            return newest if newest is not None and newest.seq > wanted.seq else wanted
        return newest if allowed else None

    def _detect(self, frame: Frame, backoff: Backoff) -> None:
        self._process.motion_mask = self._motion_mask(frame)
        try:
            detections, inference_ms, gated = self._process.detect(frame.jpeg, self.timeout)
        except FrameError as exc:
            self._frame_failed(frame, exc)
            return
        except DetectorCrashed as exc:
            self._crashed(frame, str(exc), backoff)
            return
        # The worker counts since it started; a restarted one starts again from 0.
        gated_now, self._worker_gated = max(0, gated - self._worker_gated), gated
        self._publish(frame, detections, inference_ms, gated_now)
        backoff.reset()

    def _motion_mask(self, frame: Frame) -> tuple:
        """The tracking rules' motion mask in fractions of the picture, for the worker's own motion (``motion``
        and a motion gate), so that motion there neither makes a box nor opens the gate; () for none.

        Polygons in pixels are the main stream's (a detect stream shows the same scene smaller)."""
        rules = getattr(self.tracking, "rules", None)
        if rules is None or not rules.motion_mask or self.spec.kind not in (MOTION, GATED):
            return ()
        width, height = self.camera.picture_size() or (frame.width, frame.height)
        key = (rules.motion_mask, width, height)
        if self._mask_key != key:
            self._mask_key = key
            self._mask = tuple(_fractions(polygon, width, height) for polygon in rules.motion_mask)
        return self._mask

    def _publish(self, frame: Frame, detections: list[Detection], inference_ms: float, gated: int = 0) -> None:
        """A new result for ``frame``: kept, counted and handed to every listener (``gated``: frames a motion
        gate kept from the detector since the last result)."""
        result = DetectionResult(self.camera.name, self.spec.text, frame, detections, inference_ms, time.time())
        if self.source is not self.camera:
            result = result.in_size(self.camera.picture_size())
        if self.tracking is not None:
            result = self.tracking.apply(result)
        with self._cond:
            recovered = self._state == ERROR
            self._ages.append(result.finished - frame.timestamp)
            self._latest = result
            self._history.append(result)
            self._results += 1
            self._gated += gated
            self._runs.append((time.monotonic(), inference_ms))
            self._state = RUNNING
            self._cond.notify_all()
        for listener in self._result_listeners:
            listener(result)
        if recovered:
            log.info("camera %s: detector %s works again", self.camera.name, self.spec.text)

    def _frame_failed(self, frame: Frame, error: FrameError) -> None:
        reason = str(error)
        if self._failed_on(frame, reason):
            log.error("camera %s: detector %s failed on a frame: %s\n%s", self.camera.name, self.spec.text,
                      reason, error.details.rstrip())
        else:
            log.debug("camera %s: detector %s failed on a frame again: %s", self.camera.name, self.spec.text,
                      reason)

    def _failed_on(self, frame: Frame, reason: str) -> bool:
        """``frame`` got no result, for ``reason``: the state says so until one comes. True if it did not
        say so already (the first failure after results)."""
        with self._cond:
            first = self._state != ERROR
            self._state = ERROR
            self._errors += 1
            self._last_error = reason
            self._failure = (frame.seq, reason)
            self._cond.notify_all()
        return first

    def _crashed(self, frame: Frame, reason: str, backoff: Backoff) -> None:
        """The worker died or hung: restart it with backoff; frames meanwhile are skipped."""
        with self._cond:
            self._state = RESTARTING
            self._restarts += 1
            self._last_error = reason
            self._failure = (frame.seq, reason)
            self._cond.notify_all()
        log.warning("camera %s: %s; restarting detector %s", self.camera.name, reason, self.spec.text)
        while not self._stop.wait(backoff.next_delay()):
            self._process.start()
            try:
                self._process.wait_ready(self.load_timeout)
            except DetectorError as exc:
                with self._cond:
                    self._last_error = f"restart failed: {exc}"
                log.warning("camera %s: detector %s did not restart: %s", self.camera.name, self.spec.text, exc)
                continue
            with self._cond:
                self._worker_gated = 0
                if self._state == RESTARTING:
                    self._state = RUNNING
            log.info("camera %s: detector %s restarted", self.camera.name, self.spec.text)
            return

    # -- status --------------------------------------------------------

    @property
    def state(self) -> str:
        return self._state

    def status(self) -> dict:
        """The ``detection`` block of the camera's status."""
        now = time.monotonic()
        runs = list(self._runs)
        recent = sum(1 for finished, _ in runs if now - finished <= RATE_WINDOW)
        # Over the window, or since the oldest run kept when that is more recent (it opens the span).
        span = RATE_WINDOW
        if runs and now - runs[0][0] < RATE_WINDOW:
            recent, span = recent - 1, max(1.0, now - runs[0][0])
        return {
            "detector": self.spec.text,
            "state": self._state,
            "fps": self.fps,
            "results_per_second": round(recent / span, 2),
            "inference_ms": round(statistics.median(ms for _, ms in runs), 2) if runs else None,
            "results": self._results,
            "errors": self._errors,
            "restarts": self._restarts,
            "gated": self._gated,
            "last_error": self._last_error,
            **self._age_status(),
            "stream": "main" if self.source is self.camera else self._source_status(),
        }

    def _age_status(self) -> dict:
        """The median and 99th percentile age of the last results, in ms (None before the first)."""
        ages = sorted(self._ages)
        if not ages:
            return {"result_age_ms": None, "result_age_p99_ms": None}
        return {"result_age_ms": round(statistics.median(ages) * 1000, 1),
                "result_age_p99_ms": round(ages[min(len(ages) - 1, int(len(ages) * 0.99))] * 1000, 1)}

    def _source_status(self) -> dict:
        """The detect stream's own state: it fails, and comes back, apart from the camera's main stream."""
        status = self.source.status()
        return {"source": status["source"], "state": status["state"], "width": status["width"],
                "height": status["height"], "measured_fps": status["measured_fps"],
                "last_error": status["last_error"], "offline_since": status["offline_since"]}


def _fractions(polygon: Sequence[Sequence[float]], width: int, height: int) -> tuple[tuple[float, float], ...]:
    """``polygon`` in fractions of a ``width`` x ``height`` picture: as it is when every number is 0-1 already
    (the config file's fractions), else its pixels divided by the size."""
    if all(0.0 <= x <= 1.0 and 0.0 <= y <= 1.0 for x, y in polygon):
        return tuple((float(x), float(y)) for x, y in polygon)
    return tuple((x / max(1, width), y / max(1, height)) for x, y in polygon)
