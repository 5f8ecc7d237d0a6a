"""A camera's ``remote:GROUP`` detector: its frames go to GROUP's workers through the broker.

It is a :class:`~camera.detect.runner.CameraDetection` whose work is a request instead of a worker process:
the newest frame (of the detect stream, when the camera has one) goes as the JPEG bytes it already is, with
a deadline; at most ``in_flight`` requests are out at once, and while they are, newer frames simply replace
each other, so a slow pool means fewer results a second, never old ones. A reply is taken in only if it is
for a frame newer than the last result's; a late, lost, refused or malformed one is counted and dropped.
Results then go wherever a local detector's go (events, overlays, pushes, MQTT).
"""

from __future__ import annotations

import concurrent.futures
import logging
import time
from collections import deque

from ..base import BaseCamera
from ..detect.errors import FrameError
from ..detect.runner import CameraDetection
from ..detect.spec import DetectorSpec
from ..frame import Frame
from ..pacing import RateLimit
from .link import BrokerDown, BrokerLink
from .protocol import BadReply, parse_reply, request_headers, subject

log = logging.getLogger("camstream.detect")

# A worker counts as seen for this long after its last reply.
SEEN_SECONDS = 60.0
# Workers remembered at most (by the last time they answered).
MAX_WORKERS = 1000


class RemoteDetection(CameraDetection):
    """Runs ``remote:GROUP`` for ``camera`` through ``link``: ``deadline`` seconds a reply may take."""

    def __init__(self, camera: BaseCamera, spec: DetectorSpec, link: BrokerLink, *, fps: float = 5.0,
                 deadline: float = 2.0, in_flight: int = 2, source: BaseCamera | None = None, **_: object) -> None:
        super().__init__(camera, spec, fps=fps, timeout=deadline, source=source)
        self.link = link
        self.group = spec.target
        self.in_flight = in_flight
        self._subject = subject(self.group)
        self._out: dict[int, Frame] = {}
        self._replies: deque[tuple[Frame, concurrent.futures.Future]] = deque()
        self._workers: dict[str, float] = {}
        self._sent = self._timeouts = self._late = self._refused = self._bad = 0

    def start(self) -> None:
        """Nothing to start here: the workers run elsewhere, and the link connects by itself."""

    def wait_ready(self) -> str | None:
        """Ready at once: workers may come and go, and the status says which answer."""
        log.info("camera %s: frames go to the workers of %r through the broker %s", self.camera.name, self.group,
                 self.link.shown)
        self._begin()
        return None

    # -- the detection thread ------------------------------------------

    def _run(self) -> None:
        subscription = self.source.broadcaster.watch(self._wake, fps=self.fps)
        rate = RateLimit(self.fps)
        try:
            while not self._stop.is_set():
                self._wake.wait()
                self._wake.clear()
                self._take_replies()
                if len(self._out) >= self.in_flight:
                    continue  # the newest frame waits in the subscription for a free place
                frame = self._next_frame(subscription.take(), rate)
                if frame is not None and not self._stop.is_set():
                    self._send(frame)
        finally:
            subscription.close()

    def _send(self, frame: Frame) -> None:
        headers = request_headers(self.camera.name, frame.seq, frame.timestamp, frame.width, frame.height,
                                  time.time() + self.timeout)
        self._out[frame.seq] = frame
        self._sent += 1
        future = self.link.request(self._subject, frame.jpeg, headers, self.timeout)
        future.add_done_callback(lambda done: self._replied(frame, done))

    def _replied(self, frame: Frame, future: concurrent.futures.Future) -> None:
        # On the broker's loop (or here, for a request that failed at once): handed to the detection thread.
        self._replies.append((frame, future))
        self._wake.set()

    def _take_replies(self) -> None:
        while self._replies:
            frame, future = self._replies.popleft()
            self._out.pop(frame.seq, None)
            try:
                data = future.result()
            except TimeoutError:
                self._timeouts += 1
                denied = self.link.denied  # the broker dropped the frame or the reply: that is why
                self._trouble(frame, f"no worker of {self.group!r} answered within {self.timeout:g} s"
                              + (f" (the broker: {denied})" if denied else ""))
                continue
            except LookupError:
                self._refused += 1
                self._trouble(frame, f"no worker of {self.group!r} is up (camstream worker --group {self.group})")
                continue
            except (BrokerDown, concurrent.futures.CancelledError) as exc:
                self._refused += 1
                self._trouble(frame, str(exc) or "the broker is down")
                continue
            except Exception as exc:  # noqa: BLE001 - e.g. a frame above the server's max_payload
                self._refused += 1
                self._trouble(frame, f"the broker refused the frame: {self.link.words(exc)}")
                continue
            self._take(frame, data)

    def _take(self, frame: Frame, data: bytes) -> None:
        try:
            reply = parse_reply(data, self.camera.name, frame.seq, frame.width, frame.height)
        except BadReply as exc:
            self._bad += 1
            self._trouble(frame, f"a worker of {self.group!r} sent {exc}")
            return
        except RuntimeError as exc:  # the worker's detector failed on this frame
            self._frame_failed(frame, FrameError(str(exc), ""))
            return
        self._seen(reply.worker)
        latest = self._latest
        if latest is not None and latest.frame.seq >= frame.seq:
            self._late += 1  # a newer frame's result came first: this one is old news
            return
        self._publish(frame, reply.detections, reply.inference_ms, int(reply.gated))

    def _seen(self, worker: str) -> None:
        """Note that ``worker`` answered; the longest unheard go first beyond :data:`MAX_WORKERS` (a worker
        names itself, and one that makes up a new name each time must not grow this without bound)."""
        self._workers.pop(worker, None)
        self._workers[worker] = time.monotonic()
        while len(self._workers) > MAX_WORKERS:
            del self._workers[next(iter(self._workers))]

    def _trouble(self, frame: Frame, reason: str) -> None:
        """A request that got no result: shown in the status (and said once in the log) until one comes."""
        said = self._last_error
        if self._failed_on(frame, reason) or said != reason:
            log.warning("camera %s: detector %s: %s", self.camera.name, self.spec.text, reason)

    # -- status --------------------------------------------------------

    def status(self) -> dict:
        now = time.monotonic()
        return {**super().status(), "remote": {
            "group": self.group,
            "broker": self.link.state,
            "workers_seen": sum(1 for seen in list(self._workers.values()) if now - seen <= SEEN_SECONDS),
            "in_flight": len(self._out),
            "sent": self._sent,
            "timeouts": self._timeouts,
            "late": self._late,
            "refused": self._refused,
            "bad_replies": self._bad,
        }}
