"""The ``yolo:PATH`` detector: YOLOv8 / YOLO11 ONNX exports run with OpenCV's ``cv2.dnn``.

Ultralytics exports a detection model (``yolo export model=yolov8n.pt
format=onnx``) with one input, ``(1, 3, H, W)`` RGB scaled to 0-1, and one
output ``(1, 4 + C, N)``: for each of N candidates a box (centre x, centre
y, width, height, in input pixels) and C class scores. Frames are
letterboxed to the input size as the model was trained (aspect kept,
padded with grey 114), the candidates are decoded with numpy, and boxes go
through non-maximum suppression per class before they are mapped back to
the frame.
"""

from __future__ import annotations

import ast
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from .coco import COCO_NAMES
from .detection import Detection, clip_box
from .errors import DetectorLoadError
from .onnxfile import OnnxFormatError, read_onnx_info

DEFAULT_SIZE = 640
PAD_VALUE = 114
# As many as Ultralytics keeps per image.
MAX_DETECTIONS = 300


def letterbox(image: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, float, tuple[int, int]]:
    """``image`` scaled to fit ``size`` (width, height) with its aspect kept, centred on grey.

    Returns the padded image, the scale applied and the (left, top) padding,
    which is what maps a box in it back to ``image``.
    """
    height, width = image.shape[:2]
    target_w, target_h = size
    scale = min(target_w / width, target_h / height)
    new_w, new_h = max(1, round(width * scale)), max(1, round(height * scale))
    if (new_w, new_h) != (width, height):
        image = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    left, top = (target_w - new_w) // 2, (target_h - new_h) // 2
    canvas = np.full((target_h, target_w, 3), PAD_VALUE, np.uint8)
    canvas[top:top + new_h, left:left + new_w] = image
    return canvas, scale, (left, top)


def decode(output: np.ndarray, *, scale: float, pad: tuple[int, int], frame_size: tuple[int, int],
           names: Sequence[str], confidence: float, nms: float, allowed: np.ndarray | None = None
           ) -> list[Detection]:
    """Turn a ``(1, 4 + C, N)`` output into detections in the frame's pixels, best first.

    ``allowed`` holds the class indices to keep (all when None).
    """
    candidates = output[0].T
    class_scores = candidates[:, 4:]
    class_ids = class_scores.argmax(axis=1)
    scores = class_scores[np.arange(len(class_ids)), class_ids]
    keep = scores >= confidence
    if allowed is not None:
        keep &= np.isin(class_ids, allowed)
    boxes, scores, class_ids = candidates[keep, :4].astype(np.float64), scores[keep], class_ids[keep]
    if not len(scores):
        return []
    left, top = pad
    xywh = np.empty_like(boxes)
    xywh[:, 0] = (boxes[:, 0] - boxes[:, 2] / 2 - left) / scale
    xywh[:, 1] = (boxes[:, 1] - boxes[:, 3] / 2 - top) / scale
    xywh[:, 2:] = boxes[:, 2:] / scale
    kept = cv2.dnn.NMSBoxesBatched(xywh, scores.astype(np.float32), class_ids.astype(np.int32), confidence, nms)
    order = sorted(np.asarray(kept, dtype=int).reshape(-1), key=lambda i: -scores[i])[:MAX_DETECTIONS]
    width, height = frame_size
    return [Detection(names[class_ids[i]], float(scores[i]), clip_box(xywh[i], width, height)) for i in order]


