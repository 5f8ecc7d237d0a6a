"""Detectors that tests plug in as ``tests.detectors:NAME``; they run in camstream's worker processes."""

from __future__ import annotations

import os
import time
from pathlib import Path

import cv2
import numpy as np

from camera.detect import Detection

# Where HangOnce and CrashOnce leave a mark, so the restarted worker behaves.
MARKER = "CAMSTREAM_TEST_MARKER"


def find_squares(image: np.ndarray) -> list[dict]:
    """The pure red regions of a frame, as plain mappings: the square of tests.sources.SceneCamera."""
    blue, green, red = cv2.split(image)
    mask = ((red > 180) & (green < 80) & (blue < 80)).astype(np.uint8)
    count, _, stats, _ = cv2.connectedComponentsWithStats(mask)
    return [{"label": "square", "score": 0.9, "box": [int(v) for v in stats[i, :4]], "extra": {"area": int(stats[i, 4])}}
            for i in range(1, count) if stats[i, 4] >= 20]


class SquareFinder:
    """The same as a class: camstream makes one instance in the worker and calls it per frame."""

    def __init__(self) -> None:
        self.frames = 0

    def __call__(self, image: np.ndarray) -> list[Detection]:
        self.frames += 1
        return [Detection(item["label"], item["score"], tuple(item["box"]), {"frame": self.frames})
                for item in find_squares(image)]


def raising(image: np.ndarray) -> list:
    raise RuntimeError("the model is on fire")


def broken_output(image: np.ndarray) -> list:
    return [{"label": "thing", "score": 7, "box": [0, 0, 1, 1]}]


def hang_once(image: np.ndarray) -> list:
    """Hangs on its first frame, then (in a restarted worker) finds squares."""
    marker = Path(os.environ[MARKER])
    if not marker.exists():
        marker.write_text("hung")
        time.sleep(3600)
    return find_squares(image)


def crash_once(image: np.ndarray) -> list:
    """Kills its worker on the first frame, then (in a restarted worker) finds squares."""
    marker = Path(os.environ[MARKER])
    if not marker.exists():
        marker.write_text("crashed")
        os._exit(3)
    return find_squares(image)


NOT_CALLABLE = 42


class FailsToLoad:
    def __init__(self) -> None:
        raise OSError("no such camera model")


def slow_squares(image: np.ndarray) -> list[dict]:
    """Squares, found slowly: 0.3 s per frame."""
    time.sleep(0.3)
    return find_squares(image)
