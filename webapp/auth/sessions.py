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
import secrets
import threading
import time
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger("camstream.auth")

# Live sessions kept at most, and per user: signing in again and again cannot grow the file past this.
MAX_SESSIONS = 10_000
MAX_PER_USER = 100
EXPIRY_GRACE = 60.0


def _digest(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


class SessionStore:
    """Live sessions: digest of the id -> (user, expiry), in memory and in ``path``."""

    def __init__(self, path: Path, lifetime: float, clock: Callable[[], float] = time.time) -> None:
        self.path = path
        self.lifetime = lifetime
        self.clock = clock
        self._lock = threading.Lock()
        self._live: dict[str, tuple[str, float]] = self._read()

    def open(self, user: str) -> str:
        """A new session of ``user``; its id, for the cookie (kept here only as a digest)."""
        session_id = secrets.token_urlsafe(32)
        with self._lock:
            self._drop_expired()
            mine = sorted((expires, digest) for digest, (name, expires) in self._live.items() if name == user)
            for _, digest in mine[:max(0, len(mine) - MAX_PER_USER + 1)]:
                del self._live[digest]  # the user's oldest sessions make room
            while len(self._live) >= MAX_SESSIONS:
                del self._live[min(self._live, key=lambda key: self._live[key][1])]
            # A little past the cookie's own end, so that an ended session is one the cookie says has ended.
            self._live[_digest(session_id)] = (user, self.clock() + self.lifetime + EXPIRY_GRACE)
            self._write()
        return session_id

    def user_of(self, session_id: object) -> str | None:
        """The user of a live session; None for an id that is not one (ended, expired, or never made)."""
        if not isinstance(session_id, str) or len(session_id) > 100:
            return None
        found = self._live.get(_digest(session_id))
        if found is None or found[1] <= self.clock():
            return None
        return found[0]

    def end(self, session_id: object) -> None:
        """Sign a session out (on logout)."""
        if not isinstance(session_id, str):
            return
        with self._lock:
            if self._live.pop(_digest(session_id), None) is not None:
                self._write()

    def end_users(self, keep: Callable[[str], bool]) -> int:
        """End the sessions of every user ``keep`` says no to (removed, or with a new password); how many."""
        with self._lock:
            ended = [digest for digest, (name, _) in self._live.items() if not keep(name)]
            for digest in ended:
                del self._live[digest]
            if ended:
                self._write()
        return len(ended)

    @property
    def count(self) -> int:
        return len(self._live)

    def _drop_expired(self) -> None:
        now = self.clock()
        for digest in [digest for digest, (_, expires) in self._live.items() if expires <= now]:
            del self._live[digest]

    def _read(self) -> dict[str, tuple[str, float]]:
        try:
            rows = json.loads(self.path.read_text())
            live = {str(digest): (str(name), float(expires)) for digest, name, expires in rows}
        except (FileNotFoundError, NotADirectoryError):
            return {}
        except (OSError, ValueError, TypeError) as exc:
            log.error("the sessions file %s cannot be read (%s): everyone signs in again", self.path, exc)
            return {}
        now = self.clock()
        return {digest: entry for digest, entry in live.items() if entry[1] > now}

    def _write(self) -> None:
        """Write the live sessions whole; a disk that refuses keeps them in memory and says so."""
        temporary = self.path.with_suffix(".tmp")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as out:
                json.dump([[digest, name, round(expires, 3)] for digest, (name, expires) in self._live.items()], out)
            os.replace(temporary, self.path)
        except OSError as exc:
            log.warning("cannot keep the sessions in %s (%s): a restart will sign everyone out", self.path,
                        exc.strerror or exc)
