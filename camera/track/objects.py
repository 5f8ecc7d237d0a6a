"""A detection that belongs to a tracked object."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..detect.detection import Detection


@dataclass(frozen=True)
class TrackedDetection(Detection):
    """A :class:`Detection` with its object's ``track`` id (None until the track counts: ``min_frames``), the
    zones its box's bottom centre is in (after each zone's ``min_seconds``), and whether it stands still."""

    track: int | None = None
    zones: tuple[str, ...] = ()
    stationary: bool = False

    def as_json(self) -> dict[str, Any]:
        data = super().as_json()
        data.update(track=self.track, zones=list(self.zones), stationary=self.stationary)
        return data
