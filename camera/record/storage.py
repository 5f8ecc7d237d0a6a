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
outside is checked to stay inside the folder, and nothing in the folder is
followed out of it: whoever else may write there (a shared disk, a NAS)
could put a symlink where a recording goes, and camstream, which repairs,
truncates and deletes its files, would then do that to the link's target.
So a path through a symlink is refused (:meth:`Storage.path`), files are
opened with ``O_NOFOLLOW`` (:func:`open_inside`), and the folders
camstream makes must be real folders.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import shutil
import sqlite3
import stat
import tempfile
import time
from pathlib import Path, PurePosixPath
from typing import IO, BinaryIO

from .exports import ExportCache
from .index import Index
from .safeopen import open_nofollow

log = logging.getLogger("camstream.record")

FOLDERS = ("recordings", "clips", "snapshots")
# Held locked by the process that records here.
LOCK_FILE = "camstream.lock"
# Room kept for the index on a disk that fills up (see Storage.keep_reserve).
RESERVE_FILE = "reserve"
RESERVE_BYTES = 1 << 20


class NotFollowed(OSError, ValueError):
    """A path of the storage folder that goes through a symlink (ELOOP): refused, as a path outside the folder
    is (a ValueError), and as a file that cannot be opened is (an OSError), whichever its caller handles."""


class Storage:
    """The storage folder and its index."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self._lock = _hold_lock(self.root / LOCK_FILE)
        try:
            for folder in (*FOLDERS, "exports"):
                _real_folder(self.root / folder)
            # Files made for one request (an MP4 to download); what a crash left there goes at start.
            self.temp = self.root / "tmp"
            if self.temp.is_symlink():
                self.temp.unlink()  # the link only; nothing it points at is touched
            shutil.rmtree(self.temp, ignore_errors=True)  # never follows a symlink inside
            self.temp.mkdir(exist_ok=True)
        except OSError:
            self._lock.close()
            raise
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
                if os.path.lexists(companion):
                    os.replace(companion, self.set_aside.with_name(self.set_aside.name + suffix))
            log.error("the recording index %s is damaged (%s): set aside as %s; a new one is being built from "
                      "the recordings", path, exc, self.set_aside.name)
            return Index(path)

    def path(self, relative: str) -> Path:
        """The absolute path of a file named in the index; ValueError for one outside the folder, or one
        reached through a symlink (a folder on the way, or the file itself): nothing there is followed."""
        path = self._inside(relative)
        link = _first_link(self.root, path, last=True)
        if link is not None:
            raise NotFollowed(errno.ELOOP, f"not followed: {relative!r} is reached through a symlink "
                              f"({self.relative(link)!r})")
        return path

    def _inside(self, relative: str) -> Path:
        """``relative`` joined to the folder, told apart without touching the disk: no ``..``, not absolute."""
        pure = PurePosixPath(relative) if isinstance(relative, str) and "\x00" not in relative else None
        if pure is None or pure.is_absolute() or ".." in pure.parts or not pure.parts or pure == PurePosixPath("."):
            raise ValueError(f"not a path inside the storage folder: {relative!r}")
        return self.root.joinpath(*pure.parts)

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
        """Write a small file whole (a snapshot): to a temporary name first, so a crash leaves no half file.

        The temporary file is made new (``O_EXCL``: never a symlink someone left there); the rename
        replaces a symlink at ``relative`` itself, never what it points at."""
        path = self._inside(relative)
        if _first_link(self.root, path, last=False) is not None:
            raise NotFollowed(errno.ELOOP, f"not followed: {relative!r} is reached through a symlink")
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(path.name + ".part")
        try:
            temporary.unlink(missing_ok=True)  # what a crash left; a link there goes, not its target
            with os.fdopen(os.open(temporary, _NEW_FILE, 0o666), "wb") as file:
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
            path = self._inside(relative)
            if _first_link(self.root, path, last=False) is not None:
                raise ValueError(relative)
            path.unlink(missing_ok=True)  # a symlink there is removed itself, never what it points at
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
        if path.is_symlink():
            path.unlink()  # not camstream's: the reserve is a real file, made below
        elif path.exists():
            return True
        if self.free_bytes() < 4 * RESERVE_BYTES:
            return False
        try:
            with os.fdopen(os.open(path, _NEW_FILE, 0o666), "wb") as file:
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


# A file made new, never through a symlink (O_EXCL refuses one, even dangling), closed on exec.
_NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


def open_inside(path: Path, root: Path | None = None, write: bool = False) -> BinaryIO:
    """Open an existing file of the storage folder without following a symlink: ``O_NOFOLLOW`` refuses a
    link at ``path`` itself, ``root`` (the storage folder) a link in any folder between it and ``path``,
    and anything but a regular file (a FIFO, a device) is refused too. OSError (ELOOP for a link) if so.

    For whatever opens a recording, an export or a download: use it instead of ``open(path, "rb")``."""
    if root is not None and _first_link(Path(root), Path(path), last=False) is not None:
        raise OSError(errno.ELOOP, "a folder on the way is a symlink, which is not followed", str(path))
    return open_nofollow(path, write)


def _first_link(root: Path, path: Path, last: bool) -> Path | None:
    """The first symlink on the way from ``root`` down to ``path`` (``path`` itself too if ``last``); None if
    there is none. What does not exist yet is no link."""
    try:
        parts = path.relative_to(root).parts
    except ValueError:
        return path
    at = root
    for number, part in enumerate(parts, 1):
        at = at / part
        if number == len(parts) and not last:
            break
        try:
            if stat.S_ISLNK(os.lstat(at).st_mode):
                return at
        except FileNotFoundError:
            return None
        except NotADirectoryError:
            return None
    return None


def _real_folder(path: Path) -> None:
    """Make the folder ``path``; OSError if a symlink (or a file) is there: camstream writes, truncates and
    deletes in its folders, and must not do so wherever a link points."""
    if path.is_symlink():
        raise OSError(errno.ELOOP, f"{path.name}/ in it is a symlink, which camstream does not follow out of its "
                      "storage folder (give the folder it points at as the storage instead)")
    path.mkdir(parents=True, exist_ok=True)


def _hold_lock(path: Path) -> IO[str]:
    """Lock ``path`` for as long as this process keeps the file open: one camstream writes a folder.

    OSError (EBUSY) naming the process that holds it, if another does; OSError (ELOOP) for a symlink there,
    whose target would be truncated otherwise.
    """
    try:
        handle = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o666)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise OSError(errno.ELOOP, f"{path.name} in it is a symlink, which camstream does not follow") from None
        raise
    file = os.fdopen(handle, "a+")  # held open on purpose, closed by Storage.close
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
