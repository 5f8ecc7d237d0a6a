"""Building a detector from its spec, where it runs (inside its worker process)."""

from __future__ import annotations

import importlib
import itertools
import json
import math
import time
from collections.abc import Callable, Iterable, Sequence

import numpy as np

from .. import jpeg
from .detection import Detection, DetectionError, as_detection
from .errors import DetectorLoadError
from .motion import MotionDetector
from .pose import make_yolo
from .spec import GATED, MOTION, YOLO, DetectorSpec

# More than this from one frame is a detector gone wrong, not a busy scene.
MAX_DETECTIONS = 1000
# A motion gate keeps its detector running this long after the last motion.
GATE_HOLDOVER = 2.0
GATE_WIDTH = 160


class MotionGate:
    """Runs ``inner`` only on frames with motion, and for ``holdover`` seconds after the last.

    A still scene then costs one motion check a frame. ``gated`` counts the
    frames it kept from ``inner``; they report nothing.
    """

    def __init__(self, inner: Callable[[np.ndarray], Iterable[object]], holdover: float = GATE_HOLDOVER) -> None:
        self.inner = inner
        self.holdover = holdover
        # Deciding whether anything moves needs less detail than showing where.
        self.motion = MotionDetector(width=GATE_WIDTH)
        self.gated = 0
        self._until = -math.inf

    def opens(self, image: np.ndarray) -> bool:
        """Whether ``inner`` should run on this frame (``image`` may be a smaller copy of it)."""
        now = time.monotonic()
        if self.motion(image):
            self._until = now + self.holdover
        if now > self._until:
            self.gated += 1
            return False
        return True

    def __call__(self, image: np.ndarray) -> Iterable[object]:
        return self.inner(image) if self.opens(image) else []


class Detector:
    """A built detector: the image goes in, checked :class:`Detection` objects come out.

    Whatever the inner callable returns is checked here, boxes are clipped
    to the frame, and the confidence and class filters are applied to
    detectors that do not apply them themselves.
    """

    def __init__(self, detect: Callable[[np.ndarray], Iterable[object]], description: str,
                 confidence: float = 0.0, classes: Sequence[str] = ()) -> None:
        self.detect = detect
        self.description = description
        self.confidence = confidence
        self.classes = frozenset(classes)

    @property
    def gated(self) -> int:
        """Frames a motion gate kept from the detector (0 without one)."""
        return getattr(self.detect, "gated", 0)

    def __call__(self, image: np.ndarray) -> list[Detection]:
        return self._checked(self.detect(image), image)

    def set_motion_mask(self, polygons: Sequence[Sequence[Sequence[float]]]) -> None:
        """Where no motion counts (polygons in fractions of the picture): for ``motion``, and for a motion
        gate, which then does not open for it. Other detectors see no motion of their own: nothing to do."""
        motion = self.detect.motion if isinstance(self.detect, MotionGate) else self.detect
        if isinstance(motion, MotionDetector):
            motion.set_mask(polygons)

    def run_jpeg(self, data: bytes) -> list[Detection]:
        """Detections in JPEG ``data``; a motion gate looks at a quarter-size decode, and a closed gate
        costs no full one."""
        gate = self.detect if isinstance(self.detect, MotionGate) else None
        if gate is None:
            return self(jpeg.decode(data))
        if not gate.opens(jpeg.decode_quarter(data)):
            return []
        image = jpeg.decode(data)
        return self._checked(gate.inner(image), image)

    def _checked(self, raw: Iterable[object] | None, image: np.ndarray) -> list[Detection]:
        height, width = image.shape[:2]
        if raw is None:
            return []
        items = list(itertools.islice(raw, MAX_DETECTIONS + 1))
        if len(items) > MAX_DETECTIONS:
            raise DetectionError(f"the detector returned more than {MAX_DETECTIONS} detections for one frame")
        detections = [as_detection(item, width, height) for item in items]
        detections = [d for d in detections
                      if d.score >= self.confidence and (not self.classes or d.label in self.classes)]
        try:
            json.dumps([d.as_json() for d in detections], allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise DetectionError(f"a detection's extra data is not JSON: {exc}") from None
        return detections


def build_detector(spec: DetectorSpec, confidence: float = 0.5, classes: Sequence[str] = ()) -> Detector:
    """The detector ``spec`` describes; :class:`DetectorLoadError` when it cannot be made.

    ``motion`` ignores ``confidence`` and ``classes``: it has its own
    sensitivity and one label.
    """
    if spec.kind == GATED:
        assert spec.inner is not None
        inner = build_detector(spec.inner, confidence, classes)
        return Detector(MotionGate(inner), f"{inner.description}, where motion is seen")
    if spec.kind == MOTION:
        motion = MotionDetector(sensitivity=float(spec.option("sensitivity", 0.5)),  # type: ignore[arg-type]
                                min_area=float(spec.option("min_area", 0.1)))  # type: ignore[arg-type]
        return Detector(motion, "motion")
    if spec.kind == YOLO:
        labels = spec.option("labels")
        yolo = make_yolo(spec.target, confidence=confidence, classes=classes,
                         labels=None if labels is None else str(labels),
                         nms=float(spec.option("nms", 0.5)))  # a pose model is a PoseDetector
        return Detector(yolo, f"{spec.target}: {len(yolo.names)} classes, input {yolo.size[0]}x{yolo.size[1]}")
    return Detector(load_plugin(spec.target), spec.target, confidence, classes)


def load_plugin(target: str) -> Callable[[np.ndarray], Iterable[object]]:
    """``MODULE:ATTR``: a callable taking a BGR image, or a class whose instances are such callables."""
    module_name, _, attr = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # noqa: BLE001 - a user's module may fail in any way while importing
        raise DetectorLoadError(f"cannot import {module_name}: {type(exc).__name__}: {exc}") from None
    try:
        detector = getattr(module, attr)
    except AttributeError:
        raise DetectorLoadError(f"module {module_name} has no {attr}") from None
    if isinstance(detector, type):
        try:
            detector = detector()
        except Exception as exc:  # noqa: BLE001
            raise DetectorLoadError(f"{target}() failed: {type(exc).__name__}: {exc}") from None
    if not callable(detector):
        raise DetectorLoadError(f"{target} is not callable: it must take a BGR image and return detections")
    return detector
