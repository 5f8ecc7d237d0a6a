"""YOLOv8 / YOLO11 **pose** models: 17 keypoints a person, in each detection's ``extra``, and the skeleton drawn.

An Ultralytics pose export (``yolo export model=yolov8n-pose.pt format=onnx``) is a detection model whose
output has, after each candidate's box and class scores, its keypoints: ``(1, 4 + C + K * D, N)`` with
``kpt_shape`` ``[K, D]`` in its metadata (``[17, 3]``: COCO's keypoints, each x, y in input pixels and a
visibility score). :class:`PoseDetector` is :class:`~.yolo.YoloDetector` for those: the boxes as it decodes
them, and each kept box's keypoints mapped to the frame, as ``extra["keypoints"]``: ``[[x, y, score], ...]``
in frame pixels (a score of 1 when the model gives only x, y). :func:`make_yolo` picks the one a model is.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Sequence

import cv2
import numpy as np

from .detection import Detection, clip_box
from .errors import DetectorLoadError
from .onnxfile import OnnxFormatError, read_onnx_info
from .yolo import MAX_DETECTIONS, YoloDetector, letterbox

KEYPOINT_NAMES = ("nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder",
                  "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip", "left_knee",
                  "right_knee", "left_ankle", "right_ankle")
# COCO's skeleton: which keypoints (indices above) a line joins.
SKELETON = ((15, 13), (13, 11), (16, 14), (14, 12), (11, 12), (5, 11), (6, 12), (5, 6), (5, 7), (6, 8), (7, 9),
            (8, 10), (1, 2), (0, 1), (0, 2), (1, 3), (2, 4), (3, 5), (4, 6))
# Keypoints scored below this are not drawn (they are still given).
VISIBLE = 0.5


def keypoint_shape(metadata: dict[str, str]) -> tuple[int, int] | None:
    """``(K, D)`` from a model's ``kpt_shape`` metadata (``"[17, 3]"``), or None for a model without keypoints."""
    try:
        shape = ast.literal_eval(metadata.get("kpt_shape", "None"))
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return None
    if isinstance(shape, list | tuple) and len(shape) == 2 and all(isinstance(n, int) for n in shape) \
            and shape[0] > 0 and shape[1] in (2, 3):
        return shape[0], shape[1]
    return None


def decode_pose(output: np.ndarray, *, scale: float, pad: tuple[int, int], frame_size: tuple[int, int],
                names: Sequence[str], confidence: float, nms: float, keypoints: tuple[int, int],
                allowed: np.ndarray | None = None) -> list[Detection]:
    """Turn a ``(1, 4 + C + K * D, N)`` output into detections with their keypoints, in the frame's pixels."""
    count, dims = keypoints
    candidates = output[0].T
    classes = candidates.shape[1] - 4 - count * dims
    class_scores = candidates[:, 4:4 + classes]
    class_ids = class_scores.argmax(axis=1)
    scores = class_scores[np.arange(len(class_ids)), class_ids]
    keep = scores >= confidence
    if allowed is not None:
        keep &= np.isin(class_ids, allowed)
    chosen = candidates[keep].astype(np.float64)
    scores, class_ids = scores[keep], class_ids[keep]
    if not len(scores):
        return []
    left, top = pad
    xywh = np.empty((len(chosen), 4))
    xywh[:, 0] = (chosen[:, 0] - chosen[:, 2] / 2 - left) / scale
    xywh[:, 1] = (chosen[:, 1] - chosen[:, 3] / 2 - top) / scale
    xywh[:, 2:] = chosen[:, 2:4] / scale
    points = chosen[:, 4 + classes:].reshape(len(chosen), count, dims)
    points[:, :, 0] = (points[:, :, 0] - left) / scale
    points[:, :, 1] = (points[:, :, 1] - top) / scale
    kept = cv2.dnn.NMSBoxesBatched(xywh, scores.astype(np.float32), class_ids.astype(np.int32), confidence, nms)
    order = sorted(np.asarray(kept, dtype=int).reshape(-1), key=lambda i: -scores[i])[:MAX_DETECTIONS]
    width, height = frame_size
    found = []
    for i in order:
        found.append(Detection(names[class_ids[i]], float(scores[i]), clip_box(xywh[i], width, height),
                               {"keypoints": [_point(point, width, height) for point in points[i]]}))
    return found


def _point(point: np.ndarray, width: int, height: int) -> list[float]:
    x = min(max(0.0, float(point[0])), float(width))
    y = min(max(0.0, float(point[1])), float(height))
    score = float(point[2]) if len(point) > 2 else 1.0
    return [round(x, 1), round(y, 1), round(min(max(0.0, score), 1.0), 3)]


class PoseDetector(YoloDetector):
    """A YOLOv8 / YOLO11 pose model: :class:`YoloDetector`'s boxes, with each one's keypoints."""

    def __init__(self, path: str, *, confidence: float = 0.5, classes: Sequence[str] = (),
                 labels: str | None = None, nms: float = 0.5) -> None:
        super().__init__(path, confidence=confidence, nms=nms)
        shape = keypoint_shape(self.metadata)
        if shape is None:
            raise DetectorLoadError(f"{path} is not a YOLO pose model: it has no kpt_shape in its metadata")
        self.keypoints = shape
        output = self._forward(np.zeros((self.size[1], self.size[0], 3), np.uint8))
        count = output.shape[1] - 4 - shape[0] * shape[1]
        if count < 1:
            raise DetectorLoadError(f"{path} is not a YOLO pose model: its output {tuple(output.shape)} has no room "
                                    f"for a box, a class and {shape[0]}x{shape[1]} keypoints")
        self.names = self._names(labels, count)
        self.allowed = self._allowed(classes)

    def __call__(self, image: np.ndarray) -> list[Detection]:
        padded, scale, pad = letterbox(image, self.size)
        return decode_pose(self._forward(padded), scale=scale, pad=pad, frame_size=(image.shape[1], image.shape[0]),
                           names=self.names, confidence=self.confidence, nms=self.nms, keypoints=self.keypoints,
                           allowed=self.allowed)


def make_yolo(path: str, **options: object) -> YoloDetector:
    """The detector for the YOLO model at ``path``: a :class:`PoseDetector` when its metadata has keypoints
    (a file that cannot be read is left to :class:`YoloDetector`, which says what is wrong with it)."""
    try:
        metadata = read_onnx_info(path).metadata
    except (OSError, OnnxFormatError):
        metadata = {}
    kind = PoseDetector if keypoint_shape(metadata) is not None else YoloDetector
    return kind(path, **options)  # type: ignore[arg-type]


def draw_skeletons(canvas: np.ndarray, detections: Iterable[Detection]) -> np.ndarray:
    """Draw on ``canvas`` (in place) the skeleton of every detection with keypoints; returns it."""
    thickness = max(1, round(canvas.shape[0] / 240))
    for detection in detections:
        points = detection.extra.get("keypoints") if detection.extra else None
        if not points or len(points) != len(KEYPOINT_NAMES):
            continue
        seen = [(round(x), round(y)) if score >= VISIBLE else None for x, y, score in points]
        for a, b in SKELETON:
            if seen[a] is not None and seen[b] is not None:
                cv2.line(canvas, seen[a], seen[b], (255, 255, 255), thickness, cv2.LINE_AA)
        for point in seen:
            if point is not None:
                cv2.circle(canvas, point, thickness + 2, (0, 200, 255), -1, cv2.LINE_AA)
    return canvas
