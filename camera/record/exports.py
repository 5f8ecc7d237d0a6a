"""MP4 downloads, made once and kept a while, and sent while they are being made.

A download (a span of continuous recording, an event's clip) is made by a worker thread into
``NAME.part`` as fragmented MP4, whose bytes are final as they are written: every request for it follows that
file as it grows (:class:`Making`), so its first bytes go out at once however long the span, and a second
request joins the first rather than making it again. Once whole, the file is moved to its name and served
from there with ranges (a player's seeks read the disk, they make nothing).

Downloads of continuous recording are named by camera, span and what the segments held when asked for (their
ids and frame counts), so a span still being recorded gets a new file once it holds more. They are kept for
:data:`KEEP_SECONDS` after their last use and at most :data:`MAX_BYTES` in all, the least recently used going
first (a tenth of ``--max-storage`` when that is less), and they count against ``--max-storage``.

Memory over months: a download encoded from frames decodes and encodes a picture at a time (6 MB at 1080p,
libx264 in threads of its own), and glibc keeps what a thread freed in that thread's arena, resident, for the
next allocation there. A new thread per download spread that over every arena of the process, each keeping
its share, the server growing by hundreds of MB an hour while downloads were made (issue 36). So downloads
are made by a few long-lived workers (:class:`Workers`), and after each one the free memory of every arena
goes back to the system (:func:`give_back_memory`, glibc's ``malloc_trim``).
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import logging
import os
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

from .index import Segment
from .safeopen import open_nofollow

log = logging.getLogger(__name__)

# How long a download is kept after it was last asked for, and the most all of them may take on the disk.
KEEP_SECONDS = 3600.0
MAX_BYTES = 1 << 30
CHUNK = 256 * 1024
# How often a request following a file being made looks for more of it, and how long it waits for the first.
POLL_SECONDS = 0.05
FIRST_BYTES_SECONDS = 60.0
# Worker threads kept waiting for the next download; more are started while that many are busy, and end after.
KEPT_WORKERS = 2


def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's ``malloc_trim``, or None where the C library has none (musl, macOS)."""
    try:
        trim = ctypes.CDLL(None).malloc_trim
    except (AttributeError, OSError):
        return None
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return trim


_TRIM = _malloc_trim()


def give_back_memory() -> None:
    """Return the free memory of every malloc arena to the system (the pages inside free chunks too, not only
    the top of each heap): what a download freed stops counting in the server's RSS."""
    if _TRIM is not None:
        _TRIM(0)


class Workers:
    """Long-lived threads that run jobs, one at a time each: a waiting worker takes a new job, and a new worker
    is started only while all are busy (the callers bound how many jobs run at once). A worker with nothing to
    do waits for the next job if fewer than ``kept`` are waiting, else it ends."""

    def __init__(self, name: str, kept: int = KEPT_WORKERS) -> None:
        self.name = name
        self.kept = kept
        self._cond = threading.Condition()
        self._jobs: deque[Callable[[], object]] = deque()
        self._waiting = 0
        self.started = 0  # workers started so far, for tests

    @property
    def waiting(self) -> int:
        """Workers waiting for a job now."""
        with self._cond:
            return self._waiting

    def submit(self, job: Callable[[], object]) -> None:
        with self._cond:
            self._jobs.append(job)
            if self._waiting >= len(self._jobs):
                self._cond.notify()
                return
            self.started += 1
        threading.Thread(target=self._run, name=self.name, daemon=True).start()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._jobs:
                    if self._waiting >= self.kept:
                        return
                    self._waiting += 1
                    try:
                        self._cond.wait()
                    finally:
                        self._waiting -= 1
                job = self._jobs.popleft()
            try:
                job()  # ExportCache._make keeps a making's own error for its followers
            except Exception:  # the worker goes on to the next job
                log.exception("a download's worker failed")


# The workers that make every download of the process.
WORKERS = Workers("export")


class Busy(Exception):
    """No turn is free to make another download now."""


class CutShort(OSError):
    """A download could not be made to its end (a recording it read was deleted, a read failed): raised in
    the body of a response whose first bytes are out, so that the client sees an incomplete transfer (the
    connection closes before the chunked body's end or before Content-Length), never a whole-looking file."""


class Making:
    """A file being made by a thread: the requests that asked for it follow ``NAME.part`` as it grows."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.part = path.with_name(path.name + ".part")
        self.finished = threading.Event()
        self.error: BaseException | None = None

    def open(self, timeout: float = FIRST_BYTES_SECONDS) -> BinaryIO | None:
        """The file open at its start, once it has its first bytes or is whole; None if making it failed (see
        :attr:`error`). :class:`TimeoutError` if no byte came within ``timeout`` seconds (it goes on being
        made, and kept, for a later request)."""
        deadline = time.monotonic() + timeout
        while True:
            done = self.finished.is_set()
            for candidate in (self.part, self.path):
                try:
                    file = open_nofollow(candidate)  # handed to follow(), which closes it
                except FileNotFoundError:
                    continue
                if os.fstat(file.fileno()).st_size or self.finished.is_set():
                    return file
                file.close()
            if done:
                return None
            if time.monotonic() > deadline:
                raise TimeoutError(f"no byte of {self.path.name} within {timeout:g} s")
            self.finished.wait(POLL_SECONDS)

    def follow(self, file: BinaryIO) -> Iterator[bytes]:
        """``file``'s bytes, including those written after this began, to the end of the whole file."""
        with file:
            while True:
                chunk = file.read(CHUNK)
                if chunk:
                    yield chunk
                    continue
                if self.finished.is_set():
                    rest = file.read()  # what was written between the last read and the end
                    while rest:
                        yield rest
                        rest = file.read()
                    if self.error is not None:
                        log.warning("a download was cut short, and its client told so: %s", self.error)
                        raise CutShort(f"{self.path.name} could not be made to its end: {self.error}")
                    return
                self.finished.wait(POLL_SECONDS)


