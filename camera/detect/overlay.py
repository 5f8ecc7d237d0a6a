"""Drawing detections on a picture: a box and a "label score" tag for each."""

from __future__ import annotations

import zlib
from collections.abc import Iterable

import cv2
import numpy as np

from .detection import Detection

# Distinct colours (BGR) that read on light and dark scenes; a label keeps its colour.
PALETTE = ((56, 56, 255), (151, 157, 255), (31, 112, 255), (29, 178, 255), (49, 210, 207), (10, 249, 72),
           (23, 204, 146), (134, 219, 61), (52, 147, 26), (187, 212, 0), (168, 153, 44), (255, 194, 0),
           (147, 69, 52), (255, 115, 100), (236, 24, 0), (255, 56, 132), (133, 0, 82), (255, 56, 203))


def colour_of(label: str) -> tuple[int, int, int]:
    return PALETTE[zlib.crc32(label.encode()) % len(PALETTE)]


def draw_detections(image: np.ndarray, detections: Iterable[Detection]) -> np.ndarray:
    """A copy of ``image`` with every detection drawn on it."""
    canvas = image.copy()
    height = canvas.shape[0]
    # Tags sized for the picture shown small (an event card, a phone): about a twentieth of its height.
    scale = max(0.5, height / 450)
    weight = max(1, round(scale * 1.5))
    thickness = max(2, round(height / 240))
    for detection in detections:
        x, y, w, h = detection.box
        colour = colour_of(detection.label)
        cv2.rectangle(canvas, (x, y), (x + w, y + h), colour, thickness)
        text = f"{detection.label} {detection.score:.2f}"
        (text_w, text_h), baseline = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, weight)
        top = y - text_h - baseline - 2 if y - text_h - baseline - 2 >= 0 else y
        cv2.rectangle(canvas, (x, top), (x + text_w + 4, top + text_h + baseline + 2), colour, -1)
        cv2.putText(canvas, text, (x + 2, top + text_h + 1), cv2.FONT_HERSHEY_SIMPLEX, scale, _ink(colour), weight,
                    cv2.LINE_AA)
    return canvas


def _ink(colour: tuple[int, int, int]) -> tuple[int, int, int]:
    """Black on a light tag, white on a dark one."""
    blue, green, red = colour
    return (0, 0, 0) if 0.114 * blue + 0.587 * green + 0.299 * red > 140 else (255, 255, 255)
