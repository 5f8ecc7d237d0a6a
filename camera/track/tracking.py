"""One camera's tracker: its detector's boxes filtered, followed from frame to frame by norfair, placed in zones.

norfair (the tracker Frigate uses; here its maintained fork ``norfair-enough``, which works with numpy 2)
matches each box to an object by IoU with a Kalman filter's guess of where the object went, and only boxes of
the same label. On top of it, this module keeps what camstream means by a track: its id (counted per camera
from 1, only once the object was seen ``min_frames`` times, so a box that flickers up once never gets one), when
it ends (unseen for ``lost_seconds``, by the frames' clocks: the detector's own rate does not matter), whether it
stands still (``stationary_seconds`` without moving), and the zones it entered, in order.
"""

from __future__ import annotations

import itertools
import math
import threading
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from norfair import Detection as NorfairDetection
from norfair import Tracker
from norfair.distances import VectorizedDistance

from ..detect.detection import Detection
from ..detect.result import DetectionResult
from ..detect.spec import MOTION, parse_spec
from .geometry import bottom_centre, contains, iou
from .objects import TrackedDetection
from .rules import MOTION_MASKED_SHARE, Placed, Rules

# A box is the same object as a track when its centre is less than this many box diagonals (the mean of the
# two) from where the track's Kalman filter expects it: a walker seen at 2 fps, or after a missed frame, is
# still found, where an IoU test loses it once the boxes stop overlapping.
DISTANCE_THRESHOLD = 1.0
# A box still overlapping the place where its object stopped this much has not moved.
STILL_IOU = 0.8
MOTION_LABEL = "motion"


@dataclass
class Track:
    """What camstream knows of one followed object."""

    label: str
    first_seen: float
    last_seen: float
    box: tuple[int, int, int, int]
    id: int | None = None
    hits: int = 0
    # Where it stopped, and since when: it is stationary once that is stationary_seconds ago.
    anchor: tuple[int, int, int, int] = (0, 0, 0, 0)
    anchor_since: float = 0.0
    stationary: bool = False
    # Zones it is inside now, since when (counted after the zone's min_seconds), and those it entered, in order.
    inside: dict[str, float] = field(default_factory=dict)
    zones: tuple[str, ...] = ()
    entered: list[str] = field(default_factory=list)
    ended: bool = False


@dataclass(frozen=True)
class Ended:
    """A track that ended: unseen for ``lost_seconds``."""

    track: int
    label: str
    last_seen: float
    entered: tuple[str, ...]


