"""Users, their roles and cameras, and checking their passwords (Werkzeug's hashes).

A user is given as ``NAME:HASH[:ROLE[:CAMERA,CAMERA]]`` (``--user``,
``CAMSTREAM_USERS`` with entries separated by spaces) or as a table
``[users.NAME]`` in the config file. Werkzeug's hashes hold colons
(``scrypt:32768:8:1$salt$digest``), so the name is taken from the front and
the role and cameras from the back, after the digest.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass

from werkzeug.security import check_password_hash, generate_password_hash

from ..config.values import NAME_PATTERN, ConfigError, command

ADMIN, VIEWER = "admin", "viewer"
ROLES = (ADMIN, VIEWER)
USER_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}", re.ASCII)
# What Werkzeug's generate_password_hash makes: method$salt$digest.
# An example file's password_hash before someone makes one: a user nobody can sign in as, until then.
PLACEHOLDER = "CHANGE-ME"
METHOD_PATTERN = re.compile(r"(scrypt:\d+:\d+:\d+|pbkdf2:sha\d+:\d+)")
HASH_PATTERN = re.compile(r"(scrypt:\d+:\d+:\d+|pbkdf2:sha\d+:\d+)\$[A-Za-z0-9./+]+\$[0-9a-f]{32,256}")
# Passwords checked right, remembered so a client that sends Basic on every request costs one hash check.
VERIFIED_CACHE = 1024


@dataclass(frozen=True)
class User:
    name: str
    password_hash: str
    role: str = VIEWER
    # None: every camera.
    cameras: frozenset[str] | None = None

    def __repr__(self) -> str:  # never the hash, in a log or an error
        return f"User({self.name!r}, role={self.role!r})"

    @property
    def placeholder(self) -> bool:
        """True while the password hash is still the example's ``CHANGE-ME``: nobody signs in as this user."""
        return self.password_hash == PLACEHOLDER


def parse_user(entry: str) -> User:
    """``NAME:HASH[:ROLE[:CAMERA,CAMERA]]``; :class:`ConfigError` that never repeats the hash."""
    name, _, rest = entry.strip().partition(":")
    head, dollar, tail = rest.rpartition("$")
    digest, *extra = tail.split(":")
    if name and not dollar and METHOD_PATTERN.match(rest):
        raise ConfigError(f"user {name[:40]!r}: the hash lost its $ parts (a shell replaces $... inside double "
                          "quotes): put NAME:HASH in single quotes, --user 'ada:scrypt:...$...$...'")
    if not name or not dollar or len(extra) > 2:
        raise ConfigError(f"user {name[:40] or '(no name)'!r} is not NAME:HASH[:ROLE[:CAMERA,...]] "
                          f"(make the hash with: {command('hash-password')})")
    role = extra[0] if extra and extra[0] else VIEWER
    cameras = [camera.strip() for camera in extra[1].split(",") if camera.strip()] if len(extra) > 1 else []
    return make_user(name, f"{head}${digest}", role, cameras)


def make_user(name: str, password_hash: str, role: str = VIEWER, cameras: list[str] | None = None) -> User:
    if not USER_PATTERN.fullmatch(name):
        raise ConfigError(f"user name {name[:40]!r} must be up to 64 letters, digits, '.', '_', '-' or '@'")
    if not HASH_PATTERN.fullmatch(password_hash) and password_hash != PLACEHOLDER:
        raise ConfigError(f"user {name!r}: the password hash is not one Werkzeug made "
                          f"(make it with: {command('hash-password')})")
    if role not in ROLES:
        raise ConfigError(f"user {name!r}: role must be admin or viewer, not {role[:20]!r}")
    for camera in cameras or ():
        if not _camera_name(camera):
            raise ConfigError(f"user {name!r}: {camera[:40]!r} is not a camera name (NAME, or PEER.NAME for a "
                              "camera of a peer)")
    if cameras and role == ADMIN:
        raise ConfigError(f"user {name!r}: an admin sees every camera; give the cameras to a viewer")
    return User(name, password_hash, role, frozenset(cameras) if cameras else None)


def _camera_name(camera: str) -> bool:
    """A camera's name: a local one's, or ``PEER.CAMERA`` for a camera of a hub's peer (webapp/runtime/peers.py)."""
    peer, dot, remote = camera.partition(".")
    return bool(NAME_PATTERN.fullmatch(peer)) and (not dot or bool(NAME_PATTERN.fullmatch(remote)))


def users_from(setting: object, tables: Mapping[str, Mapping[str, object]] | None = None) -> dict[str, User]:
    """Users from ``USERS`` (a string of space-separated entries, or a list) and the config file's tables."""
    if isinstance(setting, str):
        entries = setting.split()
    elif setting:
        entries = [str(entry) for entry in setting]  # type: ignore[union-attr]
    else:
        entries = []
    users = [parse_user(entry) for entry in entries]
    for name, table in (tables or {}).items():
        users.append(make_user(name, str(table["PASSWORD_HASH"]), str(table.get("ROLE") or VIEWER),
                               list(table.get("CAMERAS") or [])))  # type: ignore[call-overload]
    found: dict[str, User] = {}
    for user in users:
        if user.name in found:
            raise ConfigError(f"user {user.name!r} is given twice")
        found[user.name] = user
    return found


def hash_password(password: str) -> str:
    return generate_password_hash(password)


class Passwords:
    """Checks passwords against ``users``; an unknown name costs what a wrong password costs."""

    def __init__(self) -> None:
        self._dummy = generate_password_hash("not a password")
        self._verified: OrderedDict[bytes, str] = OrderedDict()
        self._lock = threading.Lock()

    def check(self, users: Mapping[str, User], name: str, password: str) -> User | None:
        user = users.get(name)
        if user is not None and user.placeholder:
            user = None  # checked against the dummy all the same: as slow as any other wrong password
        stored = user.password_hash if user is not None else self._dummy
        key = hashlib.sha256(f"{name}\0{password}\0{stored}".encode(errors="surrogatepass")).digest()
        with self._lock:
            if key in self._verified:
                self._verified.move_to_end(key)
                return user
        if not check_password_hash(stored, password) or user is None:
            return None
        with self._lock:
            self._verified[key] = name
            while len(self._verified) > VERIFIED_CACHE:
                self._verified.popitem(last=False)
        return user
