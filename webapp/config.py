"""camstream's settings: their defaults, their layers, and the parsing the per-camera ones share.

Settings are gathered (lowest first) from the defaults below, a config
file (``CONFIG``, see webapp/configfile.py), ``CAMSTREAM_*`` environment
variables and the mapping given to :func:`~webapp.create_app`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from flask import Config, Flask

from camera import BaseCamera

from . import configfile
from .settings import ENV_PREFIX, NAME_PATTERN, NAME_RULE, ConfigError, check_numbers

# The keys under app.extensions that hold an app's cameras, its stream
# slots, the thread that writes streams to sockets and the counts of the
# connections the server closed or refused.
EXTENSION = "camstream"
SLOTS = "camstream.slots"
SENDER = "camstream.sender"
CONNECTIONS = "camstream.connections"
MQTT = "camstream.mqtt"

DEFAULTS: dict[str, Any] = {
    # A camstream.toml to read settings from (see webapp/configfile.py).
    "CONFIG": None,
    "SOURCE": "auto",
    "CAMERAS": None,
    "FPS": None,
    "QUALITY": 80,
    "WIDTH": None,
    "HEIGHT": None,
    "IDLE_TIMEOUT": 10.0,
    "SNAPSHOT_TIMEOUT": 5.0,
    # Streams beyond this get 503. None: HANDOFF_MAX_VIEWERS when waitress
    # hands sockets to the sender, else THREADED_MAX_VIEWERS.
    "MAX_VIEWERS": None,
    # Take stream sockets over from waitress (see webapp/handoff.py).
    "SOCKET_HANDOFF": True,
    # Detectors by camera (see webapp/detectors.py) and their options.
    "DETECT": None,
    "DETECT_CONFIDENCE": 0.5,
    "DETECT_CLASSES": None,
    "DETECT_FPS": 5.0,
    "DETECT_TIMEOUT": 10.0,
    # Recording by camera (see webapp/recording.py), where and how long.
    "RECORD": None,
    "RECORD_FORMAT": "jpeg",
    "STORAGE": None,
    "RETAIN_DAYS": 7.0,
    "MAX_STORAGE": None,
    "MIN_FREE": "1GB",
    "SEGMENT_SECONDS": 60.0,
    "PRE_CAPTURE": 5.0,
    "POST_CAPTURE": 5.0,
    "EVENT_GAP": 10.0,
    "EVENT_LABELS": None,
    # An MQTT broker to publish to (see webapp/mqtt.py), the topics' prefix and Home Assistant's.
    "MQTT": None,
    "MQTT_PREFIX": "camstream",
    "MQTT_DISCOVERY_PREFIX": "homeassistant",
    # Who may watch (see webapp/auth/): users, the session key, host names, proxies, origins.
    "HOST": "127.0.0.1",
    "USERS": None,
    "NO_AUTH": False,
    "SECRET_KEY": None,
    "ALLOWED_HOSTS": None,
    "TRUSTED_PROXIES": None,
    "CORS_ORIGINS": None,
    "SESSION_LIFETIME": 7 * 24 * 3600.0,
    "LOGIN_ATTEMPTS": 5,
    "LOCKOUT_SECONDS": 300.0,
    # A source or detector that can never work (a missing file or model)
    # raises rather than leaving its camera or detector failed while the
    # others serve.
    "STRICT_SOURCES": False,
    # Flask's own cap on request bodies, for servers other than ours; no
    # endpoint takes more than a few KB.
    "MAX_CONTENT_LENGTH": 64 * 1024,
}

# With socket handoff a viewer costs a descriptor, not a thread.
HANDOFF_MAX_VIEWERS = 1000
# Without it every viewer holds a worker: stay below the default 64 threads.
THREADED_MAX_VIEWERS = 56


def per_camera(setting: object, names: list[str], thing: str, placeholder: str) -> list[tuple[str, str]]:
    """``(camera name, value)`` pairs from a per-camera setting such as ``DETECT`` or ``RECORD``.

    The setting is ``"name=value,name=value"`` (its environment variable's
    form), a list of ``"name=value"`` strings (one per flag) or a mapping; a
    value without ``name=`` belongs to the only camera of a one-camera
    server. Values may hold ``=`` themselves (``motion?sensitivity=0.8``):
    what stands before the first one is a camera name only if it could be
    one. ``thing`` (``"a detector"``) and ``placeholder`` (``SPEC``) word the errors.
    """
    if not setting:
        return []
    if isinstance(setting, Mapping):
        pairs = [(str(name), str(value)) for name, value in setting.items()]
    else:
        items = setting.split(",") if isinstance(setting, str) else list(setting)  # type: ignore[call-overload]
        pairs = [_split_entry(str(item), names, thing, placeholder) for item in items if str(item).strip()]
    seen: set[str] = set()
    for name, _ in pairs:
        if name not in names:
            raise ConfigError(f"{thing} is given for camera {name!r}, but there is no camera of that name")
        if name in seen:
            raise ConfigError(f"camera {name!r} is given two {thing.partition(' ')[2]}s")
        seen.add(name)
    return pairs


def _split_entry(entry: str, names: list[str], thing: str, placeholder: str) -> tuple[str, str]:
    name, sep, value = entry.strip().partition("=")
    if sep and NAME_PATTERN.fullmatch(name.strip()):
        return name.strip(), value.strip()
    if len(names) != 1:
        raise ConfigError(f"{thing.partition(' ')[2]} {entry.strip()!r} names no camera; "
                          f"with several cameras write NAME={placeholder}")
    return names[0], entry.strip()


def cameras_of(app: Flask) -> dict[str, BaseCamera]:
    """The cameras an app serves, by name."""
    return app.extensions[EXTENSION]


@dataclass(frozen=True)
class Settings:
    """An app's settings from all their layers, and what a camera's own settings need to be resolved.

    ``config`` is the defaults, the config file's top level, the environment
    and the given mapping, each over the one before; ``tables`` are the
    file's camera tables; ``forced`` are the keys a flag or variable set,
    which beat the camera tables too.
    """

    config: Mapping[str, Any]
    tables: Mapping[str, Mapping[str, Any]]
    forced: frozenset[str]
    file: str | None
    # The file's [users.NAME] tables, unless USERS came from a flag or variable.
    users: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


def gather(given: Mapping[str, Any] | None) -> Settings:
    """Read every layer: defaults < config file (``CONFIG``) < ``CAMSTREAM_*`` variables < ``given``."""
    given = dict(given or {})
    path = given.get("CONFIG") or os.environ.get(ENV_PREFIX + "CONFIG") or None
    file = configfile.load(path) if path else configfile.ConfigFile()
    config = Config(os.getcwd())
    config.from_mapping(DEFAULTS)
    config.from_mapping(file.settings)
    config.from_prefixed_env(ENV_PREFIX.rstrip("_"))
    config.from_mapping(given)
    variables = {name.removeprefix(ENV_PREFIX) for name in os.environ if name.startswith(ENV_PREFIX)}
    check_numbers(config, given, DEFAULTS)
    config["SOCKET_HANDOFF"] = socket_handoff(config)
    config["NO_AUTH"] = yes_no("NO_AUTH", config.get("NO_AUTH"))
    forced = frozenset(variables | set(given))
    return Settings(config, file.cameras, forced, str(path) if path else None,
                    {} if "USERS" in forced else file.users)


def names_list(value: object) -> tuple[str, ...]:
    """Labels such as ``DETECT_CLASSES`` (``"person,car"`` or a list) as a tuple of names, each once."""
    if value is None or value == "":
        return ()
    items = value.split(",") if isinstance(value, str) else list(value)  # type: ignore[call-overload]
    return tuple(dict.fromkeys(str(item).strip() for item in items if str(item).strip()))


def check_name(name: str) -> None:
    """Raise :class:`ConfigError` unless ``name`` can be a camera's name."""
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        raise ConfigError(f"camera name {name!r} {NAME_RULE}")


