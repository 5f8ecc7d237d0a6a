"""A pose detector that tests plug in as ``tests.detect.posers:square_pose``: a "person" on every red square (as
tests.detectors.find_squares finds it) with 17 keypoints on a grid over its box, so a test knows where each
must be: keypoint ``i`` is at column ``i % 5`` of 5 and row ``i // 5`` of 4, from the box's top left corner
(0) to its right edge (4) and bottom edge (15, 16)."""

from __future__ import annotations

import numpy as np

from tests.detectors import find_squares


def grid_point(box: list[int] | tuple[int, ...], index: int) -> tuple[float, float]:
    """Where keypoint ``index`` of a person in ``box`` is."""
    x, y, w, h = box
    return x + w * (index % 5) / 4, y + h * (index // 5) / 3


def square_pose(image: np.ndarray) -> list[dict]:
    return [{"label": "person", "score": 0.9, "box": found["box"],
             "extra": {"keypoints": [[*grid_point(found["box"], index), 0.9] for index in range(17)]}}
            for found in find_squares(image)]
