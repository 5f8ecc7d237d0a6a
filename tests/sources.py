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
