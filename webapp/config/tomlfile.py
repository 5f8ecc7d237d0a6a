"""Reading a ``camstream.toml``: every setting, globally and per camera, checked with the line it is on.

The keys are the settings' names in lower case (``fps``, ``max_viewers``,
``detect_confidence``, ...) at the top level; each camera is a table
``[cameras.NAME]`` with its ``source`` and any of the per-camera settings,
which override the top-level ones for that camera. A top-level ``detect``
or ``record`` is the default of every camera table; a table says ``"none"``
to have none. Users are tables ``[users.NAME]`` with ``password_hash``,
``role`` and ``cameras`` (see webapp/auth/users.py). A wrong key or value
is a :class:`ConfigError` naming the file, the line and the key.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from camera.suggest import closest, did_you_mean

from . import zones
from .table import BOOL, CAMERA_KEYS, CHOICE, ENTRIES, GLOBAL_KEYS, NAMES, SIZE, SOURCE, TEXT, Setting
from .values import NAME_PATTERN, NAME_RULE, ConfigError, command, parse_size

# A table [users.NAME] (see webapp/auth/users.py): its keys' kinds.
USER_KEYS: dict[str, str] = {"password_hash": TEXT, "role": TEXT, "cameras": NAMES}
# Top-level settings that every camera table inherits unless it gives its own.
INHERITED = ("detect", "record")
# What a camera table says to have no detector or no recording.
NONE = "none"
# The tables a file may have: [cameras.NAME] and [users.NAME].
TABLES = ("cameras", "users")


@dataclass
class ConfigFile:
    """A file's settings as app config keys (``FPS``), and each camera table's by camera name."""

    path: str | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    cameras: dict[str, dict[str, Any]] = field(default_factory=dict)
    users: dict[str, dict[str, Any]] = field(default_factory=dict)


def load(path: str | Path) -> ConfigFile:
    """Read and check the file at ``path``; :class:`ConfigError` for anything wrong with it."""
    shown = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"config file {shown!r} cannot be read: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"config file {shown!r} is not UTF-8 text") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{shown}: {exc}") from None
    except RecursionError:  # tomllib reads nested arrays and tables by recursion
        raise ConfigError(f"{shown}: a value is nested too deeply (arrays or tables within each other)") from None
    return parse(data, _Lines(shown, text))


def parse(data: Mapping[str, Any], lines: _Lines) -> ConfigFile:
    result = ConfigFile(lines.path)
    tables = data.get("cameras", {})
    if not isinstance(tables, Mapping):
        raise lines.error(("cameras",), "cameras must be tables, one per camera: [cameras.NAME]")
    for key, value in data.items():
        if key == "peers" and isinstance(value, Mapping):
            result.settings["PEERS"] = _peer_tables(value, lines)
        elif key not in ("cameras", "users"):
            if isinstance(value, Mapping) and key not in GLOBAL_KEYS:
                raise _unknown_table(key, value, lines)
            result.settings[key.upper()] = _value(key, value, GLOBAL_KEYS, lines, (key,), "at the top level")
    users = data.get("users", {})
    if not isinstance(users, Mapping) or not all(isinstance(table, Mapping) for table in users.values()):
        raise lines.error(("users",), "users must be tables, one per user: [users.NAME] with password_hash")
    for name, table in users.items():
        if "password_hash" not in table:
            raise lines.error(("users", name), f"user {name!r} has no password_hash (make one: {command('hash-password')})")
        result.users[name] = {key.upper(): _value(key, value, USER_KEYS, lines, ("users", name, key),
                                                    "in a user table")
                              for key, value in table.items()}
    for name, table in tables.items():
        where = ("cameras", name)
        if not NAME_PATTERN.fullmatch(name):
            raise lines.error(where, f"camera name {name!r} {NAME_RULE}")
        if not isinstance(table, Mapping):
            raise lines.error(where, f"camera {name!r} must be a table: [cameras.{name}] with its source")
        if "source" not in table:
            raise lines.error(where, f"camera {name!r} has no source")
        own = {key.upper(): _value(key, value, CAMERA_KEYS, lines, (*where, key), "in a camera table") for key, value in table.items()}
        result.cameras[name] = own
    if result.cameras and "SOURCE" in result.settings:
        raise lines.error(("source",), "source at the top level is for a file without camera tables; "
                          "give it in a [cameras.NAME] table")
    if result.cameras:
        result.settings["CAMERAS"] = {name: own.pop("SOURCE") for name, own in result.cameras.items()}
        for key in INHERITED:
            default = result.settings.pop(key.upper(), None)
            for own in result.cameras.values():
                if default is not None:
                    own.setdefault(key.upper(), default)
    return result


# A table [peers.NAME] (see webapp/runtime/peers.py): the peer's URL and the hub's credential there.
PEER_KEYS = ("url", "token", "user", "password")


def _peer_tables(tables: Mapping[str, Any], lines: _Lines) -> dict[str, dict[str, str]]:
    """``[peers.NAME]`` tables, each with ``url`` and a ``token`` or a ``user`` and ``password`` of the peer;
    the errors name the key, never its value (a credential)."""
    peers: dict[str, dict[str, str]] = {}
    for name, table in tables.items():
        where = ("peers", name)
        if not isinstance(table, Mapping):
            raise lines.error(where, f"peer {name!r} must be a table: [peers.{name}] with its url")
        for key, value in table.items():
            if key not in PEER_KEYS:
                raise lines.error((*where, key), f"unknown key {key!r} in a peer table{did_you_mean(key, PEER_KEYS)}")
            if not isinstance(value, str) or not value or len(value) > 2048:
                raise lines.error((*where, key), f"{key} of peer {name!r} must be text")
        if "url" not in table:
            raise lines.error(where, f"peer {name!r} has no url")
        if ("user" in table) != ("password" in table) or ("token" in table and "user" in table):
            raise lines.error(where, f"peer {name!r} takes a token, or a user and a password")
        peers[name] = dict(table)
    return peers


def _unknown_table(key: str, value: Mapping[str, Any], lines: _Lines) -> ConfigError:
    """The error for a table the file may not have, such as ``[camera.porch]``: it names the one meant,
    ``[cameras.porch]``, written out, as that is what the reader has to type."""
    inner = next(iter(value), None)
    where = (key, inner) if isinstance(inner, str) and isinstance(value.get(inner), Mapping) else (key,)
    shown = ".".join(where)
    found = closest(key, TABLES)
    if found is None:
        return lines.error(where, f"unknown table [{shown}]: a file's tables are [cameras.NAME] and [users.NAME]")
    meant = ".".join((found, *where[1:])) if len(where) > 1 else f"{found}.NAME"
    return lines.error(where, f"unknown table [{shown}] (did you mean [{meant}]?)")


def _value(key: str, value: Any, known: Mapping[str, Setting] | Mapping[str, str], lines: _Lines,
           where: tuple[str, ...], place: str) -> Any:
    """``value`` checked as the setting ``key`` of ``known`` (the keys allowed ``place``)."""
    setting = known.get(key)
    if setting is None:
        raise lines.error(where, f"unknown setting {key!r} {place}{did_you_mean(key, known)}")
    try:
        if isinstance(setting, str):
            return _CHECKS[setting](key, value)
        if setting.numeric:
            return _number(setting, key, value)
        if setting.kind == CHOICE:
            return _choice(setting.choices, key, value)
        return _CHECKS[setting.kind](key, value)
    except ConfigError as exc:
        raise lines.error(where, str(exc)) from None


def _number(setting: Setting, key: str, value: Any) -> int | float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{key} must be a number, not {_shown(value)}")
    return setting.parse(value, key)


def _text(key: str, value: Any) -> str:
    if not isinstance(value, str):
        raise ConfigError(f"{key} must be a string, not {_shown(value)}")
    return value


def _source(key: str, value: Any) -> str:
    # A device number may be written bare: source = 0.
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return str(value)
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{key} must be a string such as \"/dev/video0\" or \"rtsp://...\", or a device number, "
                          f"not {_shown(value)}")
    return value


def _bool(key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{key} must be true or false, not {_shown(value)}")
    return value


def _names(key: str, value: Any) -> list[str]:
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(item, str) for item in items):
        raise ConfigError(f"{key} must be a list of strings such as [\"person\", \"car\"], not {_shown(value)}")
    return [item.strip() for item in items if item.strip()]


def _size(key: str, value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ConfigError(f"{key} must be a size such as \"20GB\", not {_shown(value)}")
    parse_size(key, value)
    return str(value)


def _choice(choices: tuple[str, ...], key: str, value: Any) -> str:
    if value not in choices:
        raise ConfigError(f"{key} must be one of {', '.join(choices)}, not {_shown(value)}")
    return value


_CHECKS: dict[str, Callable[[str, Any], Any]] = {
    TEXT: _text, ENTRIES: _text, SOURCE: _source, BOOL: _bool, NAMES: _names, SIZE: _size,
}
# A camera's zones, masks and object filters: webapp/config/zones.py checks them.
_CHECKS.update(zones.CHECKS)


def _shown(value: Any) -> str:
    kind = {bool: "a boolean", str: "a string", int: "a number", float: "a number",
            list: "a list", dict: "a table"}.get(type(value), type(value).__name__)
    return f"{kind} ({str(value).lower() if isinstance(value, bool) else repr(value)[:60]})"


class _Lines:
    """Where each key of a TOML text is written, for errors: tomllib keeps no positions.

    Good enough for what people write in a config file: ``[table]`` headers,
    ``key = value`` and dotted keys; a key not found (inside an inline
    table, say) is reported at its table's line.
    """

    _HEADER = re.compile(r"\s*\[\s*([^\[\]]+?)\s*\]\s*(?:#.*)?$")
    _KEY = re.compile(r"\s*((?:[A-Za-z0-9_-]+|\"[^\"]*\"|'[^']*')(?:\s*\.\s*(?:[A-Za-z0-9_-]+|\"[^\"]*\"|'[^']*'))*)\s*=")

    def __init__(self, path: str, text: str) -> None:
        self.path = path
        self.lines: dict[tuple[str, ...], int] = {}
        table: tuple[str, ...] = ()
        in_string = False
        for number, line in enumerate(text.splitlines(), 1):
            quotes = line.count('"""') + line.count("'''")
            if in_string:
                in_string = quotes % 2 == 0
                continue
            header = self._HEADER.match(line)
            if header:
                table = self._split(header[1])
                self.lines.setdefault(table, number)
                continue
            key = self._KEY.match(line)
            if key:
                self.lines.setdefault((*table, *self._split(key[1])), number)
            in_string = quotes % 2 == 1

    @staticmethod
    def _split(dotted: str) -> tuple[str, ...]:
        parts = re.findall(r"\"[^\"]*\"|'[^']*'|[^.\s]+", dotted)
        return tuple(part.strip("\"'") for part in parts)

    def error(self, where: tuple[str, ...], message: str) -> ConfigError:
        for end in range(len(where), 0, -1):
            if where[:end] in self.lines:
                return ConfigError(f"{self.path}, line {self.lines[where[:end]]}: {message}")
        return ConfigError(f"{self.path}: {message}")
