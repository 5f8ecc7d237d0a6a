"""Writing a camera's zones and masks into ``camstream.toml``, leaving every other line of it as it was.

The page's zone editor (webapp/api/zones.py) saves what an admin drew into the file the server was started
with, so that it is still there after a restart and is what a reload reads. Python reads TOML (tomllib) but
does not write it, and a writer of whole documents would drop the file's comments and layout; so only the
camera's own lines are touched: its ``[cameras.NAME.zones.ZONE]`` tables and its ``object_mask`` and
``motion_mask`` keys are taken out, and the new ones written in their place (the masks at the end of the
camera's table, the zones after its last table). A file without camera tables (one camera, ``default``, from a
top-level ``source``) has them at its top level. The result is read back with tomllib and must be the file as
it was with only those values changed; a file laid out in a way this cannot edit (the camera as an inline
table, say) raises :class:`Unwritable`, and the caller shows the TOML to paste (:func:`snippet`) instead.
The file is replaced at once (a new file renamed over it), never left half written.
"""

from __future__ import annotations

import copy
import math
import os
import re
import tempfile
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .values import ConfigError

# The keys of a camera's table that the editor writes.
MASK_KEYS = ("object_mask", "motion_mask")
BLANK = "\0blank"
_HEADER = re.compile(r"\s*\[\[?\s*([^\[\]]+?)\s*\]\]?\s*(?:#.*)?$")
_KEY = re.compile(r"\s*((?:[A-Za-z0-9_-]+|\"[^\"]*\"|'[^']*')(?:\s*\.\s*(?:[A-Za-z0-9_-]+|\"[^\"]*\"|'[^']*'))*)\s*=")


class Unwritable(ConfigError):
    """The file cannot be edited safely here: its layout, or it cannot be read or written."""


@dataclass(frozen=True)
class Drawn:
    """What the editor draws on a camera: its zones (name: coordinates, objects, min_seconds) and masks."""

    zones: Mapping[str, Mapping[str, Any]]
    object_mask: Sequence[Sequence[Sequence[float]]] = ()
    motion_mask: Sequence[Sequence[Sequence[float]]] = ()

    def values(self) -> dict[str, Any]:
        """The TOML values, as tomllib would read them back (empty ones left out)."""
        values: dict[str, Any] = {}
        if self.zones:
            values["zones"] = {name: _zone_values(zone) for name, zone in self.zones.items()}
        for key in MASK_KEYS:
            polygons = getattr(self, key)
            if polygons:
                values[key] = [_polygon(polygon) for polygon in polygons]
        return values


def snippet(camera: str, drawn: Drawn, top_level: bool = False) -> str:
    """The TOML of ``drawn`` for ``camera``, to paste into a config file (or, ``top_level``, for a file without
    camera tables)."""
    prefix = "" if top_level else f"cameras.{camera}."
    values = drawn.values()
    masks = [f"{key} = {_toml(values[key])}" for key in MASK_KEYS if key in values]
    parts = []
    if masks:
        parts.append("\n".join(([] if top_level else [f"[cameras.{camera}]"]) + masks))
    for name, zone in values.get("zones", {}).items():
        parts.append("\n".join([f"[{prefix}zones.{name}]", *(f"{key} = {_toml(value)}" for key, value in zone.items())]))
    return "\n\n".join(parts) + "\n" if parts else ""


def write(path: str | Path, camera: str, drawn: Drawn, top_level: bool = False) -> str:
    """Write ``drawn`` as ``camera``'s zones and masks into the file at ``path``; returns the new text.
    :class:`Unwritable` when that cannot be done safely (nothing is written then)."""
    target = Path(path).resolve()  # a symlinked config file: its target is replaced, the link stays
    try:
        text = target.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise Unwritable(f"the config file {str(path)!r} cannot be read: {exc}") from None
    new = edited(text, camera, drawn, top_level)
    _replace(target, new)
    return new


