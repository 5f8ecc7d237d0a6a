"""The storage folder: where recordings, clips and snapshots go, how full it is, and deleting safely.

Layout, under the folder the user chose::

    camstream.db                                 the index (see .index)
    recordings/<camera>/<YYYY-MM-DD>/<ms>.mjpeg  continuous segments (or .mp4 for H.264)
    clips/<camera>/<event id>-<ms>.mjpeg         an event's frames when only events are recorded
    clips/<camera>/<event id>.mp4                a clip made playable, kept once made
    snapshots/<camera>/<event id>[-boxes].jpg    an event's best frame
    tmp/                                         MP4 files made for one request (a clip still going on)
    exports/                                     MP4 downloads of recording, kept a while (see .exports)
    camstream.lock                               held by the one camstream that records here
    reserve                                      1 MiB kept free for the index when the disk fills

``<ms>`` is the segment's start in milliseconds since the epoch, so a file
the index lost can be adopted by its name. Every path handed in from
outside is checked to stay inside the folder.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import shutil
import sqlite3
import tempfile
import time
from pathlib import Path
from typing import IO

from .exports import ExportCache
from .index import Index

log = logging.getLogger("camstream.record")

FOLDERS = ("recordings", "clips", "snapshots")
# Held locked by the process that records here.
LOCK_FILE = "camstream.lock"
# Room kept for the index on a disk that fills up (see Storage.keep_reserve).
RESERVE_FILE = "reserve"
RESERVE_BYTES = 1 << 20


class Storage:
    """The storage folder and its index."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self._lock = _hold_lock(self.root / LOCK_FILE)
        for folder in FOLDERS:
            (self.root / folder).mkdir(parents=True, exist_ok=True)
        # Files made for one request (an MP4 to download); what a crash left there goes at start.
        self.temp = self.root / "tmp"
        shutil.rmtree(self.temp, ignore_errors=True)
        self.temp.mkdir(exist_ok=True)
        self.exports = ExportCache(self.root / "exports")
        self.exports.prune()  # what a previous run kept past its time
        # Where a damaged index was set aside, if it was: the new one is then rebuilt from the files.
        self.set_aside: Path | None = None
        self.index = self._open_index(self.root / "camstream.db")
        self.keep_reserve()

    def _open_index(self, path: Path) -> Index:
        """The index at ``path``; a damaged one (not SQLite, cut short, a folder) is renamed, never deleted,
        and a new one made, which :func:`~camera.record.reconcile.reconcile` fills from the recordings."""
        try:
            return Index(path)
        except (sqlite3.DatabaseError, OSError) as exc:
            if not os.path.lexists(path):
                raise  # nothing there to be damaged: the folder itself is the trouble
            stamp = time.strftime("%Y%m%d-%H%M%S")
            self.set_aside = path.with_name(f"{path.name}.damaged-{stamp}")
            os.replace(path, self.set_aside)
            for suffix in ("-wal", "-shm"):
                companion = path.with_name(path.name + suffix)
                if companion.exists():
                    os.replace(companion, self.set_aside.with_name(self.set_aside.name + suffix))
            log.error("the recording index %s is damaged (%s): set aside as %s; a new one is being built from "
                      "the recordings", path, exc, self.set_aside.name)
            return Index(path)

    def path(self, relative: str) -> Path:
        """The absolute path of a file named in the index; ValueError for one outside the folder."""
        path = (self.root / relative).resolve()
        if not path.is_relative_to(self.root) or path == self.root:
            raise ValueError(f"not a path inside the storage folder: {relative!r}")
        return path

    def relative(self, path: Path) -> str:
        return path.relative_to(self.root).as_posix()

    @staticmethod
    def segment_name(camera: str, start: float, suffix: str) -> str:
        day = time.strftime("%Y-%m-%d", time.localtime(start))
        return f"recordings/{camera}/{day}/{int(start * 1000)}{suffix}"

    @staticmethod
    def clip_name(camera: str, event_id: int, start: float, suffix: str) -> str:
        return f"clips/{camera}/{event_id}-{int(start * 1000)}{suffix}"

    @staticmethod
    def playable_clip_name(camera: str, event_id: int) -> str:
        return f"clips/{camera}/{event_id}.mp4"

    @staticmethod
    def snapshot_name(camera: str, event_id: int, boxes: bool) -> str:
        return f"snapshots/{camera}/{event_id}{'-boxes' if boxes else ''}.jpg"

    def temp_file(self, suffix: str) -> Path:
        """A new empty file of its own in ``tmp/``, for one request; its descriptor is closed already."""
        handle, name = tempfile.mkstemp(suffix=suffix, dir=self.temp)
        os.close(handle)
        return Path(name)

    def write_file(self, relative: str, data: bytes) -> int:
        """Write a small file whole (a snapshot): to a temporary name first, so a crash leaves no half file."""
        path = self.path(relative)
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(path.name + ".part")
        try:
            with open(temporary, "wb") as file:
                file.write(data)
            os.replace(temporary, path)
        except OSError:
            temporary.unlink(missing_ok=True)
            raise
        return len(data)

    def remove(self, relative: str | None) -> None:
        """Delete a file named in the index, and its day's folder once empty; a missing file is fine."""
        if not relative:
            return
        try:
            path = self.path(relative)
            path.unlink(missing_ok=True)
            if path.parent.parent.parent == self.root / "recordings":
                path.parent.rmdir()
        except OSError:
            pass
        except ValueError:
            log.warning("not deleting %r: outside the storage folder", relative)

    def keep_reserve(self) -> bool:
        """Hold :data:`RESERVE_BYTES` of the disk in a file, while there is room to spare, for a full disk:
        deleting from the index needs room for SQLite's write-ahead log. True if the reserve is there."""
        path = self.root / RESERVE_FILE
        if path.exists():
            return True
        if self.free_bytes() < 4 * RESERVE_BYTES:
            return False
        try:
            with open(path, "wb") as file:
                file.write(bytes(RESERVE_BYTES))  # written, not sparse: the blocks are really taken
                file.flush()
                os.fsync(file.fileno())
        except OSError:
            path.unlink(missing_ok=True)
            return False
        return True

    def release_reserve(self) -> bool:
        """Give the reserve back to the disk; True if there was one."""
        path = self.root / RESERVE_FILE
        try:
            path.unlink()
        except FileNotFoundError:
            return False
        return True

    def free_bytes(self) -> int:
        """Free space on the storage folder's disk, as an unprivileged writer may use it."""
        return shutil.disk_usage(self.root).free

    def close(self) -> None:
        self.index.close()
        self._lock.close()  # and with it the lock


def _hold_lock(path: Path) -> IO[str]:
    """Lock ``path`` for as long as this process keeps the file open: one camstream writes a folder.

    OSError (EBUSY) naming the process that holds it, if another does.
    """
    file = open(path, "a+")  # noqa: SIM115 - held open on purpose, closed by Storage.close
    try:
        fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        file.seek(0)
        holder = file.read().strip()[:20] or "?"
        file.close()
        raise OSError(errno.EBUSY, f"another camstream (pid {holder}) records into it") from None
    file.seek(0)
    file.truncate()
    file.write(str(os.getpid()))
    file.flush()
    return file
