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

_SEGMENT = re.compile(r"recordings/(?P<camera>[^/]+)/\d{4}-\d{2}-\d{2}/(?P<ms>\d{1,16})\.(mjpeg|mp4)")

_PLAYABLE = re.compile(r"clips/[^/]+/(?P<id>\d{1,18})\.mp4")


@dataclass
class Reconciled:
    """What :func:`reconcile` found: rows repaired, dropped, files adopted and removed."""

    repaired: int = 0
    dropped: int = 0
    adopted: int = 0
    removed: int = 0
    events_closed: int = 0


def reconcile(storage: Storage) -> Reconciled:
    """Close what a killed run left open, drop rows whose file is gone, adopt or remove files without a row."""
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
        if _adopt(storage, path, relative):
            found.adopted += 1
        else:
            path.unlink(missing_ok=True)
            found.removed += 1
    if any(vars(found).values()):
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
