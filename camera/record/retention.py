"""Retention: deleting the oldest recordings and events by age, by total size and for free space.

It runs in a thread of its own, every :data:`RETENTION_SECONDS` or when a
recorder asks (:meth:`Retention.wake`), so deleting never holds up capture,
streaming or writing.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from .storage import Storage

log = logging.getLogger("camstream.record")

RETENTION_SECONDS = 30.0


@dataclass(frozen=True)
class Limits:
    """``retain_days``: delete what started longer ago (None: keep); ``max_bytes``: the most all
    recordings may take (None: no cap); ``min_free``: free space to leave on the disk."""

    retain_days: float | None = 7.0
    max_bytes: int | None = None
    min_free: int = 1 << 30


def headroom(min_free: int) -> int:
    """Free space kept above the minimum, so recording does not stop at the line."""
    return min(min_free // 4, 512 << 20)


class Retention:
    def __init__(self, storage: Storage, limits: Limits) -> None:
        self.storage = storage
        self.limits = limits
        self.deleted = 0
        self.last_error: str | None = None
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._done = threading.Condition()
        self._passes = 0

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="recording-retention", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(5.0)

    def wake(self) -> None:
        """Run a pass soon (a recorder saw the disk filling)."""
        self._wake.set()

    def wait_pass(self, timeout: float) -> bool:
        """Wait until a pass that began after this call has finished (for tests and the CLI)."""
        with self._done:
            target = self._passes + 2
            self._wake.set()
            return self._done.wait_for(lambda: self._passes >= target, timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
                self.last_error = None
            except (OSError, sqlite3.Error) as exc:
                if self.last_error is None:
                    log.warning("retention failed: %s", exc)
                self.last_error = str(exc)
            with self._done:
                self._passes += 1
                self._done.notify_all()
            self._wake.wait(RETENTION_SECONDS)
            self._wake.clear()

    def run_once(self, now: float | None = None) -> int:
        """One pass: by age, then by size, then for free space; returns how many things it deleted.

        On a disk so full that the index cannot delete, the reserve file is
        given back to the disk for the pass, and kept again once there is room.
        """
        try:
            deleted = self._pass(now)
        except sqlite3.OperationalError as exc:
            if not disk_full(exc) or not self.storage.release_reserve():
                raise
            log.warning("the disk is full: giving up the storage's reserve so that old recordings can be deleted")
            deleted = self._pass(now)
        self.storage.keep_reserve()
        return deleted

    def _pass(self, now: float | None) -> int:
        now = time.time() if now is None else now
        limits = self.limits
        index = self.storage.index
        deleted = 0
        # Downloads kept a while take room too (bounded apart, see exports.py): they count against the cap.
        kept = self.storage.exports.total_bytes() if limits.max_bytes is not None else 0
        while (oldest := index.oldest()) is not None:
            kind, item_id, start = oldest
            too_old = limits.retain_days is not None and start < now - limits.retain_days * 86400
            too_big = limits.max_bytes is not None and index.total_bytes() + kept > limits.max_bytes
            too_full = self.storage.free_bytes() < limits.min_free + headroom(limits.min_free)
            if not (too_old or too_big or too_full):
                break
            if not too_full and self._in_use(kind, item_id):
                # A download is reading it: deleted on a later pass, once the download is made. (A disk too
                # full to wait goes on: a copy is read from what it opened, an encoded one then fails visibly.)
                break
            self.delete(kind, item_id)
            deleted += 1
        if deleted:
            self.deleted += deleted
            log.info("retention deleted %d recording(s) and event(s)", deleted)
        return deleted

    def _in_use(self, kind: str, item_id: int) -> bool:
        """Whether a download being made reads the segment (or the event's clip) ``item_id``."""
        index = self.storage.index
        if kind == "segment":
            segment = index.segment(item_id)
            names = [segment.path] if segment is not None else []
        else:
            names = [segment.path for segment in index.segments(event_id=item_id)]
        return any(self.storage.exports.in_use(name) for name in names)

    def delete(self, kind: str, item_id: int) -> None:
        """Delete a segment (a clip's segment takes its event along) or an event, rows first, then files."""
        index = self.storage.index
        if kind == "segment":
            segment = index.segment(item_id)
            if segment is None:
                return
            if segment.event_id is not None:
                self.delete("event", segment.event_id)
                return
            _rows_then_files(self.storage, [segment.path], lambda: index.delete_segment(item_id))
            return
        delete_event(self.storage, item_id)


def delete_event(storage: Storage, event_id: int) -> bool:
    """Remove an event, its clip and its snapshots; False if there is no such event."""
    index = storage.index
    event = index.event(event_id)
    if event is None:
        return False
    files = [segment.path for segment in index.segments(event_id=event_id)]
    files += [event.snapshot, event.snapshot_boxes, storage.playable_clip_name(event.camera, event.id)]
    _rows_then_files(storage, files, lambda: index.delete_event(event_id))
    return True


def _rows_then_files(storage: Storage, files: list[str | None], delete_rows: Callable[[], object]) -> None:
    """Delete index rows, then their files: a crash between leaves files that reconcile adopts or removes.

    On a disk too full for SQLite to delete, the files go first to make the
    room (a crash between then leaves rows without files, which reconcile drops).
    """
    try:
        delete_rows()
    except sqlite3.OperationalError as exc:
        if not disk_full(exc):
            raise
        for path in files:
            storage.remove(path)
        delete_rows()
        return
    for path in files:
        storage.remove(path)


def disk_full(error: sqlite3.Error) -> bool:
    """Whether SQLite failed for want of room on the disk."""
    return getattr(error, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL or "disk is full" in str(error)
