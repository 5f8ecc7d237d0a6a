"""Reading the small JSON files sign-in keeps (``sessions.json``, ``tokens.json``), whatever they hold.

Anyone who can write the data folder, a disk error or a hand edit may leave
such a file damaged: deeply nested (json raises RecursionError), a number
too large for a float (OverflowError), the wrong types, or gigabytes. None
of that may stop the server or answer 500: a damaged file is set aside as
``<name>.damaged-<time>`` (kept, for whoever wants to look, like a damaged
recording index) and the server goes on without it.
"""

from __future__ import annotations

import errno
import json
import math
import os
import stat
import time
from pathlib import Path
from typing import Any

# A file made new, never through a symlink someone left where it goes (the data folder is the storage folder,
# which others may write to): O_EXCL refuses any link, even a dangling one.
NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


class Damaged(ValueError):
    """A file that is there but is not what it should be; the message says how, in a few words."""


def read_json(path: Path, max_bytes: int) -> Any:
    """The JSON in ``path``; FileNotFoundError if there is none, :class:`Damaged` for a file larger than
    ``max_bytes``, for anything that is not JSON (nested too deeply, numbers too large, bytes that are no
    UTF-8), and for anything but a regular file (a symlink is not followed); OSError for a file that cannot be
    read at all (a permission)."""
    try:
        handle = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise Damaged("a symlink, which is not followed") from None
        raise
    with os.fdopen(handle, "rb") as file:
        if not stat.S_ISREG(os.fstat(file.fileno()).st_mode):
            raise Damaged("not a regular file")
        if os.fstat(file.fileno()).st_size > max_bytes:
            raise Damaged(f"larger than {max_bytes} bytes")
        data = file.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise Damaged(f"larger than {max_bytes} bytes")
    try:
        return json.loads(data)
    except RecursionError:
        raise Damaged("nested too deeply") from None
    except (ValueError, OverflowError, MemoryError) as exc:  # UnicodeDecodeError is a ValueError
        raise Damaged(f"not JSON: {str(exc)[:80]}") from None


def finite(value: object) -> float:
    """A JSON number as a float; :class:`Damaged` for anything else (a bool, a string, 10^400, NaN)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise Damaged(f"a number was expected, not {type(value).__name__}")
    try:
        number = float(value)
    except OverflowError:
        raise Damaged("a number too large") from None
    if not math.isfinite(number):
        raise Damaged("a number that is not finite")
    return number


def text(value: object, longest: int) -> str:
    """A JSON string of at most ``longest`` characters; :class:`Damaged` for anything else."""
    if not isinstance(value, str) or len(value) > longest:
        raise Damaged(f"a text of at most {longest} characters was expected")
    return value


def set_aside(path: Path) -> Path:
    """Rename a damaged ``path`` to ``<name>.damaged-<time>`` beside it (never deleted); the new name."""
    aside = path.with_name(f"{path.name}.damaged-{time.strftime('%Y%m%d-%H%M%S')}")
    number = 1
    while os.path.lexists(aside):
        number += 1
        aside = path.with_name(f"{path.name}.damaged-{time.strftime('%Y%m%d-%H%M%S')}-{number}")
    os.replace(path, aside)
    return aside
