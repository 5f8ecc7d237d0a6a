"""What a setting's value may be: the error for one that may not, and the parsers the settings share."""

from __future__ import annotations

import re
import shutil
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

# Camera names appear in URLs and in X-Camera header lines.
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}", re.ASCII)
NAME_RULE = ("must start with an ASCII letter or digit, followed by up to 63 ASCII letters, digits, "
             "'-' or '_'")

_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]i?B?|B)?\s*", re.IGNORECASE)
_UNITS = {"": 1, "B": 1, "K": 1000, "M": 1000**2, "G": 1000**3, "T": 1000**4,
          "KI": 1024, "MI": 1024**2, "GI": 1024**3, "TI": 1024**4}


class ConfigError(ValueError):
    """A setting that cannot be used; the message names it."""


def yes_no(key: str, value: object) -> bool:
    """A yes/no setting as a bool; the environment gives 0/1, true/false, yes/no or on/off."""
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered not in ("0", "1", "true", "false", "yes", "no", "on", "off"):
            raise ConfigError(f"{key} must be true or false, not {value!r}")
        return lowered in ("1", "true", "yes", "on")
    return bool(value)


def names_list(value: object) -> tuple[str, ...]:
    """Labels such as ``DETECT_CLASSES`` (``"person,car"`` or a list) as a tuple of names, each once."""
    if value is None or value == "":
        return ()
    items = value.split(",") if isinstance(value, str) else list(value)  # type: ignore[call-overload]
    return tuple(dict.fromkeys(str(item).strip() for item in items if str(item).strip()))


def parse_size(key: str, value: object) -> int | None:
    """A size in bytes from ``20GB``, ``500 MB``, ``1.5TiB`` or a plain number; None for none."""
    if value is None or value == "":
        return None
    text = str(value)
    match = _SIZE.fullmatch(text)
    if match is None or isinstance(value, bool):
        raise ConfigError(f"{key} must be a size such as 500MB or 20GB, not {text!r}")
    unit = (match[2] or "").upper().removesuffix("B")
    return int(float(match[1]) * _UNITS[unit])


def check_name(name: str) -> None:
    """Raise :class:`ConfigError` unless ``name`` can be a camera's name."""
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        raise ConfigError(f"camera name {name!r} {NAME_RULE}")


def camera_entries(config: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """``(name, source)`` of every camera: ``CAMERAS``, else one camera named ``default`` with ``SOURCE``."""
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


def command(words: str) -> str:
    """``camstream WORDS`` as a user can paste it: run the way this process was (``.venv/bin/camstream``, or
    ``.venv/bin/python -m webapp``), since a bare ``camstream`` is found only in an activated environment."""
    script = Path(sys.argv[0]).absolute()
    if script.name == "camstream" and script.is_file():
        on_path = shutil.which("camstream")
        program = "camstream" if on_path and Path(on_path).absolute() == script else _shown(script)
    else:
        program = f"{_shown(Path(sys.executable).absolute())} -m webapp"
    return f"{program} {words}"


def _shown(path: Path) -> str:
    """``path`` relative to the working folder when it is inside it (``.venv/bin/camstream``)."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)