class Tracking:
    """Follows the objects of one camera's results. ``rate``: detections a second (norfair counts frames)."""

    def __init__(self, rules: Rules | None = None, rate: float = 5.0) -> None:
        self.rules = rules or Rules()
        self._rate = rate
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._tracker = self._new_tracker()
        self._tracks: dict[int, Track] = {}  # by id() of norfair's object
        self._placed: Placed | None = None
        self._updates = itertools.count()
        self.dropped = 0

    def _new_tracker(self) -> Tracker:
        # An object norfair no longer matches for lost_seconds' worth of frames is dropped; a slower detector
        # keeps it longer, and the frames' clocks end it at lost_seconds (see _expire).
        frames = max(2, math.ceil(self.rules.lost_seconds * self._rate))
        tracker = Tracker(distance_function="iou", distance_threshold=DISTANCE_THRESHOLD, hit_counter_max=frames,
                          initialization_delay=0, pointwise_hit_counter_max=frames, past_detections_length=0)
        # The constructor takes a name or a scalar function; a vectorized one of our own is set after it.
        tracker.distance_function = VectorizedDistance(centre_distance)
        return tracker

    def set_rules(self, rules: Rules) -> None:
        """New rules (the config file was reloaded): the tracks go on, placed anew."""
        with self._lock:
            self.rules = rules
            self._placed = None

    def apply(self, result: DetectionResult) -> DetectionResult:
        """``result`` with its detections filtered and tracked (in place: every listener sees the same)."""
        with self._lock:
            detections, ended = self._follow(result)
        result.detections = detections
        result.ended = tuple(ended)
        result.tracked = not _motion_only(result.detector)
        return result

    # -- the work ------------------------------------------------------

    def _follow(self, result: DetectionResult) -> tuple[list[Detection], list[Ended]]:
        now = result.frame.timestamp
        placed = self._placed
        if placed is None or placed.size != (result.width, result.height):
            placed = self._placed = self.rules.placed(result.width, result.height)
        kept = [item for item in result.detections if self._passes(item, placed)]
        serial = next(self._updates)
        found = [NorfairDetection(np.array([[x, y], [x + w, y + h]], dtype=float), label=item.label,
                                  data=(serial, index))
                 for index, (item, (x, y, w, h)) in enumerate((item, item.box) for item in kept)]
        self._tracker.update(found)
        matched: dict[int, Track] = {}
        alive = set()
        for obj in self._tracker.tracked_objects:
            alive.add(id(obj))
            last = obj.last_detection
            if last is None or last.data is None or last.data[0] != serial:
                continue
            index = last.data[1]
            track = self._tracks.get(id(obj))
            if track is None or track.ended:
                track = self._tracks[id(obj)] = Track(kept[index].label, now, now, kept[index].box,
                                                      anchor=kept[index].box, anchor_since=now)
            self._seen(track, kept[index].box, now, placed)
            matched[index] = track
        ended = self._expire(now, alive)
        out: list[Detection] = []
        for index, item in enumerate(kept):
            track = matched.get(index)
            if track is None or track.id is None:
                out.append(TrackedDetection(item.label, item.score, item.box, item.extra))
            else:
                out.append(TrackedDetection(item.label, item.score, item.box, item.extra, track.id, track.zones,
                                            track.stationary))
        return out, ended

    def _passes(self, item: Detection, placed: Placed) -> bool:
        """Whether ``item`` counts: its label's score and area, the object mask (where it stands), and for
        motion the motion mask (most of its box under it)."""
        limits = placed.areas.get(item.label)
        if limits is not None:
            low, high, score = limits
            area = item.box[2] * item.box[3]
            if item.score < score or area < low or area > high:
                self.dropped += 1
                return False
        if item.label == MOTION_LABEL and placed.motion_mask is not None \
                and placed.motion_mask.share(item.box) >= MOTION_MASKED_SHARE:
            self.dropped += 1
            return False
        if placed.object_mask and item.label != MOTION_LABEL:
            x, y = bottom_centre(item.box)
            if any(contains(polygon, x, y) for polygon in placed.object_mask):
                self.dropped += 1
                return False
        return True

    def _seen(self, track: Track, box: tuple[int, int, int, int], now: float, placed: Placed) -> None:
        track.hits += 1
        track.last_seen = now
        track.box = box
        if track.id is None and track.hits >= self.rules.min_frames:
            track.id = next(self._ids)
        if iou(box, track.anchor) < STILL_IOU:
            track.anchor, track.anchor_since = box, now
        track.stationary = now - track.anchor_since >= self.rules.stationary_seconds
        x, y = bottom_centre(box)
        inside = {}
        for zone, polygon in placed.zones:
            if zone.objects and track.label not in zone.objects:
                continue
            if contains(polygon, x, y):
                inside[zone.name] = track.inside.get(zone.name, now)
        track.inside = inside
        track.zones = tuple(name for name, since in inside.items()
                            if now - since >= _zone(placed, name).min_seconds)
        if track.id is not None:
            for name in track.zones:
                if name not in track.entered:
                    track.entered.append(name)

    def _expire(self, now: float, alive: set[int]) -> list[Ended]:
        """End the tracks norfair dropped or not seen for lost_seconds; those that had an id are reported."""
        ended = []
        for key, track in list(self._tracks.items()):
            if key in alive and now - track.last_seen < self.rules.lost_seconds:
                continue
            if not track.ended and track.id is not None:
                ended.append(Ended(track.id, track.label, track.last_seen, tuple(track.entered)))
            track.ended = True
            if key not in alive:
                del self._tracks[key]
        return ended

    # -- what it shows -------------------------------------------------

    def tracks(self) -> list[dict[str, Any]]:
        """The tracks that count now: id, label, zones, stationary."""
        with self._lock:
            return [{"track": t.id, "label": t.label, "zones": list(t.zones), "entered": list(t.entered),
                     "stationary": t.stationary}
                    for t in self._tracks.values() if t.id is not None and not t.ended]


def centre_distance(candidates: np.ndarray, objects: np.ndarray) -> np.ndarray:
    """How far each candidate box's centre is from each object's, in box diagonals (rows: candidates);
    boxes are ``[x1, y1, x2, y2]``."""
    def centres_and_sizes(boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        centres = (boxes[:, :2] + boxes[:, 2:]) / 2
        sizes = np.hypot(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
        return centres, sizes
    a, size_a = centres_and_sizes(candidates)
    b, size_b = centres_and_sizes(objects)
    apart = np.hypot(a[:, None, 0] - b[None, :, 0], a[:, None, 1] - b[None, :, 1])
    return apart / np.maximum(1.0, (size_a[:, None] + size_b[None, :]) / 2)


def _zone(placed: Placed, name: str) -> Any:
    return next(zone for zone, _ in placed.zones if zone.name == name)


def _motion_only(detector: str) -> bool:
    """Whether ``detector`` finds only motion (no objects): its events stay as they were, one per busy spell."""
    try:
        return parse_spec(detector).kind == MOTION
    except ValueError:
        return False
