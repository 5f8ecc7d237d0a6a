"""Detection: what is in front of a camera, as labelled boxes.

A detector is any callable that takes a BGR image and returns
:class:`Detection` objects (or mappings with ``label``, ``score`` and
``box``). Built in: ``motion`` (:mod:`.motion`, no model) and ``yolo:PATH``
(:mod:`.yolo`, YOLOv8/YOLO11 ONNX exports on ``cv2.dnn``); ``MODULE:ATTR``
plugs in one's own. :class:`CameraDetection` runs one on a camera's newest
frames in a worker process (:mod:`.worker`) and keeps the newest
:class:`DetectionResult`, whose frame it can draw the boxes on
(:mod:`.overlay`), once per result or, for viewers of an
:class:`OverlayStream`, once per frame.
"""

from .detection import Detection, DetectionError, as_detection
from .errors import DetectorCrashed, DetectorError, DetectorLoadError, FrameError
from .overlay import draw_detections
from .overlay_stream import OverlayStream
from .result import DetectionResult
from .runner import FAILED, CameraDetection, DetectorState
from .spec import DetectorSpec, parse_spec

__all__ = [
    "FAILED",
    "CameraDetection",
    "Detection",
    "DetectionError",
    "DetectionResult",
    "DetectorCrashed",
    "DetectorError",
    "DetectorLoadError",
    "DetectorSpec",
    "DetectorState",
    "FrameError",
    "OverlayStream",
    "as_detection",
    "draw_detections",
    "parse_spec",
]
