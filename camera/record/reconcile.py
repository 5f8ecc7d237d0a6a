"""Making the index and the files agree again after a crash, before recording starts."""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

from . import formats
from .storage import Storage

log = logging.getLogger("camstream.record")

_SEGMENT = re.compile(r"recordings/(?P<camera>[^/]+)/\d{4}-\d{2}-\d{2}/(?P<ms>\d{1,16})\.(mjpeg|mp4|copy\.mp4)")

_PLAYABLE = re.compile(r"clips/[^/]+/(?P<id>\d{1,18})\.mp4")
_CLIP = re.compile(r"clips/(?P<camera>[^/]+)/(?P<id>\d{1,18})-(?P<ms>\d{1,16})\.(mjpeg|mp4)")
_SNAPSHOT = re.compile(r"snapshots/(?P<camera>[^/]+)/(?P<id>\d{1,18})(?P<boxes>-boxes)?\.jpg")


@dataclass
class Reconciled:
    """What :func:`reconcile` found: rows repaired, dropped, files adopted and removed."""

    repaired: int = 0
    dropped: int = 0
    adopted: int = 0
    removed: int = 0
    events_closed: int = 0
    kept: int = 0


def reconcile(storage: Storage) -> Reconciled:
    """Close what a killed run left open, drop rows whose file is gone, adopt or remove files without a row.

    After a damaged index was set aside (``storage.set_aside``), the new one
    is rebuilt: events are made again from their clips and snapshots (their
    labels are lost with the old index), and no file is removed on the word
    of an index that knew nothing.
    """
    rebuild = storage.set_aside is not None
    index = storage.index
    found = Reconciled(events_closed=index.close_open_events())
    for segment in index.close_open_segments():
        path = storage.path(segment.path)
        times = formats.frame_times(segment.format, path, segment.start) if path.exists() else []
        if not times:
            index.delete_segment(segment.id)
            storage.remove(segment.path)
            found.dropped += 1
            continue
        index.update_segment(segment.id, times[-1], len(times), path.stat().st_size, open=False, start=times[0])
        found.repaired += 1
    known = index.all_paths()
    for relative, segment_id in known.items():
        if segment_id and not storage.path(relative).exists():
            index.delete_segment(segment_id)
            found.dropped += 1
    for path in _files(storage.root):
        relative = storage.relative(path)
        if relative in known or _is_kept_clip(storage, relative):
            continue
        if _adopt(storage, path, relative) or (rebuild and _adopt_event_file(storage, path, relative)):
            found.adopted += 1
        elif rebuild:
            found.kept += 1
        else:
            path.unlink(missing_ok=True)
            found.removed += 1
    if rebuild:
        log.warning("storage %s: index rebuilt from the files: %d file(s) adopted, %d kept that it could not "
                    "place; the damaged index is %s", storage.root, found.adopted, found.kept, storage.set_aside)
    elif any(vars(found).values()):
        log.info("storage %s: after an unclean stop, %d segment(s) repaired, %d row(s) without a file dropped, "
                 "%d file(s) adopted, %d removed, %d event(s) closed", storage.root, found.repaired, found.dropped,
                 found.adopted, found.removed, found.events_closed)
    return found


def _files(root: Path) -> list[Path]:
    files = []
    for folder in ("recordings", "clips", "snapshots"):
        for directory, _, names in os.walk(root / folder):
            files.extend(Path(directory) / name for name in names)
    return sorted(files)


def _is_kept_clip(storage: Storage, relative: str) -> bool:
    """A clip made playable for an event that is still indexed."""
    match = _PLAYABLE.fullmatch(relative)
    return match is not None and storage.index.event(int(match["id"])) is not None


def _adopt(storage: Storage, path: Path, relative: str) -> bool:
    """Add a continuous segment the index lost; False for anything else (half-written files, orphan clips)."""
    match = _SEGMENT.fullmatch(relative)
    fmt = formats.format_of(path)
    if match is None or fmt is None:
        return False
    start = int(match["ms"]) / 1000
    times = formats.frame_times(fmt, path, start)
    if not times:
        return False
    index = storage.index
    segment_id = index.add_segment(match["camera"], "continuous", fmt, relative, times[0])
    index.update_segment(segment_id, times[-1], len(times), path.stat().st_size, open=False)
    return True


def _adopt_event_file(storage: Storage, path: Path, relative: str) -> bool:
    """An event's clip (the event made again around its frames) or snapshot (for an event made so)."""
    index = storage.index
    clip = _CLIP.fullmatch(relative)
    fmt = formats.format_of(path)
    if clip is not None and fmt is not None:
        times = formats.frame_times(fmt, path, int(clip["ms"]) / 1000)
        if not times:
            return False
        event_id = int(clip["id"])
        if index.event(event_id) is None:
            index.add_event(clip["camera"], times[0], "", 0.0, 0.0, event_id=event_id)
        found = index.event(event_id)
        assert found is not None
        end = max(times[-1], found.end or times[-1])
        index.update_event(event_id, end=end, bytes=found.bytes + path.stat().st_size)
        segment_id = index.add_segment(clip["camera"], "clip", fmt, relative, times[0], event_id=event_id)
        index.update_segment(segment_id, times[-1], len(times), path.stat().st_size, open=False)
        return True
    snapshot = _SNAPSHOT.fullmatch(relative)
    if snapshot is not None and index.event(int(snapshot["id"])) is not None:
        column = "snapshot_boxes" if snapshot["boxes"] else "snapshot"
        index.update_event(int(snapshot["id"]), **{column: relative})
        return True
    return False
