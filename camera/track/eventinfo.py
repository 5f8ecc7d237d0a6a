"""What an event per object adds to its row: its track, label and zones, kept beside the events table.

They live in a table of their own in the recording index's SQLite file
(``event_objects``, one row an event), so the index's own schema is
untouched; this module is all that reads or writes it. The listing joins
it, and ``?zone=`` filters by it. A row goes with its event, however the
event goes (retention, ``DELETE /api/events/<id>``): a trigger in the file
deletes it, so no later event that is given the freed id (SQLite reuses the
highest) inherits another's object; rows left by an index from before the
trigger are cleared when the table is first used.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from typing import Any

# The recording index (camera/record/index.py) is passed in, never imported: the recorder uses this module.
Index = Any
EventRow = Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS event_objects (
    event_id INTEGER PRIMARY KEY,
    track INTEGER NOT NULL,
    label TEXT NOT NULL,
    zones TEXT NOT NULL DEFAULT '[]'
);
CREATE TRIGGER IF NOT EXISTS event_objects_go_with_their_event AFTER DELETE ON events
BEGIN
    DELETE FROM event_objects WHERE event_id = OLD.id;
END;
DELETE FROM event_objects WHERE event_id NOT IN (SELECT id FROM events);
"""


IN_ZONE = "id IN (SELECT event_id FROM event_objects, json_each(event_objects.zones) WHERE json_each.value = ?)"


def _ready(index: Index) -> None:
    if getattr(index, "_event_objects_ready", False):
        return
    with index._lock:
        index._db.executescript(SCHEMA)
    index._event_objects_ready = True  # type: ignore[attr-defined]


def save(index: Index, event_id: int, track: int, label: str, zones: Sequence[str]) -> None:
    """Write (or rewrite) event ``event_id``'s object."""
    _ready(index)
    with index._transaction() as db:
        db.execute("INSERT OR REPLACE INTO event_objects (event_id, track, label, zones) VALUES (?, ?, ?, ?)",
                   (event_id, track, label, json.dumps(list(zones))))


def objects(index: Index, event_ids: Collection[int]) -> dict[int, dict[str, Any]]:
    """``{event id: {"track", "label", "zones"}}`` for those of ``event_ids`` that are events per object."""
    if not event_ids:
        return {}
    _ready(index)
    rows = index._query("SELECT * FROM event_objects WHERE event_id IN (SELECT value FROM json_each(?))",
                        (json.dumps(list(event_ids)),))
    return {row["event_id"]: {"track": row["track"], "label": row["label"], "zones": json.loads(row["zones"])}
            for row in rows}


def with_objects(index: Index, events: list[EventRow]) -> list[EventRow]:
    """``events`` with their object's ``track``, ``label`` and ``zones`` in their JSON (None and [] for an event
    that is not one object's: motion alone)."""
    found = objects(index, [event.id for event in events])
    for event in events:
        event.extra = {**event.extra, **found.get(event.id, {"track": None, "label": None, "zones": []})}
    return events


def in_zone(index: Index, zone: str, camera: str | None = None, label: str | None = None,
            after: float | None = None, before: float | None = None, limit: int = 50,
            cameras: Collection[str] | None = None) -> list[EventRow]:
    """Events (newest first) whose object entered ``zone``, with the index's own filters."""
    _ready(index)
    conditions = [("camera = ?", camera), ("camera IN (SELECT value FROM json_each(?))",
                                           None if cameras is None else json.dumps(list(cameras))),
                  ("start >= ?", after), ("start <= ?", before),
                  ("EXISTS (SELECT 1 FROM json_each(labels) WHERE json_each.key = ?)", label), (IN_ZONE, zone)]
    used = [(sql, value) for sql, value in conditions if value is not None]
    where = " AND ".join(sql for sql, _ in used)
    rows = index._query(f"SELECT id FROM events WHERE {where} ORDER BY start DESC, id DESC LIMIT ?",
                        [*(value for _, value in used), limit])
    found = [index.event(row["id"]) for row in rows]
    return with_objects(index, [event for event in found if event is not None])
