"""The ``motion`` detector: what differs from the scene's recent background, with no model at all.

Each frame is shrunk to at most :data:`WORK_WIDTH` pixels wide and
blurred, so sensor noise and JPEG artefacts fall below the threshold, and
compared, colour by colour (a red coat on a grey wall of the same
brightness still moves), with a running average of the frames before: the
background. A changed pixel counts only near something that changed since
the frame before, and that differs from the scene (a slower background),
too: the background still remembers where a thing just was (its "ghost"),
and a box must be on what is there now, not on the trail behind it or the
place it just left. Changed pixels, grown into blobs, become boxes mapped
back to the full frame. The background follows the scene, so a thing that
stops moving is no longer reported. A change over most of the
picture (a light switched on, the camera adjusting its exposure) is no
motion: the frame becomes the new background at once and reports nothing,
so the whole frame is never reported for long.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from .detection import Detection

# Frames are looked at this wide at most (a motion gate looks at them half as wide).
WORK_WIDTH = 320
# A change covering more than this share of the frame is lighting, not motion.
GLOBAL_CHANGE = 0.5
# How much of each new frame goes into the background, and into the scene (a slower background: what is there
# when nothing passes, so a place a thing has just left looks like it again).
BACKGROUND_ALPHA = 0.2
SCENE_ALPHA = 0.02
# How far (in pixels of the shrunk frame, about) a changed pixel may be from one that changed since the frame
# before: enough to take in the inside of a moving thing, whose edges alone differ from one frame to the next.
NEAR_MOVEMENT = np.ones((7, 7), np.uint8)


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
        self._previous: np.ndarray | None = None
        self._scene: np.ndarray | None = None
        # The motion mask: polygons in fractions of the picture, and where it is not, at the shrunk size.
        self.mask: tuple[tuple[tuple[float, float], ...], ...] = ()
        self._unmasked: np.ndarray | None = None

    def set_mask(self, polygons: Sequence[Sequence[Sequence[float]]]) -> None:
        """No motion counts inside ``polygons`` (``[[x, y], ...]`` in fractions of the picture, 0-1): a clock
        burned into the picture, a tree. Its pixels never change, so they neither make boxes nor grow one."""
        mask = tuple(tuple((float(x), float(y)) for x, y in polygon) for polygon in polygons)
        if mask != self.mask:
            self.mask, self._unmasked = mask, None

    def __call__(self, image: np.ndarray) -> list[Detection]:
        height, width = image.shape[:2]
        small = self._prepare(image)
        background, previous = self._background, self._previous
        self._previous = small
        scene = self._scene
        if background is None or background.shape != small.shape or previous is None or scene is None:
            self._background, self._scene = small.astype(np.float32), small.astype(np.float32)
            return []
        changed_mask = self._changed(small, cv2.convertScaleAbs(background))
        if self.mask:
            changed_mask &= self._outside_mask(changed_mask.shape)
        if cv2.countNonZero(changed_mask) > GLOBAL_CHANGE * changed_mask.size:
            self._background, self._scene = small.astype(np.float32), small.astype(np.float32)
            return []
        # Not the ghost: only near what moved since the frame before, and not where the scene shows again.
        moving = cv2.dilate(self._changed(small, previous), NEAR_MOVEMENT, iterations=2)
        # (The scene's test grown by a pixel: a blurred edge is half the thing and half the scene.)
        shown = cv2.dilate(self._changed(small, cv2.convertScaleAbs(scene)), np.ones((3, 3), np.uint8))
        changed_mask &= moving & shown
        cv2.accumulateWeighted(small, background, BACKGROUND_ALPHA)
        cv2.accumulateWeighted(small, scene, SCENE_ALPHA)
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

    def _outside_mask(self, shape: tuple[int, ...]) -> np.ndarray:
        """1 outside the mask, 0 inside, at ``shape`` (made once per size)."""
        if self._unmasked is None or self._unmasked.shape != shape[:2]:
            height, width = shape[:2]
            unmasked = np.ones((height, width), np.uint8)
            for polygon in self.mask:
                points = np.array([[round(x * width), round(y * height)] for x, y in polygon], np.int32)
                cv2.fillPoly(unmasked, [points], 0)
            self._unmasked = unmasked
        return self._unmasked

    def _changed(self, image: np.ndarray, reference: np.ndarray) -> np.ndarray:
        """1 where ``image`` differs from ``reference`` by more than the threshold in any colour, else 0."""
        blue, green, red = cv2.split(cv2.absdiff(image, reference))
        _, mask = cv2.threshold(cv2.max(cv2.max(blue, green), red), self.threshold, 1, cv2.THRESH_BINARY)
        return mask

    def _prepare(self, image: np.ndarray) -> np.ndarray:
        if image.ndim == 2:
            image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
        height, width = image.shape[:2]
        if width > self.width:
            image = cv2.resize(image, (self.width, max(1, round(height * self.width / width))),
                               interpolation=cv2.INTER_AREA)
        return cv2.GaussianBlur(image, (5, 5), 0)