class ExportCache:
    """The folder of kept downloads, and the downloads being made anywhere in the storage."""

    def __init__(self, folder: Path, keep_seconds: float = KEEP_SECONDS, max_bytes: int = MAX_BYTES) -> None:
        self.folder = folder
        self.keep_seconds = keep_seconds
        self.max_bytes = max_bytes
        folder.mkdir(parents=True, exist_ok=True)
        for left in folder.glob("*.part"):  # cut short by a crash: nothing follows them now
            left.unlink(missing_ok=True)
        self._lock = threading.Lock()
        self._making: dict[Path, Making] = {}
        # How many files were made (not found kept): what a test of "made once" counts.
        self.made = 0
        # The recordings (storage-relative names) that downloads being made are reading, and how many read each.
        self._reading: Counter[str] = Counter()

    @contextlib.contextmanager
    def reading(self, names: Iterable[str]) -> Iterator[None]:
        """Say that a download reads the recordings ``names`` while in this block: retention leaves them
        alone meanwhile (see :meth:`in_use`), unless the disk is full."""
        held = list(names)
        with self._lock:
            self._reading.update(held)
        try:
            yield
        finally:
            with self._lock:
                self._reading.subtract(held)
                self._reading = +self._reading

    def in_use(self, name: str) -> bool:
        """Whether a download being made reads the recording ``name``."""
        with self._lock:
            return self._reading[name] > 0

    def name(self, camera: str, start: float, end: float, segments: Iterable[Segment]) -> str:
        """The file name of the download of ``camera`` from ``start`` to ``end``, made of ``segments``."""
        held = ",".join(f"{segment.id}:{segment.frames}" for segment in segments)
        digest = hashlib.sha256(f"{camera}|{start:.3f}|{end:.3f}|{held}".encode()).hexdigest()[:16]
        return f"{camera}-{int(start)}-{int(end)}-{digest}.mp4"

    def fetch(self, path: Path, make: Callable[[Path], object],
              turns: threading.Semaphore | None = None) -> Path | Making:
        """``path`` if it is whole, else its :class:`Making`: the one under way, or a new one, in which a
        thread calls ``make(part)`` to write it (raising to say it cannot be made: nothing is kept then). A
        new making takes one of ``turns`` until it is done, and raises :class:`Busy` when none is free."""
        with self._lock:
            if path.exists():
                os.utime(path)  # used: kept for another while
                return path
            making = self._making.get(path)
            if making is not None:
                return making
            if turns is not None and not turns.acquire(blocking=False):
                raise Busy(str(path.name))
            making = self._making[path] = Making(path)
        WORKERS.submit(lambda: self._make(making, make, turns))
        return making

    def get(self, name: str, make: Callable[[Path], object]) -> Path:
        """The kept file ``name`` in the folder, waiting while it is made; raises what ``make`` raised."""
        found = self.fetch(self.folder / name, make)
        if isinstance(found, Making):
            found.finished.wait()
            if found.error is not None:
                raise found.error
            return found.path
        return found

    def _make(self, making: Making, make: Callable[[Path], object], turns: threading.Semaphore | None) -> None:
        try:
            making.path.parent.mkdir(parents=True, exist_ok=True)
            make(making.part)
            os.replace(making.part, making.path)
            self.made += 1
        except BaseException as exc:  # noqa: BLE001 - said to every request that follows it
            making.error = exc
            making.part.unlink(missing_ok=True)
        finally:
            if turns is not None:
                turns.release()
            with self._lock:  # moved before it is forgotten: a request finds one or the other
                self._making.pop(making.path, None)
            if making.error is None and making.path.parent == self.folder:
                self.prune(keep=making.path)
            making.finished.set()
            give_back_memory()

    def total_bytes(self) -> int:
        """What the kept downloads take on the disk now."""
        total = 0
        for path in self.folder.glob("*.mp4"):
            try:
                total += path.stat().st_size
            except FileNotFoundError:
                continue
        return total

    def prune(self, keep: Path | None = None) -> None:
        """Delete what has not been used for :attr:`keep_seconds`, then the least recently used beyond
        :attr:`max_bytes` (never ``keep``, the file just made)."""
        now = time.time()
        files = []
        for path in self.folder.glob("*.mp4"):
            try:
                stat = path.stat()
            except FileNotFoundError:
                continue
            if now - stat.st_mtime > self.keep_seconds and path != keep:
                path.unlink(missing_ok=True)
            else:
                files.append((stat.st_mtime, stat.st_size, path))
        total = sum(size for _, size, _ in files)
        for _, size, path in sorted(files):
            if total <= self.max_bytes:
                break
            if path != keep:
                path.unlink(missing_ok=True)
                total -= size
