"""The recording index: events and recorded segments in one SQLite file (WAL mode).

Files hold the pictures; the index says what they are: which camera, from
when to when, how large. The recorder adds a segment's row when it opens
the file and brings its end up to date every couple of seconds, so after a
crash the row is at most that stale, and :mod:`.reconcile` settles the rest
against the files.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Collection, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS segments (
    id INTEGER PRIMARY KEY,
    camera TEXT NOT NULL,
    kind TEXT NOT NULL,            -- 'continuous', or 'clip' (an event's own frames)
    format TEXT NOT NULL,          -- 'jpeg' (a frame file) or 'h264'
    path TEXT NOT NULL UNIQUE,     -- relative to the storage folder
    start REAL NOT NULL,
    end REAL NOT NULL,
    frames INTEGER NOT NULL DEFAULT 0,
    bytes INTEGER NOT NULL DEFAULT 0,
    open INTEGER NOT NULL DEFAULT 1,
    event_id INTEGER
);
CREATE INDEX IF NOT EXISTS segments_by_time ON segments (camera, start);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY,
    camera TEXT NOT NULL,
    start REAL NOT NULL,
    end REAL,
    labels TEXT NOT NULL DEFAULT '{}',
    best_score REAL NOT NULL DEFAULT 0,
    best_time REAL,
    detector TEXT NOT NULL DEFAULT '',
    pre_capture REAL NOT NULL DEFAULT 0,
    post_capture REAL NOT NULL DEFAULT 0,
    snapshot TEXT,
    snapshot_boxes TEXT,
    bytes INTEGER NOT NULL DEFAULT 0,
    continues INTEGER              -- the event this one goes on from, closed at the longest length
);
CREATE INDEX IF NOT EXISTS events_by_time ON events (camera, start);
"""


@dataclass
class Segment:
    id: int
    camera: str
    kind: str
    format: str
    path: str
    start: float
    end: float
    frames: int
    bytes: int
    open: bool
    event_id: int | None

    def as_json(self) -> dict[str, Any]:
        return {"id": self.id, "camera": self.camera, "kind": self.kind, "format": self.format,
                "start": round(self.start, 3), "end": round(self.end, 3), "frames": self.frames,
                "bytes": self.bytes, "recording": self.open}


@dataclass
class EventRow:
    id: int
    camera: str
    start: float
    end: float | None
    labels: dict[str, float]
    best_score: float
    best_time: float | None
    detector: str
    pre_capture: float
    post_capture: float
    snapshot: str | None
    snapshot_boxes: str | None
    bytes: int
    continues: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def clip_start(self) -> float:
        return self.start - self.pre_capture

    @property
    def clip_end(self) -> float | None:
        return None if self.end is None else self.end + self.post_capture

    def as_json(self) -> dict[str, Any]:
        return {"id": self.id, "camera": self.camera, "start": round(self.start, 3),
                "end": None if self.end is None else round(self.end, 3),
                "labels": {label: round(score, 4) for label, score in self.labels.items()},
                "best_score": round(self.best_score, 4),
                "best_time": None if self.best_time is None else round(self.best_time, 3),
                "detector": self.detector,
                "clip_start": round(self.clip_start, 3),
                "clip_end": None if self.clip_end is None else round(self.clip_end, 3),
                "snapshot": f"/api/events/{self.id}/snapshot.jpg",
                "clip": f"/api/events/{self.id}/clip.mp4", "continues": self.continues, **self.extra}


