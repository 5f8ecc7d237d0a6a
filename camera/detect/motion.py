"""The ``motion`` detector: what differs from the scene's recent background, with no model at all.

Each frame is shrunk to at most :data:`WORK_WIDTH` pixels wide and
blurred, so sensor noise and JPEG artefacts fall below the threshold, and
compared, colour by colour (a red coat on a grey wall of the same
brightness still moves), with a running average of the frames before: the
background. Changed pixels, grown into blobs, become boxes mapped back to
the full frame. The background follows the scene, so a thing that stops
moving fades into it within a few frames. A change over most of the
picture (a light switched on, the camera adjusting its exposure) is no
motion: the frame becomes the new background at once and reports nothing,
so the whole frame is never reported for long.
"""

from __future__ import annotations

import cv2
import numpy as np

from .detection import Detection

# Frames are looked at this wide at most (a motion gate looks at them half as wide).
WORK_WIDTH = 320
# A change covering more than this share of the frame is lighting, not motion.
GLOBAL_CHANGE = 0.5
# How much of each new frame goes into the background.
BACKGROUND_ALPHA = 0.2


class MotionDetector:
    """Moving regions, labelled ``motion``.

    ``sensitivity`` (0-1, default 0.5) sets how large a change in
    brightness, in any colour, counts; ``min_area`` is the smallest box
    kept, in percent of the frame's area (default 0.1). A box's score is
    the share of it that changed.
    """

    label = "motion"

    def __init__(self, sensitivity: float = 0.5, min_area: float = 0.1, width: int = WORK_WIDTH) -> None:
        if not 0.0 <= sensitivity <= 1.0:
            raise ValueError(f"motion sensitivity must be from 0 to 1, not {sensitivity!r}")
        if not 0.0 <= min_area <= 100.0:
            raise ValueError(f"motion min_area must be from 0 to 100 (percent of the frame), not {min_area!r}")
        # Sensitivity 0 needs a change of 60 levels, 1 one of 6.
        self.threshold = 6 + (1.0 - sensitivity) * 54
        self.min_area = min_area / 100.0
        self.width = width
        self._background: np.ndarray | None = None

    def __call__(self, image: np.ndarray) -> list[Detection]:
        height, width = image.shape[:2]
        small = self._prepare(image)
        background = self._background
        if background is None or background.shape != small.shape:
            self._background = small.astype(np.float32)
            return []
        blue, green, red = cv2.split(cv2.absdiff(small, cv2.convertScaleAbs(background)))
        _, changed_mask = cv2.threshold(cv2.max(cv2.max(blue, green), red), self.threshold, 1, cv2.THRESH_BINARY)
        if cv2.countNonZero(changed_mask) > GLOBAL_CHANGE * changed_mask.size:
            self._background = small.astype(np.float32)
            return []
        cv2.accumulateWeighted(small, background, BACKGROUND_ALPHA)
        changed = changed_mask.view(bool)
        # Join the parts of one moving thing into one blob; its box is that of its changed pixels.
        blobs = cv2.dilate(changed_mask, np.ones((5, 5), np.uint8), iterations=2)
        contours, _ = cv2.findContours(blobs, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        scale_x, scale_y = width / small.shape[1], height / small.shape[0]
        detections = []
        for contour in contours:
            bx, by, bw, bh = cv2.boundingRect(contour)
            x, y, w, h = cv2.boundingRect(changed_mask[by:by + bh, bx:bx + bw])
            x, y = x + bx, y + by
            if w * h < self.min_area * changed.size or not w or not h:
                continue
            share = float(changed[y:y + h, x:x + w].mean())
            box = (round(x * scale_x), round(y * scale_y), round(w * scale_x), round(h * scale_y))
            detections.append(Detection(self.label, min(1.0, share), box))
        return detections

    def _prepare(self, image: np.ndarray) -> np.ndarray:
        if image.ndim == 2:
            image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
        height, width = image.shape[:2]
        if width > self.width:
            image = cv2.resize(image, (self.width, max(1, round(height * self.width / width))),
                               interpolation=cv2.INTER_AREA)
        return cv2.GaussianBlur(image, (5, 5), 0)
