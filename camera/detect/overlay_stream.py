"""A camera's frames with its newest boxes drawn on them, for any number of viewers.

An :class:`OverlayStream` looks like a camera to the stream code (a name,
a broadcaster, ``subscribe`` and ``attach``), so ``?overlay=1`` streams are
served exactly like plain ones. While anyone watches it, one thread keeps
the camera running, takes each new frame, draws the detections of the
newest result (if it is no more than :data:`MAX_RESULT_AGE` seconds from the
frame) and encodes it once for all of them. A frame with no boxes to draw is
passed on as it is, without decoding.
"""

from __future__ import annotations

import threading
import time

from .. import jpeg
from ..base import BaseCamera
from ..broadcast import Broadcaster, Subscriber, Subscription
from ..frame import Frame
from .overlay import draw_detections
from .pose import draw_skeletons
from .runner import CameraDetection

# Boxes older (or newer) than this, against the frame they would be drawn on, are not drawn.
MAX_RESULT_AGE = 1.5
# The drawing thread ends this long after its last viewer left.
LINGER = 2.0


class OverlayStream:
    """``camera``'s frames with ``detection``'s newest boxes drawn, while anyone watches."""

    usable = True

    def __init__(self, camera: BaseCamera, detection: CameraDetection) -> None:
        self.camera = camera
        self.detection = detection
        self.name = camera.name
        self.broadcaster = Broadcaster()
        self.frames_drawn = 0
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stopped = False

    @property
    def viewers(self) -> int:
        return self.broadcaster.subscriber_count

    def subscribe(self, event: threading.Event | None = None) -> Subscription:
        """A viewer that waits in its own thread (see :meth:`camera.BaseCamera.subscribe`)."""
        subscription = self.broadcaster.subscribe(event)
        self._start()
        return subscription

    def attach(self, subscriber: Subscriber) -> None:
        """A socket viewer (see :meth:`camera.BaseCamera.attach`)."""
        if self.broadcaster.add(subscriber):
            self._start()

    def stop(self) -> None:
        """End every overlay viewer's stream and the drawing thread."""
        with self._lock:
            self._stopped = True
        self.broadcaster.close_all()

    def _start(self) -> None:
        with self._lock:
            if self._stopped or (self._thread is not None and self._thread.is_alive()):
                return
            self._thread = threading.Thread(target=self._run, name=f"overlay-{self.name}", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        wake = threading.Event()
        source = self.camera.broadcaster.watch(wake)
        self.camera.hold()
        unwatched_since: float | None = None
        try:
            while not self._stopped:
                wake.wait(0.5)
                wake.clear()
                if self.broadcaster.subscriber_count:
                    unwatched_since = None
                else:
                    unwatched_since = unwatched_since or time.monotonic()
                    if time.monotonic() - unwatched_since > LINGER:
                        return
                frame = source.take()
                if frame is not None:
                    self.broadcaster.publish(self._drawn(frame))
        finally:
            source.close()
            self.camera.unhold()
            with self._lock:
                if self._thread is threading.current_thread():
                    self._thread = None
            # A viewer that came while this thread was ending needs a new one.
            if self.broadcaster.subscriber_count and not self._stopped:
                self._start()

    def _drawn(self, frame: Frame) -> Frame:
        result = self.detection.latest
        if (not frame.live or result is None or not result.detections
                or abs(frame.timestamp - result.frame.timestamp) > MAX_RESULT_AGE):
            return frame
        boxes = result.boxes_for(frame.width, frame.height)
        image = draw_skeletons(draw_detections(jpeg.decode(frame.jpeg), boxes), boxes)
        self.frames_drawn += 1
        return Frame(frame.seq, jpeg.encode(image, self.camera.quality), frame.timestamp, frame.width, frame.height)
