"""One detector run: the frame it looked at, what it found, and that frame with the boxes drawn."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from .. import jpeg
from ..frame import Frame
from .detection import Detection
from .overlay import draw_detections


@dataclass
class DetectionResult:
    """The answer of ``camera``'s detector for ``frame``.

    ``finished`` is when the result was ready (seconds since the epoch), so
    ``finished - frame.timestamp`` is how old it was when it came out.
    """

    camera: str
    detector: str
    frame: Frame
    detections: list[Detection]
    inference_ms: float
    finished: float
    _overlay: bytes | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def as_json(self) -> dict[str, Any]:
        return {
            "camera": self.camera,
            "detector": self.detector,
            "seq": self.frame.seq,
            "timestamp": round(self.frame.timestamp, 6),
            "finished": round(self.finished, 6),
            "width": self.frame.width,
            "height": self.frame.height,
            "inference_ms": round(self.inference_ms, 2),
            "detections": [detection.as_json() for detection in self.detections],
        }

    def overlay_jpeg(self, quality: int) -> bytes:
        """The frame with its detections drawn, as JPEG; made once, on first request."""
        with self._lock:
            if self._overlay is None:
                image = draw_detections(jpeg.decode(self.frame.jpeg), self.detections)
                self._overlay = jpeg.encode(image, quality)
            return self._overlay
