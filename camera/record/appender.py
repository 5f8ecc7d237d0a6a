"""A new recording file written by whole records (a frame, a fragment), each straight to the OS."""

from __future__ import annotations

import os
from pathlib import Path


class Appender:
    """Appends records to a new file at ``path``, unbuffered: a record is in the OS's hands as soon as
    :meth:`_append` returns, so a process killed at any moment keeps every record before it. A short write (a
    disk that filled up) leaves no part of the record behind."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        # Made new, never through a symlink someone left where the file goes (O_EXCL refuses even a dangling one).
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        self._file = os.fdopen(os.open(path, flags, 0o666), "wb", buffering=0)  # closed in close()
        self.size = 0
        self.frames = 0
        self.first: float | None = None
        self.last: float | None = None

    def _append(self, data: bytes) -> None:
        written = self._file.write(data)
        if written != len(data):
            self._file.truncate(self.size)
            raise OSError(28, "No space left on device (short write)")
        self.size += len(data)

    def close(self) -> None:
        """Flush to the disk and close; safe to call twice."""
        if self._file.closed:
            return
        try:
            os.fsync(self._file.fileno())
        finally:
            self._file.close()
