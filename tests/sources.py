"""Cameras for tests: they count opens and closes, fail on demand, or never send."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import numpy as np

from camera import BaseCamera
from camera.pacing import Pacer


class CountingCamera(BaseCamera):
    """Small paced frames; counts how often the source is opened and released.

    ``release_gate``, when given, holds the release until it is set, to
    catch a capture thread in the middle of stopping. ``fail_after`` raises
    after that many frames of each run.
    """

    def __init__(self, name: str = "counting", *, rate: float = 50.0, fail_after: int | None = None,
                 release_gate: threading.Event | None = None, **options) -> None:
        super().__init__(name, source="counting", **options)
        self.rate = rate
        self.fail_after = fail_after
        self.release_gate = release_gate
        self.opens = 0
        self.closes = 0
        self.open_now = 0
        self.most_open_at_once = 0
        self.released = threading.Event()
        self._count_lock = threading.Lock()

    def frames(self) -> Iterator[np.ndarray]:
        with self._count_lock:
            self.opens += 1
            self.open_now += 1
            self.most_open_at_once = max(self.most_open_at_once, self.open_now)
            self.released.clear()
        try:
            pacer = Pacer(self.rate)
            count = 0
            while True:
                pacer.wait()
                if self.fail_after is not None and count >= self.fail_after:
                    raise RuntimeError(f"sensor on fire after {count} frames")
                image = np.zeros((48, 64, 3), np.uint8)
                image[:, :, 1] = count % 256
                count += 1
                yield image
        finally:
            if self.release_gate is not None:
                self.release_gate.wait(10)
            with self._count_lock:
                self.closes += 1
                self.open_now -= 1
            self.released.set()


class SilentCamera(BaseCamera):
    """Opens, then never sends a frame until ``gate`` is set."""

    def __init__(self, name: str = "silent", **options) -> None:
        super().__init__(name, source="silent", **options)
        self.gate = threading.Event()

    def frames(self) -> Iterator[np.ndarray]:
        while not self.gate.wait(0.05):
            if self.stopping:
                return
        while True:
            yield np.zeros((8, 8, 3), np.uint8)


class SceneCamera(BaseCamera):
    """A still scene (a grey gradient with a dark bar) and a red square that moves while ``moving`` is set.

    The square, ``SIZE`` pixels a side, steps ``STEP`` pixels right per frame
    along the middle of the frame and wraps around; :attr:`square` is the
    box it had in the newest frame.
    """

    SIZE = 40
    STEP = 6

    def __init__(self, name: str = "scene", *, rate: float = 30.0, size: tuple[int, int] = (320, 240),
                 **options) -> None:
        super().__init__(name, source="scene", **options)
        self.rate = rate
        self.frame_size = size
        self.moving = threading.Event()
        self.moving.set()
        self.square = (0, 0, self.SIZE, self.SIZE)
        width, height = size
        gradient = np.linspace(60, 180, width, dtype=np.float32)
        self.background = np.repeat(np.broadcast_to(gradient, (height, width))[:, :, None], 3, axis=2).astype(np.uint8)
        self.background[height // 6: height // 6 + 12, width // 8: width // 2] = (20, 20, 20)

    def frames(self) -> Iterator[np.ndarray]:
        width, height = self.frame_size
        pacer = Pacer(self.rate)
        x = 10
        y = height // 2 - self.SIZE // 2
        while True:
            pacer.wait()
            if self.moving.is_set():
                x = x + self.STEP if x + self.STEP + self.SIZE <= width - 10 else 10
            image = self.background.copy()
            image[y:y + self.SIZE, x:x + self.SIZE] = (0, 0, 230)
            self.square = (x, y, self.SIZE, self.SIZE)
            yield image
