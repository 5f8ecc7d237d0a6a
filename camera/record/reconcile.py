"""Making the index and the files agree again after a crash, before recording starts."""

from __future__ import annotations

import logging
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path

from . import formats
from .storage import Storage

log = logging.getLogger("camstream.record")

# The names camstream writes (see .storage), and nothing else: a camera is named as a configured camera can be
# (webapp.config.values.NAME_PATTERN), so a folder named with a newline, say, is no camera.
_CAMERA = r"(?P<camera>[A-Za-z0-9][A-Za-z0-9_-]{0,63})"
_SEGMENT = re.compile(rf"recordings/{_CAMERA}/\d{{4}}-\d{{2}}-\d{{2}}/(?P<ms>\d{{1,16}})\.(mjpeg|mp4|copy\.mp4)",
                      re.ASCII)
_PLAYABLE = re.compile(rf"clips/{_CAMERA}/(?P<id>\d{{1,18}})\.mp4", re.ASCII)
_CLIP = re.compile(rf"clips/{_CAMERA}/(?P<id>\d{{1,18}})-(?P<ms>\d{{1,16}})\.(mjpeg|mp4|copy\.mp4)", re.ASCII)
_SNAPSHOT = re.compile(rf"snapshots/{_CAMERA}/(?P<id>\d{{1,18}})(?P<boxes>-boxes)?\.jpg", re.ASCII)
_NAMES = (_SEGMENT, _PLAYABLE, _CLIP, _SNAPSHOT)


@dataclass
class Reconciled:
    """What :func:`reconcile` found: rows repaired, dropped, files adopted and removed, and what was left alone
    as not camstream's (``foreign``: a symlink, a name camstream does not write)."""

    repaired: int = 0
    dropped: int = 0
    adopted: int = 0
    removed: int = 0
    events_closed: int = 0
    kept: int = 0
    foreign: int = 0


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
        path = _own_file(storage, segment.path)
        times = _frame_times(segment.format, path, segment.start) if path is not None else []
        if not times:
            index.delete_segment(segment.id)
            if path is not None:
                storage.remove(segment.path)
            found.dropped += 1
            continue
        assert path is not None
        index.update_segment(segment.id, times[-1], len(times), path.stat().st_size, open=False, start=times[0])
        found.repaired += 1
    known = index.all_paths()
    for relative, segment_id in known.items():
        if segment_id and _own_file(storage, relative) is None:
            index.delete_segment(segment_id)
            found.dropped += 1
    files, foreign = _files(storage.root)
    found.foreign = len(foreign)
    for path in files:
        relative = storage.relative(path)
        if relative in known or _is_kept_clip(storage, relative):
            continue
        if not any(pattern.fullmatch(relative.removesuffix(".part")) for pattern in _NAMES):
            foreign.append(path)  # not a name camstream writes: not its to adopt or to delete
            found.foreign += 1
        elif _adopt(storage, path, relative) or (rebuild and _adopt_event_file(storage, path, relative)):
            found.adopted += 1
        elif rebuild:
            found.kept += 1
        else:
            path.unlink(missing_ok=True)
            found.removed += 1
    if foreign:
        log.warning("storage %s: %d file(s) left alone as not camstream's (symlinks, which are never followed, or "
                    "names it does not write), such as %r", storage.root, len(foreign),
                    storage.relative(foreign[0]))
    if rebuild:
        log.warning("storage %s: index rebuilt from the files: %d file(s) adopted, %d kept that it could not "
                    "place; the damaged index is %s", storage.root, found.adopted, found.kept, storage.set_aside)
    elif any(vars(found).values()):
        log.info("storage %s: after an unclean stop, %d segment(s) repaired, %d row(s) without a file dropped, "
                 "%d file(s) adopted, %d removed, %d event(s) closed", storage.root, found.repaired, found.dropped,
                 found.adopted, found.removed, found.events_closed)
    return found


def _files(root: Path) -> tuple[list[Path], list[Path]]:
    """The regular files under the folders camstream records into, and apart from them the symlinks (to a file
    or to a folder, neither followed) and whatever else is neither a file nor a folder."""
    files, others = [], []
    for folder in ("recordings", "clips", "snapshots"):
        for directory, folders, names in os.walk(root / folder):  # followlinks=False: a linked folder is not entered
            for name in (*names, *folders):
                path = Path(directory) / name
                try:
                    mode = os.lstat(path).st_mode
                except OSError:
                    continue
                if stat.S_ISREG(mode):
                    files.append(path)
                elif not stat.S_ISDIR(mode):
                    others.append(path)
    return sorted(files), sorted(others)


def _own_file(storage: Storage, relative: str) -> Path | None:
    """The file an index row names, if it is there as a regular file reached through no symlink; else None."""
    try:
        path = storage.path(relative)
        return path if stat.S_ISREG(os.lstat(path).st_mode) else None
    except (ValueError, OSError):
        return None


def _frame_times(fmt: str, path: Path, start: float) -> list[float]:
    """:func:`formats.frame_times`, none for a file that cannot be opened as a recording (a symlink put there
    since it was looked at is refused by ``O_NOFOLLOW``)."""
    try:
        return formats.frame_times(fmt, path, start)
    except OSError:
        return []


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
    times = _frame_times(fmt, path, start)
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
        times = _frame_times(fmt, path, int(clip["ms"]) / 1000)
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
