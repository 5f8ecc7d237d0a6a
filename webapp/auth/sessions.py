"""Sessions kept on the server, so that signing out ends a session everywhere, a copied cookie included.

The signed cookie carries a random session id; the server keeps a SHA-256
of each live id with its user and expiry in ``sessions.json`` in the data
folder (written whole, atomically), so a restart keeps everyone signed in
while an id the server no longer holds opens nothing. A new password or a
removed user ends that user's sessions (:meth:`SessionStore.end_users`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import secrets
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from .jsonfile import NEW_FILE, Damaged, finite, read_json, set_aside, text

log = logging.getLogger("camstream.auth")

# Live sessions kept at most, and per user: signing in again and again cannot grow the file past this.
MAX_SESSIONS = 10_000
MAX_PER_USER = 100
EXPIRY_GRACE = 60.0
# A full file is about 1 MB (a row is some 100 bytes); a larger one is not one camstream wrote.
MAX_FILE_BYTES = 4 * 1024 * 1024
_DIGEST = re.compile(r"[0-9a-f]{64}")


def _digest(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


class _Live(NamedTuple):
    user: str
    expires: float
    row: str  # the session's row of the file, made once: writing 10,000 of them is then a join, not a dump


def _live(digest: str, user: str, expires: float) -> _Live:
    return _Live(user, expires, f'["{digest}",{json.dumps(user)},{round(expires, 3)!r}]')  # a digest is hex


class SessionStore:
    """Live sessions: digest of the id -> (user, expiry), in memory and in ``path``.

    Kept in the order they end (every session lasts ``lifetime``), so the
    oldest, to drop when full or expired, is the first: a login costs the
    same with 10,000 sessions as with one.
    """

    def __init__(self, path: Path, lifetime: float, clock: Callable[[], float] = time.time) -> None:
        self.path = path
        self.lifetime = lifetime
        self.clock = clock
        self._lock = threading.Lock()
        self._live: dict[str, _Live] = self._read()
        self._by_user: dict[str, set[str]] = {}
        for digest, entry in self._live.items():
            self._by_user.setdefault(entry.user, set()).add(digest)

    def open(self, user: str) -> str:
        """A new session of ``user``; its id, for the cookie (kept here only as a digest)."""
        session_id = secrets.token_urlsafe(32)
        with self._lock:
            self._drop_expired()
            mine = self._by_user.setdefault(user, set())
            if len(mine) >= MAX_PER_USER:  # the user's oldest sessions make room
                oldest = sorted(mine, key=lambda digest: self._live[digest].expires)
                for digest in oldest[:len(mine) - MAX_PER_USER + 1]:
                    self._drop(digest)
            while len(self._live) >= MAX_SESSIONS:
                self._drop(next(iter(self._live)))
            # A little past the cookie's own end, so that an ended session is one the cookie says has ended.
            digest = _digest(session_id)
            self._live[digest] = _live(digest, user, self.clock() + self.lifetime + EXPIRY_GRACE)
            self._by_user.setdefault(user, set()).add(digest)
            self._write()
        return session_id

    def user_of(self, session_id: object) -> str | None:
        """The user of a live session; None for an id that is not one (ended, expired, or never made)."""
        if not isinstance(session_id, str) or len(session_id) > 100:
            return None
        found = self._live.get(_digest(session_id))
        if found is None or found.expires <= self.clock():
            return None
        return found.user

    def end(self, session_id: object) -> None:
        """Sign a session out (on logout)."""
        if not isinstance(session_id, str):
            return
        with self._lock:
            if self._drop(_digest(session_id)):
                self._write()

    def end_users(self, keep: Callable[[str], bool]) -> int:
        """End the sessions of every user ``keep`` says no to (removed, or with a new password); how many."""
        with self._lock:
            ended = [digest for digest, entry in self._live.items() if not keep(entry.user)]
            for digest in ended:
                self._drop(digest)
            if ended:
                self._write()
        return len(ended)

    @property
    def count(self) -> int:
        return len(self._live)

    def _drop(self, digest: str) -> bool:
        entry = self._live.pop(digest, None)
        if entry is None:
            return False
        mine = self._by_user.get(entry.user)
        if mine is not None:
            mine.discard(digest)
            if not mine:
                del self._by_user[entry.user]
        return True

    def _drop_expired(self) -> None:
        now = self.clock()
        while self._live:
            digest, entry = next(iter(self._live.items()))
            if entry.expires > now:
                break
            self._drop(digest)

    def _read(self) -> dict[str, _Live]:
        """The live sessions in the file, oldest first, at most :data:`MAX_SESSIONS` (the newest) and
        :data:`MAX_PER_USER` a user. A damaged file is set aside and everyone signs in again."""
        try:
            rows = _rows(read_json(self.path, MAX_FILE_BYTES))
        except (FileNotFoundError, NotADirectoryError):
            return {}
        except Damaged as exc:
            try:
                aside = set_aside(self.path)
            except OSError as error:
                log.error("the sessions file %s is damaged (%s) and cannot be set aside (%s): everyone signs in "
                          "again", self.path, exc, error.strerror or error)
            else:
                log.error("the sessions file %s is damaged (%s): set aside as %s; everyone signs in again",
                          self.path, exc, aside.name)
            return {}
        except OSError as exc:
            log.error("the sessions file %s cannot be read (%s): everyone signs in again", self.path,
                      exc.strerror or exc)
            return {}
        now = self.clock()
        latest = now + self.lifetime + EXPIRY_GRACE  # no session of this server ends later
        rows = sorted(((min(expires, latest), digest, name) for digest, name, expires in rows if expires > now),
                      reverse=True)
        kept: dict[str, _Live] = {}
        per_user: dict[str, int] = {}
        for expires, digest, name in rows:
            if len(kept) >= MAX_SESSIONS:
                break
            if per_user.get(name, 0) < MAX_PER_USER and digest not in kept:
                per_user[name] = per_user.get(name, 0) + 1
                kept[digest] = _live(digest, name, expires)
        return dict(reversed(kept.items()))

    def _write(self) -> None:
        """Write the live sessions whole; a disk that refuses keeps them in memory and says so."""
        temporary = self.path.with_suffix(".tmp")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            temporary.unlink(missing_ok=True)  # made new below: never written through a symlink left there
            fd = os.open(temporary, NEW_FILE, 0o600)
            with os.fdopen(fd, "w") as out:
                out.write("[" + ",".join(entry.row for entry in self._live.values()) + "]")
            os.replace(temporary, self.path)
        except OSError as exc:
            log.warning("cannot keep the sessions in %s (%s): a restart will sign everyone out", self.path,
                        exc.strerror or exc)


def _rows(data: object) -> list[tuple[str, str, float]]:
    """The file's rows, ``[digest, user, expiry]`` each; :class:`Damaged` for anything else in it."""
    if not isinstance(data, list):
        raise Damaged("a list of sessions was expected")
    rows = []
    for row in data:
        if not isinstance(row, list) or len(row) != 3:
            raise Damaged("a session is [digest, user, expiry]")
        digest, name, expires = row
        if not isinstance(digest, str) or not _DIGEST.fullmatch(digest):
            raise Damaged("a session's digest is 64 hex digits")
        rows.append((digest, text(name, 200), finite(expires)))
    return rows
