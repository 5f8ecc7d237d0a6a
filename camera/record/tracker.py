"""When an event opens and closes, from a camera's detection results; no files, no clocks of its own."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field

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