def camera_entries(config: Mapping[str, Any]) -> list[tuple[str, Any]]:
    spec = config.get("CAMERAS")
    if not spec:
        # From the environment, SOURCE=0 arrives as the number 0.
        source = config.get("SOURCE")
        return [("default", "auto" if source is None or source == "" else str(source))]
    if isinstance(spec, Mapping):
        return list(spec.items())
    # A comma inside a source URL is written %2C.
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    return [parse_camera_entry(item) for item in items if item.strip()]


def parse_camera_entry(entry: str) -> tuple[str, str]:
    """Split ``"name=source"``."""
    name, sep, source = entry.partition("=")
    if not sep or not name.strip() or not source.strip():
        raise ConfigError(f"camera {entry!r} is not NAME=SOURCE")
    return name.strip(), source.strip()


def max_viewers(config: Mapping[str, Any]) -> int:
    """How many streams may run at once (``MAX_VIEWERS``)."""
    limit = config.get("MAX_VIEWERS")
    if limit is None:
        return HANDOFF_MAX_VIEWERS if socket_handoff(config) else THREADED_MAX_VIEWERS
    return int(limit)


def socket_handoff(config: Mapping[str, Any]) -> bool:
    """``SOCKET_HANDOFF`` as a bool (on unless set)."""
    return yes_no("SOCKET_HANDOFF", config.get("SOCKET_HANDOFF", True))


def yes_no(key: str, value: object) -> bool:
    """A yes/no setting as a bool; the environment gives 0/1, true/false, yes/no or on/off."""
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered not in ("0", "1", "true", "false", "yes", "no", "on", "off"):
            raise ConfigError(f"{key} must be true or false, not {value!r}")
        return lowered in ("1", "true", "yes", "on")
    return bool(value)
