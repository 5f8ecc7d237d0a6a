"""The picture viewers see while a camera's source is gone."""

from __future__ import annotations

import cv2
import numpy as np

DEFAULT_SIZE = (640, 480)
MAX_REASON_CHARS = 60


def no_signal_image(name: str, reason: str, gone_for: float, size: tuple[int, int] | None = None,
                    reached: bool = True) -> np.ndarray:
    """A dark frame naming the camera, why its source is gone and for how long; for a camera never ``reached``
    (no picture since the server started), "not reached": it is not gone, it never came."""
    width, height = size or DEFAULT_SIZE
    image = np.full((height, width, 3), 32, np.uint8)
    scale = max(0.35, min(width / 640, height / 480))
    lines = [
        (f"{name}: no signal", 1.2),
        (f"gone for {format_duration(gone_for)}" if reached else "not reached", 0.8),
        *((line, 0.6) for line in _wrap(reason)),
    ]
    y = int(height * 0.3)
    for text, size_factor in lines:
        font_scale = size_factor * scale
        (text_width, text_height), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font_scale, 2)
        x = max(4, (width - text_width) // 2)
        cv2.putText(image, text, (x, y), cv2.FONT_HERSHEY_SIMPLEX, font_scale, (230, 230, 230), 2, cv2.LINE_AA)
        y += int(text_height * 2.2)
    return image


def format_duration(seconds: float) -> str:
    """``"42 s"``, ``"3 min 5 s"``, ``"2 h 1 min"``."""
    seconds = int(max(0.0, seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


def _wrap(text: str, limit: int = MAX_REASON_CHARS) -> list[str]:
    lines: list[str] = []
    current = ""
    for word in text.split():
        if current and len(current) + 1 + len(word) > limit:
            lines.append(current)
            current = word
        else:
            current = f"{current} {word}".strip()
    if current:
        lines.append(current)
    return [line[:limit] for line in lines[:3]]
