"""Objects followed from frame to frame: a ``track`` id per object, the zones it is in, whether it stands still.

Every detector's boxes (motion, YOLO, remote workers, plug-ins) go through
one :class:`~.tracking.Tracking` per camera (:mod:`.tracking`, on norfair's
tracker; :func:`~.wiring.track_camera` puts it in front of every listener of
a camera's results), after the filters and the object mask of the camera's
rules (:mod:`.rules`, :mod:`.geometry`). What comes out is the same result
with :class:`~.objects.TrackedDetection` boxes, which carry ``track``,
``zones`` and ``stationary``, and the tracks that ended; the recorder makes
events per object from it (camera/record/tracker.py), whose track, label and
zones are kept beside the index (:mod:`.eventinfo`).

norfair (and scipy under it) takes a second to import, so :class:`Tracking`
and the wiring are imported when first used: reading a config file's zones
does not pay for it.
"""

from __future__ import annotations

from typing import Any

from . import eventinfo
from .objects import TrackedDetection
from .rules import ObjectFilter, Rules, Zone

__all__ = [
    "ObjectFilter",
    "Rules",
    "TrackedDetection",
    "Tracking",
    "Zone",
    "eventinfo",
    "track_camera",
    "update_rules",
]


def __getattr__(name: str) -> Any:
    if name == "Tracking":
        from .tracking import Tracking
        return Tracking
    if name in ("track_camera", "update_rules"):
        from . import wiring
        return getattr(wiring, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
