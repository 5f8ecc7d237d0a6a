"""A stand-in for a heavy detector written in pure Python, for bench/detect.py (``bench.detectors:burn``)."""

from __future__ import annotations

import time

import numpy as np

BURN_SECONDS = 0.150


def burn(image: np.ndarray) -> list[dict]:
    """150 ms of CPU in pure Python for every frame, holding its interpreter's GIL all along."""
    deadline = time.thread_time() + BURN_SECONDS
    loops = 0
    while time.thread_time() < deadline:
        loops += 1
    return [{"label": "burn", "score": 1.0, "box": [0, 0, image.shape[1], image.shape[0]], "extra": {"loops": loops}}]


def sleep_100ms(image: np.ndarray) -> list[dict]:
    """100 ms a frame without using the CPU: a detector on a GPU (or another machine) stands in."""
    time.sleep(0.1)
    return [{"label": "thing", "score": 0.9, "box": [0, 0, image.shape[1] // 2, image.shape[0] // 2]}]