def edited(text: str, camera: str, drawn: Drawn, top_level: bool = False) -> str:
    """``text`` with ``camera``'s zones and masks replaced by ``drawn``'s; :class:`Unwritable` if it cannot be."""
    try:
        before = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise Unwritable(f"the config file is not valid TOML: {exc}") from None
    prefix: tuple[str, ...] = () if top_level else ("cameras", camera)
    lines = text.splitlines()
    items = _statements(lines)
    own = _own_section(items, prefix)
    if own is None:
        raise Unwritable(f"the config file has no [cameras.{camera}] table to write into")
    values = drawn.values()
    # A zone whose table says just what was drawn stays as it is, its comments and all.
    table = before
    for key in prefix:
        table = table.get(key, {})
    had = table.get("zones", {}) if isinstance(table, dict) else {}
    headers = {item.path for item in items if item.kind == "header"}
    same = {name for name, zone in values.get("zones", {}).items()
            if had.get(name) == zone and (*prefix, "zones", name) in headers}
    removed = _removals(items, prefix, same)
    masks = [f"{key} = {_toml(values[key])}" for key in MASK_KEYS if key in values]
    zones = snippet(camera, Drawn({name: zone for name, zone in drawn.zones.items() if name not in same}),
                    top_level).splitlines()
    # Where the masks go: after the last key of the camera's own table that stays; the zones: after its last table.
    keys_end = max((item.end for item in items if item.kind == "key" and item.section == own
                    and item.start not in removed), default=own + 1 if own >= 0 else 0)
    tables_end = _tables_end(items, prefix, removed, len(lines))
    out: list[str] = []
    for number, line in enumerate(lines):
        if number == keys_end and masks:
            out.extend(masks)
        if number == tables_end and zones:
            out.extend(_spaced(out, zones))
            if line.strip():
                out.append("")
        if number not in removed:
            out.append(line)
    if keys_end >= len(lines) and masks:
        out.extend(masks)
    if tables_end >= len(lines) and zones:
        out.extend(_spaced(out, zones))
    ending = "\r\n" if "\r\n" in text else "\n"  # a file written on Windows keeps its line endings
    new = ending.join(out) + ending
    _check(before, new, prefix, values)
    return new


# -- reading the file's layout -------------------------------------------------


@dataclass(frozen=True)
class _Item:
    kind: str  # "header", "key" or "other" (blank lines and comments)
    start: int
    end: int  # the line after it
    path: tuple[str, ...] = ()  # a table's or key's; (BLANK,) for a blank line
    # The line of the header whose table it is in (-1: the top level).
    section: int = -1


def _statements(lines: list[str]) -> list[_Item]:
    items: list[_Item] = []
    table: tuple[str, ...] = ()
    section = -1
    number = 0
    while number < len(lines):
        stripped = lines[number].strip()
        if not stripped or stripped.startswith("#"):
            items.append(_Item("other", number, number + 1, (BLANK,) if not stripped else (), section))
            number += 1
            continue
        header = _HEADER.match(lines[number])
        if stripped.startswith("[") and header:
            table, section = _split(header[1]), number
            items.append(_Item("header", number, number + 1, table, section))
            number += 1
            continue
        key = _KEY.match(lines[number])
        if key is None:
            raise Unwritable(f"line {number + 1} of the config file is not one this editor can read")
        end = _value_end(lines, number)
        items.append(_Item("key", number, end, (*table, *_split(key[1])), section))
        number = end
    return items


def _value_end(lines: list[str], start: int) -> int:
    """The line after the value of the key on line ``start`` (a value may span lines: an array, a string)."""
    for end in range(start + 1, len(lines) + 1):
        try:
            tomllib.loads("\n".join(lines[start:end]))
            return end
        except tomllib.TOMLDecodeError:
            continue
    raise Unwritable(f"the value on line {start + 1} of the config file does not end")


def _split(dotted: str) -> tuple[str, ...]:
    parts = re.findall(r"\"[^\"]*\"|'[^']*'|[^.\s]+", dotted)
    return tuple(part.strip("\"'") for part in parts)


def _own_section(items: list[_Item], prefix: tuple[str, ...]) -> int | None:
    """The line of the camera's own table header (-1: the top level), or None if the file has none."""
    if not prefix:
        return -1
    return next((item.start for item in items if item.kind == "header" and item.path == prefix), None)


def _ours(path: tuple[str, ...], prefix: tuple[str, ...]) -> bool:
    rest = path[len(prefix):] if path[:len(prefix)] == prefix else None
    return bool(rest) and (rest[0] == "zones" or (len(rest) == 1 and rest[0] in MASK_KEYS))