class Index:
    """One SQLite connection shared by the recorders, the retention thread and the routes, under a lock.

    Every call is one short transaction; none waits on anything but the disk.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        for name in (path.name, f"{path.name}-wal", f"{path.name}-shm"):
            if path.with_name(name).is_symlink():
                # SQLite would follow it, and write (and repair) wherever it points: damage, set aside.
                raise sqlite3.DatabaseError(f"{name} is a symlink, which is not followed")
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None, timeout=30)
        self._db.row_factory = sqlite3.Row
        self._lock = threading.Lock()
        try:
            with self._lock:
                self._db.execute("PRAGMA journal_mode=WAL")
                # WAL with synchronous=NORMAL loses no committed row to a killed process.
                self._db.execute("PRAGMA synchronous=NORMAL")
                self._db.executescript(SCHEMA)
                _add_missing_columns(self._db)
                problems = [row[0] for row in self._db.execute("PRAGMA quick_check").fetchall()]
            if problems != ["ok"]:
                raise sqlite3.DatabaseError(f"damaged: {'; '.join(problems[:3])}")
        except BaseException:
            self._db.close()
            raise

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _query(self, sql: str, args: tuple | list = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- segments ------------------------------------------------------

    def add_segment(self, camera: str, kind: str, fmt: str, path: str, start: float,
                    event_id: int | None = None) -> int:
        with self._transaction() as db:
            cursor = db.execute("INSERT INTO segments (camera, kind, format, path, start, end, event_id) "
                                "VALUES (?, ?, ?, ?, ?, ?, ?)", (camera, kind, fmt, path, start, start, event_id))
            return int(cursor.lastrowid or 0)

    def update_segment(self, segment_id: int, end: float, frames: int, size: int, open: bool = True,
                       start: float | None = None) -> None:
        with self._transaction() as db:
            db.execute("UPDATE segments SET end = ?, frames = ?, bytes = ?, open = ?, start = COALESCE(?, start) "
                       "WHERE id = ?", (end, frames, size, int(open), start, segment_id))

    def segments(self, camera: str | None = None, start: float | None = None, end: float | None = None,
                 kind: str | None = None, event_id: int | None = None, limit: int = 100_000,
                 cameras: Collection[str] | None = None) -> list[Segment]:
        """Segments overlapping [start, end], oldest first; ``cameras`` limits them to those cameras."""
        where, args = _where(("camera = ?", camera), _among(cameras), ("kind = ?", kind), ("event_id = ?", event_id),
                             ("end >= ?", start), ("start <= ?", end))
        rows = self._query(f"SELECT * FROM segments {where} ORDER BY start, id LIMIT ?", [*args, limit])
        return [_segment(row) for row in rows]

    def segment(self, segment_id: int) -> Segment | None:
        rows = self._query("SELECT * FROM segments WHERE id = ?", (segment_id,))
        return _segment(rows[0]) if rows else None

    def delete_segment(self, segment_id: int) -> None:
        with self._transaction() as db:
            db.execute("DELETE FROM segments WHERE id = ?", (segment_id,))

    def all_paths(self) -> dict[str, int]:
        """Every file the index knows, segments and snapshots, as relative path -> segment id (0: a snapshot)."""
        paths = {row["path"]: row["id"] for row in self._query("SELECT id, path FROM segments")}
        for row in self._query("SELECT snapshot, snapshot_boxes FROM events"):
            for path in (row["snapshot"], row["snapshot_boxes"]):
                if path:
                    paths[path] = 0
        return paths

    def close_open_segments(self) -> list[Segment]:
        """The segments a previous run left open (it was killed), now marked closed."""
        rows = self._query("SELECT * FROM segments WHERE open = 1")
        with self._transaction() as db:
            db.execute("UPDATE segments SET open = 0 WHERE open = 1")
        return [_segment(row) for row in rows]

    def total_bytes(self) -> int:
        rows = self._query("SELECT (SELECT COALESCE(SUM(bytes), 0) FROM segments) + "
                           "(SELECT COALESCE(SUM(bytes), 0) FROM events)")
        return int(rows[0][0])

    def oldest(self) -> tuple[str, int, float] | None:
        """The oldest thing retention may delete: ('segment' or 'event', id, start)."""
        segment = self._query("SELECT id, start FROM segments WHERE open = 0 ORDER BY start, id LIMIT 1")
        event = self._query("SELECT id, start FROM events WHERE end IS NOT NULL ORDER BY start, id LIMIT 1")
        candidates = [("segment", row["id"], row["start"]) for row in segment]
        candidates += [("event", row["id"], row["start"]) for row in event]
        return min(candidates, key=lambda item: item[2]) if candidates else None

    # -- events --------------------------------------------------------

    def add_event(self, camera: str, start: float, detector: str, pre_capture: float, post_capture: float,
                  event_id: int | None = None, continues: int | None = None) -> int:
        """A new event; ``event_id`` gives it the id its files are named by (when the index is rebuilt);
        ``continues`` the event it goes on from."""
        with self._transaction() as db:
            cursor = db.execute("INSERT INTO events (id, camera, start, detector, pre_capture, post_capture, continues) "
                                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                                (event_id, camera, start, detector, pre_capture, post_capture, continues))
            return int(cursor.lastrowid or 0)

    def update_event(self, event_id: int, **values: Any) -> None:
        allowed = {"end", "labels", "best_score", "best_time", "snapshot", "snapshot_boxes", "bytes", "post_capture"}
        unknown = set(values) - allowed
        if unknown:
            raise ValueError(f"not event columns: {sorted(unknown)}")
        if "labels" in values:
            values["labels"] = json.dumps(values["labels"])
        columns = ", ".join(f"{name} = ?" for name in values)
        with self._transaction() as db:
            db.execute(f"UPDATE events SET {columns} WHERE id = ?", (*values.values(), event_id))

    def event(self, event_id: int) -> EventRow | None:
        rows = self._query("SELECT * FROM events WHERE id = ?", (event_id,))
        return _event(rows[0]) if rows else None

    def events(self, camera: str | None = None, label: str | None = None, after: float | None = None,
               before: float | None = None, limit: int = 50, cameras: Collection[str] | None = None) -> list[EventRow]:
        """Events newest first; ``after``/``before`` bound their start; ``cameras`` limits them to those cameras."""
        where, args = _where(("camera = ?", camera), _among(cameras), ("start >= ?", after), ("start <= ?", before),
                             ("EXISTS (SELECT 1 FROM json_each(labels) WHERE json_each.key = ?)", label))
        rows = self._query(f"SELECT * FROM events {where} ORDER BY start DESC, id DESC LIMIT ?", [*args, limit])
        return [_event(row) for row in rows]

    def close_open_events(self) -> int:
        """End the events a previous run left open at their last detection; how many there were."""
        with self._transaction() as db:
            cursor = db.execute("UPDATE events SET end = COALESCE(best_time, start) WHERE end IS NULL")
            return cursor.rowcount

    def delete_event(self, event_id: int) -> tuple[EventRow | None, list[Segment]]:
        """Remove an event's row and its clip's rows; returns them so their files can go."""
        event = self.event(event_id)
        clips = self.segments(event_id=event_id)
        with self._transaction() as db:
            db.execute("DELETE FROM segments WHERE event_id = ?", (event_id,))
            db.execute("DELETE FROM events WHERE id = ?", (event_id,))
        return event, clips


def _where(*conditions: tuple[str, object]) -> tuple[str, list[Any]]:
    """A WHERE clause of the conditions whose value is not None (``("camera = ?", name)``), and its arguments."""
    used = [(sql, value) for sql, value in conditions if value is not None]
    if not used:
        return "", []
    return "WHERE " + " AND ".join(sql for sql, _ in used), [value for _, value in used]


def _among(cameras: Collection[str] | None) -> tuple[str, object]:
    """The condition for ``cameras`` (None: any camera), for :func:`_where`."""
    return "camera IN (SELECT value FROM json_each(?))", None if cameras is None else json.dumps(list(cameras))


def _segment(row: Mapping[str, Any]) -> Segment:
    return Segment(row["id"], row["camera"], row["kind"], row["format"], row["path"], row["start"], row["end"],
                   row["frames"], row["bytes"], bool(row["open"]), row["event_id"])


def _event(row: Mapping[str, Any]) -> EventRow:
    return EventRow(row["id"], row["camera"], row["start"], row["end"], json.loads(row["labels"]),
                    row["best_score"], row["best_time"], row["detector"], row["pre_capture"],
                    row["post_capture"], row["snapshot"], row["snapshot_boxes"], row["bytes"], row["continues"])


def _add_missing_columns(db: sqlite3.Connection) -> None:
    """Columns added since an index was made (CREATE TABLE IF NOT EXISTS leaves an old table as it was)."""
    columns = {row[1] for row in db.execute("PRAGMA table_info(events)")}
    if "continues" not in columns:
        db.execute("ALTER TABLE events ADD COLUMN continues INTEGER")
