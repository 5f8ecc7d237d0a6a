"""Polygons in a picture: scaling them to its pixels, a point inside one, and how much of a box a mask covers."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

Point = tuple[float, float]
Polygon = tuple[Point, ...]


def in_pixels(polygon: Polygon, width: int, height: int) -> Polygon:
    """``polygon`` in pixels of a ``width`` x ``height`` picture: one whose every number is from 0 to 1 is in
    fractions of the picture (so it fits any stream size), any other is in pixels already."""
    if all(0.0 <= x <= 1.0 and 0.0 <= y <= 1.0 for x, y in polygon):
        return tuple((x * width, y * height) for x, y in polygon)
    return polygon


def contains(polygon: Polygon, x: float, y: float) -> bool:
    """Whether ``(x, y)`` is inside ``polygon`` (even-odd rule: a point on a left or top edge is in, on a right
    or bottom edge out, so two zones that share an edge never both hold it)."""
    inside = False
    x1, y1 = polygon[-1]
    for x2, y2 in polygon:
        if (y1 > y) != (y2 > y) and x < (x2 - x1) * (y - y1) / (y2 - y1) + x1:
            inside = not inside
        x1, y1 = x2, y2
    return inside


def bottom_centre(box: Sequence[int]) -> Point:
    """Where a box's object stands: the middle of its bottom edge."""
    x, y, w, h = box
    return x + w / 2, y + h


class MaskCover:
    """How much of a box lies under ``polygons`` in a ``width`` x ``height`` picture, from a summed-area
    table made once: a box's share costs four look-ups, whatever its size."""

    def __init__(self, polygons: Sequence[Polygon], width: int, height: int) -> None:
        self.width, self.height = width, height
        mask = np.zeros((max(1, height), max(1, width)), np.uint8)
        for polygon in polygons:
            points = np.array([[round(x), round(y)] for x, y in polygon], np.int32)
            cv2.fillPoly(mask, [points], 1)
        self._sums = cv2.integral(mask)

    def share(self, box: Sequence[int]) -> float:
        """The part (0 to 1) of ``box`` (x, y, w, h) that is masked."""
        x, y, w, h = box
        left, top = min(max(0, x), self.width), min(max(0, y), self.height)
        right, bottom = min(max(0, x + w), self.width), min(max(0, y + h), self.height)
        if right <= left or bottom <= top:
            return 0.0
        sums = self._sums
        covered = sums[bottom, right] - sums[top, right] - sums[bottom, left] + sums[top, left]
        return float(covered) / ((right - left) * (bottom - top))


def iou(a: Sequence[int], b: Sequence[int]) -> float:
    """How much two boxes (x, y, w, h) overlap: intersection over union, 0 to 1."""
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    w = min(ax + aw, bx + bw) - max(ax, bx)
    h = min(ay + ah, by + bh) - max(ay, by)
    if w <= 0 or h <= 0:
        return 0.0
    inter = w * h
    return inter / (aw * ah + bw * bh - inter)
