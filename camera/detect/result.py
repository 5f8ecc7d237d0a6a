"""One detector run: the frame it looked at, what it found, and that frame with the boxes drawn."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field, replace
from typing import Any

from .. import jpeg
from ..frame import Frame
from .detection import Detection, scale_boxes
from .overlay import draw_detections
from .pose import draw_skeletons


@dataclass
class DetectionResult:
    """The answer of ``camera``'s detector for ``frame``.

    ``finished`` is when the result was ready (seconds since the epoch), so
    ``finished - frame.timestamp`` is how old it was when it came out.
    ``size`` is the picture size the boxes are in when that is not ``frame``'s: the camera's main stream,
    when ``frame`` came from its detect stream.
    """

    camera: str
    detector: str
    frame: Frame
    detections: list[Detection]
    inference_ms: float
    finished: float
    size: tuple[int, int] | None = None
    # Set by the camera's tracking (camera/track/): the tracks that ended with this result, and whether its
    # detections are objects with tracks (False for a motion-only detector, whose events are per busy spell).
    ended: tuple[Any, ...] = ()
    tracked: bool = False
    _overlay: bytes | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def as_json(self) -> dict[str, Any]:
        return {
            "camera": self.camera,
            "detector": self.detector,
            "seq": self.frame.seq,
            "timestamp": round(self.frame.timestamp, 6),
            "finished": round(self.finished, 6),
            "width": self.width,
            "height": self.height,
            "inference_ms": round(self.inference_ms, 2),
            "detections": [detection.as_json() for detection in self.detections],
            **({"detect_width": self.frame.width, "detect_height": self.frame.height} if self.size else {}),
        }

    @property
    def width(self) -> int:
        """The width of the picture the boxes are in."""
        return self.size[0] if self.size else self.frame.width

    @property
    def height(self) -> int:
        return self.size[1] if self.size else self.frame.height

    def in_size(self, size: tuple[int, int] | None) -> DetectionResult:
        """This result with its boxes in a picture of ``size`` (width, height) instead of its frame's; itself
        when ``size`` is unknown (the boxes stay in the frame's pixels, as its width and height then say)."""
        if size is None or size == (self.frame.width, self.frame.height):
            return self
        return replace(self, detections=self.boxes_for(*size), size=size, _overlay=None, _lock=threading.Lock())

    def boxes_for(self, width: int, height: int) -> list[Detection]:
        """The detections with their boxes in a picture of ``width`` x ``height`` showing the same scene."""
        if (width, height) == (self.width, self.height):
            return self.detections
        return scale_boxes(self.detections, width / self.width, height / self.height)

    def overlay_jpeg(self, quality: int) -> bytes:
        """The frame with its detections drawn, as JPEG; made once, on first request."""
        with self._lock:
            if self._overlay is None:
                boxes = self.boxes_for(self.frame.width, self.frame.height)
                image = draw_skeletons(draw_detections(jpeg.decode(self.frame.jpeg), boxes), boxes)
                self._overlay = jpeg.encode(image, quality)
            return self._overlay
