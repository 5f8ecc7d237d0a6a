"""Zones, masks, object filters and the tracking settings of a camera, read from the config file and checked.

In ``camstream.toml``::

    [cameras.door.zones.drive]
    coordinates = [[300, 250], [640, 250], [640, 480], [300, 480]]  # main-stream pixels, or 0-1 fractions
    objects = ["person", "car"]      # optional: which labels count in this zone
    min_seconds = 1                   # optional: inside this long before it counts

    [cameras.door]
    object_mask = [[[500, 0], [640, 0], [640, 100], [500, 100]]]
    motion_mask = [[[0, 0], [200, 0], [200, 30], [0, 30]]]
    required_zones = ["drive"]

    [cameras.door.objects.person]
    min_score = 0.6
    min_area = 1500
    max_area = 200000

The file reader (webapp/config/tomlfile.py) checks each key's shape with :data:`CHECKS` (an error names the
file, the line and the key); :func:`rules_for` makes a camera's :class:`~camera.track.Rules` from its settings
and checks what spans keys (a required zone the camera does not have), naming the camera. Each is reread on
SIGHUP with the rest of the file.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from typing import Any

from camera.suggest import did_you_mean
from camera.track import ObjectFilter, Rules, Zone

from .values import NAME_PATTERN, ConfigError, names_list

# The kinds of setting this module checks (see webapp/config/table.py).
ZONES, POLYGONS, OBJECTS = "zones", "polygons", "objects"
ZONE_KEYS = ("coordinates", "objects", "min_seconds")
FILTER_KEYS = ("min_score", "min_area", "max_area")
# Bounds: a polygon's corners, a picture's side in pixels.
MAX_CORNERS = 100
MAX_COORDINATE = 100_000
# The settings a camera's rules are made of (their keys in app config).
KEYS = ("ZONES", "OBJECT_MASK", "MOTION_MASK", "REQUIRED_ZONES", "OBJECTS", "MIN_FRAMES", "LOST_SECONDS",
        "STATIONARY_SECONDS")


def check_polygon(where: str, value: Any) -> list[list[float]]:
    """``[[x, y], ...]``: at least 3 corners, numbers from 0 up; :class:`ConfigError` naming ``where``."""
    example = "such as [[0, 0], [200, 0], [200, 30], [0, 30]]"
    if not isinstance(value, list) or not 3 <= len(value) <= MAX_CORNERS:
        raise ConfigError(f"{where} must be a list of 3 to {MAX_CORNERS} [x, y] corners {example}, "
                          f"not {_shown(value)}")
    corners = []
    for corner in value:
        if not (isinstance(corner, list) and len(corner) == 2
                and all(isinstance(n, int | float) and not isinstance(n, bool) for n in corner)
                and all(math.isfinite(n) and 0 <= n <= MAX_COORDINATE for n in corner)):
            raise ConfigError(f"{where} must be [x, y] corners of numbers from 0 (pixels, or 0-1 fractions of the "
                              f"picture) {example}; {_shown(corner)} is not one")
        corners.append([float(corner[0]), float(corner[1])])
    return corners


def check_polygons(key: str, value: Any) -> list[list[list[float]]]:
    """A mask: a list of polygons (one polygon alone is taken as a list of one)."""
    if isinstance(value, list) and value and isinstance(value[0], list) and value[0] \
            and isinstance(value[0][0], int | float):
        value = [value]
    if not isinstance(value, list) or not value:
        raise ConfigError(f"{key} must be a list of polygons, such as [[[0, 0], [200, 0], [200, 30], [0, 30]]], "
                          f"not {_shown(value)}")
    return [check_polygon(f"{key}[{index}]", polygon) for index, polygon in enumerate(value)]


def check_zones(key: str, value: Any) -> dict[str, dict[str, Any]]:
    """``[cameras.NAME.zones.ZONE]`` tables: each with ``coordinates``, optional ``objects`` and ``min_seconds``."""
    if not isinstance(value, Mapping) or not all(isinstance(table, Mapping) for table in value.values()):
        raise ConfigError(f"{key} must be tables, one per zone: [cameras.NAME.zones.ZONE] with coordinates")
    zones = {}
    for name, table in value.items():
        where = f"{key}.{name}"
        if not NAME_PATTERN.fullmatch(name):
            raise ConfigError(f"zone name {name!r} must be letters, digits, - and _")
        for item in table:
            if item not in ZONE_KEYS:
                raise ConfigError(f"unknown key {item!r} in {where}{did_you_mean(item, ZONE_KEYS)}: a zone takes "
                                  f"{', '.join(ZONE_KEYS)}")
        if "coordinates" not in table:
            raise ConfigError(f"{where} has no coordinates (its corners: [[x, y], ...])")
        objects = table.get("objects", [])
        if not isinstance(objects, list) or not all(isinstance(label, str) and label for label in objects):
            raise ConfigError(f"{where}.objects must be a list of labels such as [\"person\", \"car\"], "
                              f"not {_shown(objects)}")
        zones[name] = {"coordinates": check_polygon(f"{where}.coordinates", table["coordinates"]),
                       "objects": objects,
                       "min_seconds": _number(f"{where}.min_seconds", table.get("min_seconds", 0), 0, 86400)}
    return zones


def check_objects(key: str, value: Any) -> dict[str, dict[str, float]]:
    """``[cameras.NAME.objects.LABEL]`` tables: ``min_score`` (0-1), ``min_area``, ``max_area`` (pixels, or
    0-1: a share of the picture)."""
    if not isinstance(value, Mapping) or not all(isinstance(table, Mapping) for table in value.values()):
        raise ConfigError(f"{key} must be tables, one per label: [cameras.NAME.objects.LABEL] with min_score, "
                          "min_area, max_area")
    filters = {}
    for label, table in value.items():
        where = f"{key}.{label}"
        for item in table:
            if item not in FILTER_KEYS:
                raise ConfigError(f"unknown key {item!r} in {where}{did_you_mean(item, FILTER_KEYS)}: a label "
                                  f"takes {', '.join(FILTER_KEYS)}")
        rule = {"min_score": _number(f"{where}.min_score", table.get("min_score", 0), 0, 1),
                "min_area": _number(f"{where}.min_area", table.get("min_area", 0), 0, 1e10),
                "max_area": _number(f"{where}.max_area", table.get("max_area", 1e10), 0, 1e10)}
        if _area_kind(rule["min_area"]) == _area_kind(rule["max_area"]) and rule["min_area"] > rule["max_area"]:
            raise ConfigError(f"{where}: min_area ({rule['min_area']:g}) is more than max_area "
                              f"({rule['max_area']:g})")
        filters[label] = rule
    return filters


CHECKS: dict[str, Callable[[str, Any], Any]] = {ZONES: check_zones, POLYGONS: check_polygons, OBJECTS: check_objects}


def rules_for(view: Mapping[str, Any], camera: str, file: str | None = None) -> Rules:
    """Camera ``camera``'s tracking rules from its settings (its table over the top level); a required zone it
    does not have, or a value from a variable of the wrong shape, is a :class:`ConfigError` naming the camera."""
    where = f"{file}: camera {camera!r}" if file else f"camera {camera!r}"
    try:
        zones = _given(view, "ZONES", check_zones) or {}
        objects = _given(view, "OBJECTS", check_objects) or {}
        object_mask = _given(view, "OBJECT_MASK", check_polygons) or []
        motion_mask = _given(view, "MOTION_MASK", check_polygons) or []
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    required = names_list(view.get("REQUIRED_ZONES"))
    for name in required:
        if name not in zones:
            known = f" (its zones: {', '.join(zones)})" if zones else " (it has none: [cameras.NAME.zones.ZONE])"
            raise ConfigError(f"{where}: required_zones names zone {name!r}, which it does not have"
                              f"{did_you_mean(name, zones) or known}")
    return Rules(
        zones=tuple(Zone(name, _polygon(zone["coordinates"]), frozenset(zone["objects"]), float(zone["min_seconds"]))
                    for name, zone in zones.items()),
        object_mask=tuple(_polygon(polygon) for polygon in object_mask),
        motion_mask=tuple(_polygon(polygon) for polygon in motion_mask),
        required_zones=frozenset(required),
        objects={label: ObjectFilter(**rule) for label, rule in objects.items()},
        min_frames=int(view.get("MIN_FRAMES") or 3),
        lost_seconds=float(view.get("LOST_SECONDS") or 3.0),
        stationary_seconds=float(view.get("STATIONARY_SECONDS") if view.get("STATIONARY_SECONDS") is not None
                                 else 10.0))


def _given(view: Mapping[str, Any], key: str, check: Callable[[str, Any], Any]) -> Any:
    """``view[key]`` checked; a variable gives it as JSON text (``CAMSTREAM_ZONES='{"drive": ...}'``)."""
    value = view.get(key)
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise ConfigError(f"{key.lower()} must be TOML tables or JSON, not {_shown(value)}") from None
    return check(key.lower(), value)


def _polygon(corners: list[list[float]]) -> tuple[tuple[float, float], ...]:
    return tuple((x, y) for x, y in corners)


def _number(where: str, value: Any, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) \
            or not low <= value <= high:
        raise ConfigError(f"{where} must be a number from {low:g} to {high:g}, not {_shown(value)}")
    return float(value)


def _area_kind(area: float) -> bool:
    """Whether an area is a share of the picture (0 to 1) rather than pixels."""
    return 0 < area <= 1


def _shown(value: Any) -> str:
    return repr(value)[:60]


def drawn_of(view: Mapping[str, Any]) -> dict[str, Any]:
    """What the page's zone editor shows of a camera: its ``zones`` (each with coordinates, objects and
    min_seconds) and its ``object_mask`` and ``motion_mask`` (lists of polygons, empty for none)."""
    return {"zones": _given(view, "ZONES", check_zones) or {},
            "object_mask": _given(view, "OBJECT_MASK", check_polygons) or [],
            "motion_mask": _given(view, "MOTION_MASK", check_polygons) or []}


def check_drawn(body: Any) -> dict[str, Any]:
    """What the zone editor sends (``{"zones": {...}, "object_mask": [...], "motion_mask": [...]}``), checked as
    the config file's values are; an empty list is no mask. :class:`ConfigError` says what is wrong."""
    if not isinstance(body, Mapping):
        raise ConfigError("send a JSON object with zones, object_mask and motion_mask")
    unknown = [key for key in body if key not in DRAWN_KEYS]
    if unknown:
        raise ConfigError(f"unknown key {unknown[0]!r}{did_you_mean(str(unknown[0]), DRAWN_KEYS)}: send "
                          f"{', '.join(DRAWN_KEYS)}")
    zones = body.get("zones") or {}
    drawn = {"zones": check_zones("zones", zones) if zones else {}}
    for key in ("object_mask", "motion_mask"):
        value = body.get(key) or []
        drawn[key] = check_polygons(key, value) if value else []
    return drawn


DRAWN_KEYS = ("zones", "object_mask", "motion_mask")
