"""MP4 downloads of continuous recording, made once and kept a while: a player that seeks (a range request)
or a second download of the same span reads the file, instead of having it encoded again.

A download is named by its camera, span and what the segments in it held when it was made (their ids and
frame counts), so a span still being recorded gets a new file once it holds more. Files are kept for
:data:`KEEP_SECONDS` after their last use and at most :data:`MAX_BYTES` in all, the least recently used going
first; a request for a file another request is making waits for it rather than making it too.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from .index import Segment

# How long a download is kept after it was last asked for, and the most all of them may take on the disk.
KEEP_SECONDS = 3600.0
MAX_BYTES = 1 << 30


class ExportCache:
    """The folder of kept downloads."""

    def __init__(self, folder: Path, keep_seconds: float = KEEP_SECONDS, max_bytes: int = MAX_BYTES) -> None:
        self.folder = folder
        self.keep_seconds = keep_seconds
        self.max_bytes = max_bytes
        folder.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._making: dict[str, threading.Lock] = {}
        # How many files were made (not found kept): what a test of "made once" counts.
        self.made = 0

    def name(self, camera: str, start: float, end: float, segments: Iterable[Segment]) -> str:
        """The file name of the download of ``camera`` from ``start`` to ``end``, made of ``segments``."""
        held = ",".join(f"{segment.id}:{segment.frames}" for segment in segments)
        digest = hashlib.sha256(f"{camera}|{start:.3f}|{end:.3f}|{held}".encode()).hexdigest()[:16]
        return f"{camera}-{int(start)}-{int(end)}-{digest}.mp4"

    def get(self, name: str, make: Callable[[Path], object]) -> Path:
        """The kept file ``name``, made by ``make(path)`` first if it is not kept (``make`` raises to say it
        cannot be made; nothing is kept then)."""
        path = self.folder / name
        with self._lock:
            making = self._making.setdefault(name, threading.Lock())
        try:
            with making:
                if path.exists():
                    os.utime(path)  # used: kept for another while
                    return path
                make(path)
                self.made += 1
        finally:
            with self._lock:  # no lock kept for a name nobody is making (a name per request must not pile up)
                if self._making.get(name) is making and not making.locked():
                    del self._making[name]
        self.prune(keep=path)
        return path

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