def _removals(items: list[_Item], prefix: tuple[str, ...], same: set[str]) -> set[int]:
    """The lines to take out: the camera's zone tables (with the comments just above them) but those of the zones
    in ``same``, and its mask keys."""
    removed: set[int] = set()
    for index, item in enumerate(items):
        rest = item.path[len(prefix):] if item.path[:len(prefix)] == prefix else ()
        if len(rest) >= 2 and rest[0] == "zones" and rest[1] in same:
            continue
        if item.kind == "key" and _ours(item.path, prefix):
            removed.update(range(item.start, item.end))
        elif item.kind == "header" and _ours(item.path, prefix):
            above = index - 1
            while above >= 0 and items[above].kind == "other" and items[above].path != (BLANK,):
                removed.add(items[above].start)
                above -= 1
            removed.add(item.start)
            # Its body up to the last key, then the blank lines after it (not the next table's comments).
            after = index + 1
            body = [other for other in items[after:] if other.section == item.start]
            last = max((other.end for other in body if other.kind == "key"), default=item.end)
            removed.update(range(item.start, last))
            for other in body:
                if other.start >= last and other.path == (BLANK,):
                    removed.add(other.start)
    return removed


def _tables_end(items: list[_Item], prefix: tuple[str, ...], removed: set[int], count: int) -> int:
    """The line the zone tables are written before: after the camera's last table that stays (its keys), or the
    end of the file for the top level."""
    if not prefix:
        return count
    mine = [item for item in items if item.kind == "header" and item.path[:len(prefix)] == prefix
            and item.start not in removed]
    last = mine[-1].start
    return max((item.end for item in items if item.section == last and item.kind == "key"), default=last + 1)


def _spaced(out: list[str], block: list[str]) -> list[str]:
    """``block`` with a blank line before it, unless one is there already."""
    return block if not out or not out[-1].strip() else ["", *block]


def _check(before: dict[str, Any], text: str, prefix: tuple[str, ...], values: dict[str, Any]) -> None:
    """The edited text reads as the file did, with only the camera's zones and masks changed."""
    expected = copy.deepcopy(before)
    table = expected
    for key in prefix:
        table = table[key]
    for key in ("zones", *MASK_KEYS):
        table.pop(key, None)
    table.update(copy.deepcopy(values))
    try:
        after = tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        after = None
    if after != expected:
        raise Unwritable("the config file gives this camera's zones or masks in a way this editor cannot change "
                         "(an inline table, or dotted keys elsewhere); paste them in by hand")


def _replace(target: Path, text: str) -> None:
    """Put ``text`` at ``target`` at once: a new file beside it, flushed to disk, renamed over it."""
    try:
        mode = target.stat().st_mode & 0o7777
        handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as exc:
        raise Unwritable(f"the config file {str(target)!r} cannot be written: {exc.strerror or exc}") from None
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temporary, mode)
        os.replace(temporary, target)
    except OSError as exc:
        Path(temporary).unlink(missing_ok=True)
        raise Unwritable(f"the config file {str(target)!r} cannot be written: {exc.strerror or exc}") from None


# -- writing values --------------------------------------------------------------


def _zone_values(zone: Mapping[str, Any]) -> dict[str, Any]:
    values: dict[str, Any] = {"coordinates": _polygon(zone["coordinates"])}
    if zone.get("objects"):
        values["objects"] = [str(label) for label in zone["objects"]]
    if zone.get("min_seconds"):
        values["min_seconds"] = _number(zone["min_seconds"])
    return values


def _polygon(corners: Sequence[Sequence[float]]) -> list[list[int | float]]:
    return [[_number(x), _number(y)] for x, y in corners]


def _number(value: float) -> int | float:
    """A whole number as an integer (``300``, not ``300.0``), else the float."""
    number = float(value)
    return int(number) if math.isfinite(number) and number.is_integer() else number


def _toml(value: Any) -> str:
    """A TOML value, inline: numbers, strings and arrays of them."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return '"' + "".join(_escaped(char) for char in value) + '"'
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml(item) for item in value) + "]"
    raise TypeError(f"no TOML for {type(value).__name__}")


def _escaped(char: str) -> str:
    if char in '"\\':
        return "\\" + char
    if ord(char) < 0x20 or ord(char) == 0x7F:
        return f"\\u{ord(char):04x}"
    return char
