"""Recording: events with clips and snapshots, continuous recording, retention, playback.

:class:`Recorder` records one camera (:mod:`.recorder`) into a
:class:`Storage` folder (:mod:`.storage`) whose SQLite :class:`Index`
(:mod:`.index`) says what each file holds. Frames are stored as captured,
in frame files (:mod:`.framefile`), or as H.264 (:mod:`.h264`); a camera
that passes its own video through is recorded by copy (:mod:`.copy`).
Downloads are made once and kept a while (:mod:`.exports`).
:class:`EventTracker` (:mod:`.tracker`) opens and closes events from
detection results; :class:`FrameRing` (:mod:`.ring`) holds the seconds
before one. :func:`reconcile` (:mod:`.reconcile`) makes index and files
agree after a crash; :class:`Retention` (:mod:`.retention`) deletes the
oldest by age, size and free space; :mod:`.playback` reads it all back.
"""

from . import copy
from .formats import FORMATS
from .index import EventRow, Index, Segment
from .playback import MAX_EXPORT_SECONDS, NothingRecorded, clip_segments, export_mp4, frames_between, playback
from .reconcile import Reconciled, reconcile
from .recorder import (
    CONTINUOUS,
    EVENTS,
    MODES,
    PAUSED,
    RECORDING,
    Recorder,
    RecorderState,
    RecordMode,
    RecordSettings,
    format_bytes,
)
from .retention import Limits, Retention, delete_event
from .ring import FrameRing
from .storage import Storage
from .tracker import EventTracker

__all__ = [
    "CONTINUOUS",
    "EVENTS",
    "FORMATS",
    "MAX_EXPORT_SECONDS",
    "MODES",
    "PAUSED",
    "RECORDING",
    "EventRow",
    "EventTracker",
    "FrameRing",
    "Index",
    "Limits",
    "NothingRecorded",
    "Reconciled",
    "RecordMode",
    "RecordSettings",
    "Recorder",
    "RecorderState",
    "Retention",
    "Segment",
    "Storage",
    "clip_segments",
    "copy",
    "delete_event",
    "export_mp4",
    "format_bytes",
    "frames_between",
    "playback",
    "reconcile",
]
