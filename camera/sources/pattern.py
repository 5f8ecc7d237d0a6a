"""A synthetic test pattern, for trying camstream and testing it without hardware."""

from __future__ import annotations

import time
from collections.abc import Iterator

import cv2
import numpy as np

from .. import jpeg
from ..base import BaseCamera
from ..pacing import Pacer

DEFAULT_SIZE = (640, 480)
DEFAULT_FPS = 30.0


class PatternCamera(BaseCamera):
    """Colour bars with a moving ball, the camera name, a clock and a frame counter.

    Drawn at ``width`` x ``height`` (640x480 unless set) and ``fps`` (30
    unless set), so the capture thread never has to resize it.
    """

    def frames(self) -> Iterator[np.ndarray]:
        width, height = jpeg.target_size(*DEFAULT_SIZE, self.width, self.height)
        background = _colour_bars(width, height)
        pacer = Pacer(self.fps or DEFAULT_FPS)
        scale = max(0.4, height / 480)
        radius = max(4, height // 12)
        count = 0
        while True:
            pacer.wait()
            image = background.copy()
            phase = count * pacer.interval
            x = int((0.5 + 0.4 * np.sin(phase * 1.3)) * width)
            y = int((0.5 + 0.35 * np.sin(phase * 2.1)) * height)
            cv2.circle(image, (x, y), radius, (255, 255, 255), -1, cv2.LINE_AA)
            lines = (self.name, time.strftime("%Y-%m-%d %H:%M:%S"), f"frame {count}")
            cv2.rectangle(image, (0, 0), (int(330 * scale), int(118 * scale)), (0, 0, 0), -1)
            for row, text in enumerate(lines):
                origin = (int(12 * scale), int((34 + 34 * row) * scale))
                cv2.putText(image, text, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 2, cv2.LINE_AA)
            count += 1
            yield image


def _colour_bars(width: int, height: int) -> np.ndarray:
    colours = np.array(
        [(192, 192, 192), (0, 192, 192), (192, 192, 0), (0, 192, 0),
         (192, 0, 192), (0, 0, 192), (192, 0, 0), (32, 32, 32)],
        dtype=np.uint8,
    )
    columns = (np.arange(width) * len(colours)) // width
    row = colours[columns]
    return np.ascontiguousarray(np.broadcast_to(row, (height, width, 3)))
