"""Read-only tokens for embedding one camera's stream or snapshot in another page (``?token=``).

A token is shown once, when it is made; the file keeps its SHA-256 (a
token is 192 random bits, so a fast hash is enough), its camera, a label
and when it was made. The server and ``camstream token ...`` share the
file: writes are locked and atomic, and the server reads it again when it
changes.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from ..config.values import ConfigError

log = logging.getLogger("camstream.auth")

PREFIX = "cst_"
MAX_TOKENS = 1000
MAX_LABEL = 100


@dataclass(frozen=True)
class Token:
    id: str
    camera: str
    label: str
    created: float
    digest: str

    def as_json(self) -> dict[str, object]:
        """What anyone may see of a token: everything but its digest."""
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
        """A new token for ``camera``: the record, and the token itself (shown once, kept nowhere)."""
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
        except FileNotFoundError:
            seen = (0, 0, 0)
        with self._lock:
            if seen != self._seen:
                try:
                    self._by_digest = {token.digest: token for token in self._read()}
                except ConfigError as exc:
                    log.error("%s; no token is accepted until it is mended or deleted", exc)
                    self._by_digest = {}
                self._seen = seen
            return self._by_digest

    def _read(self) -> list[Token]:
        try:
            rows = json.loads(self.path.read_text())
            return [Token(**row) for row in rows]
        except FileNotFoundError:
            return []
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"the tokens file {self.path} is damaged: {exc}") from None

    @contextmanager
    def _writing(self) -> Iterator[list[Token]]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_suffix(".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            tokens = self._read()
            yield tokens
            temporary = self.path.with_suffix(".tmp")
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as out:
                json.dump([asdict(token) for token in tokens], out, indent=1)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, self.path)
