"""What a detector reports: a label, a score and a box, and turning a plugin's output into that."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any


class DetectionError(ValueError):
    """A detector returned something that is not a detection."""


@dataclass(frozen=True)
class Detection:
    """One thing found in a frame.

    ``box`` is ``(x, y, w, h)`` in whole pixels of the frame the detector
    was given, never of a resized or padded copy. ``extra`` carries
    whatever else a detector knows (keypoints, a track id); it must be
    JSON-able.
    """

    label: str
    score: float
    box: tuple[int, int, int, int]
    extra: Mapping[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"label": self.label, "score": round(self.score, 4), "box": list(self.box)}
        if self.extra:
            data["extra"] = dict(self.extra)
        return data


def as_detection(item: object, width: int, height: int) -> Detection:
    """``item`` (a :class:`Detection` or a mapping with ``label``, ``score``, ``box``) checked, with its box
    rounded to whole pixels and clipped to a ``width`` x ``height`` frame.

    Raises :class:`DetectionError` with one line saying what is wrong.
    """
    if isinstance(item, Detection):
        label, score, box, extra = item.label, item.score, item.box, item.extra
    elif isinstance(item, Mapping):
        missing = [key for key in ("label", "score", "box") if key not in item]
        if missing:
            raise DetectionError(f"a detection needs {', '.join(missing)}: got keys {sorted(map(str, item))}")
        label, score, box, extra = item["label"], item["score"], item["box"], item.get("extra") or {}
    else:
        raise DetectionError(f"a detection must be a Detection or a mapping, not {type(item).__name__}")
    try:
        score = float(score)
    except (TypeError, ValueError):
        raise DetectionError(f"a detection's score must be a number, not {score!r}") from None
    if not (math.isfinite(score) and 0.0 <= score <= 1.0):
        raise DetectionError(f"a detection's score must be from 0 to 1, not {score!r}")
    if not isinstance(extra, Mapping):
        raise DetectionError(f"a detection's extra must be a mapping, not {type(extra).__name__}")
    return Detection(str(label), score, clip_box(box, width, height), dict(extra))


def clip_box(box: object, width: int, height: int) -> tuple[int, int, int, int]:
    """``[x, y, w, h]`` in whole pixels, inside a ``width`` x ``height`` frame."""
    try:
        x, y, w, h = (float(value) for value in box)  # type: ignore[union-attr]
    except (TypeError, ValueError):
        raise DetectionError(f"a detection's box must be [x, y, w, h], not {box!r}") from None
    if not all(math.isfinite(value) for value in (x, y, w, h)) or w < 0 or h < 0:
        raise DetectionError(f"a detection's box must be finite with w, h >= 0, not {box!r}")
    # Edges round half up, so a box's size does not depend on where it lies.
    left, top = min(width, max(0, math.floor(x + 0.5))), min(height, max(0, math.floor(y + 0.5)))
    right, bottom = min(width, math.floor(x + w + 0.5)), min(height, math.floor(y + h + 0.5))
    return left, top, max(0, right - left), max(0, bottom - top)


def scale_boxes(detections: Iterable[Detection], x: float, y: float) -> list[Detection]:
    """``detections`` with their boxes stretched ``x`` times across and ``y`` times down, in whole pixels, and
    their keypoints (a pose model's ``extra["keypoints"]``, ``[[x, y, score], ...]``) with them: a detect
    stream's pose lands on the main stream's person. Each keeps its kind (a tracked detection its track)."""
    scaled = []
    for item in detections:
        left, top, width, height = item.box
        box = (round(left * x), round(top * y), max(1, round(width * x)), max(1, round(height * y)))
        extra = item.extra
        points = extra.get("keypoints") if extra else None
        if isinstance(points, list):
            extra = {**extra, "keypoints": [_scaled_point(point, x, y) for point in points]}
        scaled.append(replace(item, box=box, extra=extra))
    return scaled


def _scaled_point(point: Any, x: float, y: float) -> Any:
    """A keypoint ``[x, y, ...]`` stretched; anything else (a plug-in's own shape) as it is."""
    if not isinstance(point, list | tuple) or len(point) < 2 \
            or not all(isinstance(n, int | float) and not isinstance(n, bool) for n in point[:2]):
        return point
    return [round(point[0] * x, 1), round(point[1] * y, 1), *point[2:]]
