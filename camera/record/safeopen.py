"""Opening a file of the storage folder without following a symlink.

Whoever else may write into the storage folder (a shared disk, a NAS)
could put a symlink where a recording goes; camstream repairs (truncates),
reads and serves its files, and must never do that to a link's target.
"""

from __future__ import annotations

import errno
import os
import stat
from typing import BinaryIO


def open_nofollow(path: str | os.PathLike[str], write: bool = False) -> BinaryIO:
    """``path`` opened for reading (or for reading and writing, to repair it), never through a symlink:
    OSError (ELOOP) if ``path`` itself is a symlink (``O_NOFOLLOW``), OSError (EINVAL) for anything but a
    regular file (a FIFO would block the opener, a device is nobody's recording)."""
    flags = (os.O_RDWR if write else os.O_RDONLY) | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
    handle = os.open(path, flags)
    try:
        if not stat.S_ISREG(os.fstat(handle).st_mode):
            raise OSError(errno.EINVAL, "not a regular file", os.fspath(path))
        os.set_blocking(handle, True)
        return os.fdopen(handle, "r+b" if write else "rb")
    except BaseException:
        os.close(handle)
        raise