class YoloDetector:
    """A YOLOv8 / YOLO11 detection model from an ONNX file.

    ``labels`` is a file with one class name per line; without it the names
    come from the model's own metadata (Ultralytics writes them there), or
    are COCO's 80 for an 80-class model. ``classes`` keeps only those
    names. Every problem with the file is a :class:`DetectorLoadError`
    saying what it is, raised here rather than on the first frame.
    """

    def __init__(self, path: str, *, confidence: float = 0.5, classes: Sequence[str] = (),
                 labels: str | None = None, nms: float = 0.5) -> None:
        self.path = path
        self.confidence = confidence
        self.nms = nms
        self.size = self._input_size(path)
        try:
            self.net = cv2.dnn.readNetFromONNX(path)
        except cv2.error as exc:
            raise DetectorLoadError(f"OpenCV cannot load {path}: {_first_line(exc)}") from None
        output = self._forward(np.zeros((self.size[1], self.size[0], 3), np.uint8))
        if output.ndim != 3 or output.shape[0] != 1 or output.shape[1] < 5:
            raise DetectorLoadError(f"{path} is not a YOLO detection model: its output is "
                                    f"{tuple(output.shape)}, not (1, 4 + classes, candidates)")
        self.names = self._names(labels, output.shape[1] - 4)
        self.allowed = self._allowed(classes)

    def __call__(self, image: np.ndarray) -> list[Detection]:
        padded, scale, pad = letterbox(image, self.size)
        return decode(self._forward(padded), scale=scale, pad=pad, frame_size=(image.shape[1], image.shape[0]),
                      names=self.names, confidence=self.confidence, nms=self.nms, allowed=self.allowed)

    def _forward(self, padded: np.ndarray) -> np.ndarray:
        self.net.setInput(cv2.dnn.blobFromImage(padded, 1 / 255.0, swapRB=True))
        try:
            return self.net.forward()
        except cv2.error as exc:
            raise DetectorLoadError(f"{self.path} failed to run: {_first_line(exc)}") from None

    def _input_size(self, path: str) -> tuple[int, int]:
        """(width, height) from the model's input shape, its ``imgsz`` metadata, or 640 square."""
        if not Path(path).is_file():
            raise DetectorLoadError(f"no model file {path}")
        try:
            info = read_onnx_info(path)
        except OSError as exc:
            raise DetectorLoadError(f"cannot read {path}: {exc.strerror or exc}") from None
        except OnnxFormatError as exc:
            raise DetectorLoadError(f"{path} is not an ONNX model: {exc}") from None
        self.metadata = info.metadata
        images = [shape for _, shape in info.inputs if len(shape) == 4]
        if len(info.inputs) != 1 or not images or images[0][1] not in (3, None):
            shapes = ", ".join(f"{name} {shape}" for name, shape in info.inputs) or "none"
            raise DetectorLoadError(f"{path} is not a YOLO detection model: it needs one (1, 3, H, W) "
                                    f"image input, not {shapes}")
        _, _, height, width = images[0]
        if height and width:
            return width, height
        try:
            imgsz = ast.literal_eval(info.metadata.get("imgsz", "None"))
            height, width = (imgsz, imgsz) if isinstance(imgsz, int) else imgsz
            return int(width), int(height)
        except (ValueError, TypeError, SyntaxError):
            return DEFAULT_SIZE, DEFAULT_SIZE

    def _names(self, labels: str | None, count: int) -> list[str]:
        if labels is not None:
            try:
                lines = Path(labels).read_text(encoding="utf-8").splitlines()
            except (OSError, UnicodeDecodeError) as exc:
                raise DetectorLoadError(f"cannot read the labels file {labels}: {exc}") from None
            names = [line.strip() for line in lines if line.strip()]
            if len(names) != count:
                raise DetectorLoadError(f"the labels file {labels} has {len(names)} names; "
                                        f"the model has {count} classes")
            return names
        metadata = self._metadata_names()
        if metadata is not None and len(metadata) == count:
            return metadata
        if count == len(COCO_NAMES):
            return list(COCO_NAMES)
        return [f"class{index}" for index in range(count)]

    def _metadata_names(self) -> list[str] | None:
        """Ultralytics stores ``names`` as the text of a dict: ``{0: 'person', 1: 'bicycle', ...}``."""
        try:
            names = ast.literal_eval(self.metadata.get("names", "None"))
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            return None
        if isinstance(names, dict) and sorted(names) == list(range(len(names))):
            return [str(names[index]) for index in range(len(names))]
        return None

    def _allowed(self, classes: Sequence[str]) -> np.ndarray | None:
        if not classes:
            return None
        unknown = [name for name in classes if name not in self.names]
        if unknown:
            raise DetectorLoadError(f"the model {self.path} has no class {', '.join(map(repr, unknown))}")
        return np.array([index for index, name in enumerate(self.names) if name in classes])


def _first_line(exc: Exception) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[-1] if lines else type(exc).__name__
