"""When an event opens and closes, from a camera's detection results; no files, no clocks of its own."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from ..detect.result import DetectionResult


@dataclass
class OpenEvent:
    """An event in progress: when it started, when something was last seen, the best of what was seen."""

    id: int
    start: float
    last_seen: float
    labels: dict[str, float] = field(default_factory=dict)
    best: DetectionResult | None = None
    best_score: float = 0.0
    # The best result not yet written as the snapshot.
    unsaved: bool = True


class EventTracker:
    """Opens an event on a result that reports something and closes it ``gap`` seconds after the last one.

    ``labels`` (empty: any) are the labels that count; a detector's other
    findings neither open nor extend an event. An event that reaches
    ``max_length`` seconds is closed however busy the scene, and the
    recorder opens the next one at once, linked to it: a camera facing a
    road or a tree in the wind gets clips of a bounded length, not one that
    never ends.
    """

    def __init__(self, gap: float, labels: Collection[str] = (), max_length: float = float("inf")) -> None:
        self.gap = gap
        self.labels = frozenset(labels)
        self.max_length = max_length
        self.current: OpenEvent | None = None

    def relevant(self, result: DetectionResult) -> dict[str, float]:
        """The best score per counted label in ``result``."""
        found: dict[str, float] = {}
        for detection in result.detections:
            if self.labels and detection.label not in self.labels:
                continue
            found[detection.label] = max(found.get(detection.label, 0.0), detection.score)
        return found

    def opens(self, result: DetectionResult) -> bool:
        """Whether ``result`` starts a new event (something counted, and no event is open)."""
        return self.current is None and bool(self.relevant(result))

    def see(self, result: DetectionResult) -> bool:
        """Fold ``result`` into the open event; True if it found something."""
        event = self.current
        found = self.relevant(result)
        if event is None or not found:
            return False
        timestamp = result.frame.timestamp
        event.last_seen = max(event.last_seen, timestamp)
        for label, score in found.items():
            event.labels[label] = max(event.labels.get(label, 0.0), score)
        score = max(found.values())
        if event.best is None or score > event.best_score:
            event.best, event.best_score, event.unsaved = result, score, True
        return True

    def due(self, now: float) -> bool:
        """Whether the open event has seen nothing for ``gap`` seconds."""
        return self.current is not None and now - self.current.last_seen >= self.gap

    def too_long(self, now: float) -> bool:
        """Whether the open event has run for ``max_length`` seconds."""
        return self.current is not None and now - self.current.start >= self.max_length


@dataclass
class ObjectEvent(OpenEvent):
    """An event of one tracked object: its track, its label, the zones it entered, in order."""

    track: int = 0
    label: str = ""
    zones: list[str] = field(default_factory=list)


@dataclass
class ObjectChanges:
    """What one result does to the events per object: tracks whose event opens (with the result's detection of
    them), and events that close (their track ended, went stationary, or was left out of the labels)."""

    opening: list[Any] = field(default_factory=list)
    closing: list[ObjectEvent] = field(default_factory=list)


class ObjectEvents:
    """Events per tracked object (results that went through camera/track/): an event opens when a track counts
    (it has an id) and moves, and, with ``required_zones``, once it has entered one of them; it closes when its
    track ends, when it becomes stationary (a parked car keeps no event open and opens no new one while it stays
    parked), or ``gap`` seconds after it was last seen, should results stop coming."""

    def __init__(self, gap: float, labels: Collection[str] = (), max_length: float = float("inf"),
                 required_zones: Collection[str] = ()) -> None:
        self.gap = gap
        self.labels = frozenset(labels)
        self.max_length = max_length
        self.required_zones = frozenset(required_zones)
        self.open: dict[int, ObjectEvent] = {}
        # The zones each live track entered, in order (an event may open only once it enters a required one).
        self._entered: dict[int, list[str]] = {}

    def changes(self, result: DetectionResult) -> ObjectChanges:
        """Which events ``result`` opens and closes; the detections of open events are folded in by :meth:`see`."""
        found = ObjectChanges()
        for ended in getattr(result, "ended", ()):
            self._entered.pop(ended.track, None)
            event = self.open.get(ended.track)
            if event is not None:
                found.closing.append(event)
        for detection in result.detections:
            track = getattr(detection, "track", None)
            if track is None or (self.labels and detection.label not in self.labels):
                continue
            entered = self._entered.setdefault(track, [])
            entered.extend(zone for zone in detection.zones if zone not in entered)
            event = self.open.get(track)
            if detection.stationary:
                if event is not None and event not in found.closing:
                    found.closing.append(event)
            elif event is None and (not self.required_zones or self.required_zones & set(entered)):
                found.opening.append(detection)
        return found

    def see(self, result: DetectionResult) -> list[ObjectEvent]:
        """Fold ``result``'s detections into their open events; the events whose best snapshot changed."""
        better = []
        timestamp = result.frame.timestamp
        for detection in result.detections:
            event = self.open.get(getattr(detection, "track", None) or 0)
            if event is None or detection.stationary:
                continue
            event.last_seen = max(event.last_seen, timestamp)
            event.labels[detection.label] = max(event.labels.get(detection.label, 0.0), detection.score)
            event.zones.extend(zone for zone in self._entered.get(event.track, ()) if zone not in event.zones)
            if event.best is None or detection.score > event.best_score:
                event.best, event.best_score, event.unsaved = result, detection.score, True
                better.append(event)
        return better

    def due(self, now: float) -> list[ObjectEvent]:
        """Open events nothing was seen of for ``gap`` seconds (the detector stopped sending results)."""
        return [event for event in self.open.values() if now - event.last_seen >= self.gap]

    def too_long(self, now: float) -> list[ObjectEvent]:
        return [event for event in self.open.values() if now - event.start >= self.max_length]

    def entered(self, track: int) -> list[str]:
        return list(self._entered.get(track, ()))
