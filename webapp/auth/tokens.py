"""Read-only tokens for embedding one camera's stream or snapshot in another page (``?token=``), and peer
tokens, which let a hub (webapp/runtime/peers.py) read every camera of this box.

A peer token's camera is :data:`PEER_CAMERA`, which no camera can be named
(a camera's name starts with a letter or digit), so an old camstream that
reads the file sees a token for no camera, never one for all of them.

A token is shown once, when it is made; the file keeps its SHA-256 (a
token is 192 random bits, so a fast hash is enough), its camera, a label
and when it was made. The server and ``camstream token ...`` share the
file: writes are locked and atomic, and the server reads it again when it
changes.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import logging
import os
import re
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from ..config.values import ConfigError
from .jsonfile import NEW_FILE, Damaged, finite, read_json, set_aside, text

log = logging.getLogger("camstream.auth")

PREFIX = "cst_"
MAX_TOKENS = 1000
MAX_LABEL = 100
# 1000 tokens with the longest labels, escaped, take well under this; a larger file is not one camstream wrote.
MAX_FILE_BYTES = 2 * 1024 * 1024
FIELDS = frozenset(("id", "camera", "label", "created", "digest"))
_DIGEST = re.compile(r"[0-9a-f]{64}")
# The camera of a peer token: every camera, read-only (webapp/auth/guard.py says which routes).
PEER_CAMERA = "*"


@dataclass(frozen=True)
class Token:
    id: str
    camera: str
    label: str
    created: float
    digest: str

    @property
    def peer(self) -> bool:
        """A peer token: read-only, every camera (a hub's credential), not one camera's."""
        return self.camera == PEER_CAMERA

    def as_json(self) -> dict[str, object]:
        """What anyone may see of a token: everything but its digest (a peer token's camera is ``*``)."""
        return {"id": self.id, "camera": self.camera, "label": self.label, "created": round(self.created, 3)}


def digest_of(token: str) -> str:
    return hashlib.sha256(token.encode(errors="surrogatepass")).hexdigest()


class TokenStore:
    """The tokens in ``path`` (a JSON file), read again whenever the file changes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._seen: tuple[int, int, int] | None = None
        self._by_digest: dict[str, Token] = {}
        # Where a damaged file was set aside, if one was (the command line says so).
        self.damaged_as: Path | None = None

    def find(self, token: str) -> Token | None:
        if not token.startswith(PREFIX) or len(token) > 100:
            return None
        return self._current().get(digest_of(token))

    def alive(self, token_id: str) -> bool:
        """Whether the token of that id is still there (not revoked, here or by the CLI)."""
        return any(token.id == token_id for token in self._current().values())

    def all(self) -> list[Token]:
        return sorted(self._current().values(), key=lambda token: token.created)

    def create(self, camera: str, label: str = "") -> tuple[Token, str]:
        """A new token for ``camera`` (:data:`PEER_CAMERA` for a peer token): the record, and the token itself
        (shown once, kept nowhere)."""
        label = label.strip()[:MAX_LABEL]
        secret = PREFIX + secrets.token_urlsafe(24)
        token = Token(secrets.token_hex(6), camera, label, time.time(), digest_of(secret))
        with self._writing() as tokens:
            if len(tokens) >= MAX_TOKENS:
                raise ConfigError(f"there are {MAX_TOKENS} tokens already; revoke some first")
            tokens.append(token)
        return token, secret

    def revoke(self, token_id: str) -> Token | None:
        with self._writing() as tokens:
            found = next((token for token in tokens if token.id == token_id), None)
            if found is not None:
                tokens.remove(found)
        return found

    def _current(self) -> dict[str, Token]:
        try:
            stat = self.path.stat()
            # Every write replaces the file: a new inode, even within one tick of the clock.
            seen = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
        except OSError:
            seen = (0, 0, 0)
        with self._lock:
            if seen != self._seen:
                try:
                    self._by_digest = {token.digest: token for token in self._read()}
                except Damaged as exc:
                    self._set_aside(exc, seen)
                    self._by_digest = {}
                except OSError as exc:
                    log.error("the tokens file %s cannot be read (%s): no token is accepted until it can",
                              self.path, exc.strerror or exc)
                    self._by_digest = {}
                self._seen = seen
            return self._by_digest

    def _read(self) -> list[Token]:
        """The tokens in the file; :class:`Damaged` for a file that holds anything but tokens."""
        try:
            return _tokens(read_json(self.path, MAX_FILE_BYTES))
        except (FileNotFoundError, NotADirectoryError):
            return []

    def _set_aside(self, damage: Damaged, seen: tuple[int, int, int] | None) -> None:
        """Rename the damaged file (the one that was read: ``seen`` is its inode, time and size, None if it is
        read under the lock already), so that tokens can be made again; say so in one line."""
        try:
            with self._locked() if seen is not None else _nothing():
                now = self.path.stat()
                if seen is not None and (now.st_ino, now.st_mtime_ns, now.st_size) != seen:
                    return  # written again since: read again next time
                self.damaged_as = set_aside(self.path)
        except OSError as exc:
            log.error("the tokens file %s is damaged (%s) and cannot be set aside (%s): no token is accepted "
                      "until it is mended or deleted", self.path, damage, exc.strerror or exc)
            return
        log.error("the tokens file %s is damaged (%s): set aside as %s; no token is accepted until new ones are "
                  "made", self.path, damage, self.damaged_as.name)

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """Held by whoever writes the file, the server or ``camstream token``."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        path, flags = self.path.with_suffix(".lock"), os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
        try:
            handle = os.open(path, flags, 0o600)
        except OSError as exc:
            if exc.errno != errno.ELOOP:
                raise
            path.unlink()  # a symlink left where the lock goes: the link goes, what it points at is not touched
            handle = os.open(path, flags, 0o600)
        with os.fdopen(handle, "r+b") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    @contextmanager
    def _writing(self) -> Iterator[list[Token]]:
        with self._locked():
            try:
                tokens = self._read()
            except Damaged as exc:
                self._set_aside(exc, None)
                if os.path.lexists(self.path):  # it could not be set aside: leave it as it is
                    raise ConfigError(f"the tokens file {self.path} is damaged ({exc})") from None
                tokens = []
            yield tokens
            temporary = self.path.with_suffix(".tmp")
            temporary.unlink(missing_ok=True)  # made new below: never written through a symlink left there
            fd = os.open(temporary, NEW_FILE, 0o600)
            with os.fdopen(fd, "w") as out:
                json.dump([asdict(token) for token in tokens], out, indent=1)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, self.path)


@contextmanager
def _nothing() -> Iterator[None]:
    yield


def _tokens(data: object) -> list[Token]:
    """The tokens of the file's JSON; :class:`Damaged` for anything else in it, or more than there may be."""
    if not isinstance(data, list):
        raise Damaged("a list of tokens was expected")
    if len(data) > MAX_TOKENS:
        raise Damaged(f"more than {MAX_TOKENS} tokens")
    tokens = []
    for row in data:
        if not isinstance(row, dict) or set(row) != FIELDS:
            raise Damaged(f"a token has the fields {', '.join(sorted(FIELDS))}")
        digest = text(row["digest"], 64)
        if not _DIGEST.fullmatch(digest):
            raise Damaged("a token's digest is 64 hex digits")
        tokens.append(Token(text(row["id"], 64), text(row["camera"], 64), text(row["label"], MAX_LABEL),
                            finite(row["created"]), digest))
    return tokens
