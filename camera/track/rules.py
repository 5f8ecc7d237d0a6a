"""A camera's zones, masks and object filters, and the tracking settings, as plain values.

They come from the config file (webapp/config/zones.py reads and checks
them); coordinates are main-stream pixels or, when every number of a
polygon is from 0 to 1, fractions of the picture, and are turned into a
picture's pixels by :meth:`Rules.placed` once per picture size.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from .geometry import MaskCover, Polygon, in_pixels

# Motion boxes with at least this share under the motion mask are not counted.
MOTION_MASKED_SHARE = 0.5


@dataclass(frozen=True)
class Zone:
    """A named area: ``objects`` (empty: any label) count in it once inside for ``min_seconds``."""

    name: str
    polygon: Polygon
    objects: frozenset[str] = frozenset()
    min_seconds: float = 0.0


@dataclass(frozen=True)
class ObjectFilter:
    """What a label must be to count: a score, and an area in pixels (or, 0 to 1, a share of the picture)."""

    min_score: float = 0.0
    min_area: float = 0.0
    max_area: float = float("inf")


@dataclass(frozen=True)
class Rules:
    """Everything a camera's tracking follows; the defaults track everything, with no zones or masks."""

    zones: tuple[Zone, ...] = ()
    object_mask: tuple[Polygon, ...] = ()
    motion_mask: tuple[Polygon, ...] = ()
    required_zones: frozenset[str] = frozenset()
    objects: Mapping[str, ObjectFilter] = field(default_factory=dict)
    min_frames: int = 3
    lost_seconds: float = 3.0
    stationary_seconds: float = 10.0

    def placed(self, width: int, height: int) -> Placed:
        return Placed(self, width, height)


class Placed:
    """:class:`Rules` in the pixels of one picture size."""

    def __init__(self, rules: Rules, width: int, height: int) -> None:
        self.size = (width, height)
        self.zones = [(zone, in_pixels(zone.polygon, width, height)) for zone in rules.zones]
        self.object_mask = [in_pixels(polygon, width, height) for polygon in rules.object_mask]
        self.motion_mask = MaskCover([in_pixels(p, width, height) for p in rules.motion_mask], width, height) \
            if rules.motion_mask else None
        area = width * height
        self.areas = {label: (_area(rule.min_area, area), _area(rule.max_area, area), rule.min_score)
                      for label, rule in rules.objects.items()}


def _area(value: float, picture: int) -> float:
    return value * picture if 0.0 < value <= 1.0 else value
