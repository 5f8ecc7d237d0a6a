"""Putting a camera's tracking in front of everything that takes its detection results."""

from __future__ import annotations

from typing import Any

from .rules import Rules
from .tracking import Tracking


def track_camera(detection: Any, rules: Rules | None = None, recorder: Any = None) -> Tracking:
    """Track ``detection``'s results with ``rules``; call it before anything else listens to them (the event
    hub, MQTT, the recorder, the metrics), so that all of them see the tracked boxes. ``recorder``'s events per
    object then wait for the rules' ``required_zones``."""
    tracking = Tracking(rules, rate=getattr(detection, "fps", 5.0) or 5.0)
    if not hasattr(detection, "tracking"):
        # A detection that does not apply tracking itself before it keeps a result (CameraDetection._publish):
        # the first listener changes each result in place.
        detection.add_result_listener(tracking.apply)
    detection.tracking = tracking
    if recorder is not None:
        recorder.objects.required_zones = frozenset(tracking.rules.required_zones)
    return tracking


def update_rules(detection: Any, rules: Rules, recorder: Any = None) -> None:
    """New rules for a tracked camera (a reload): its tracks go on."""
    tracking = getattr(detection, "tracking", None)
    if tracking is not None:
        tracking.set_rules(rules)
    if recorder is not None:
        recorder.objects.required_zones = frozenset(rules.required_zones)
