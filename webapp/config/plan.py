"""What the settings ask each camera to be, checked before anything starts.

A :class:`CameraPlan` holds one camera's resolved settings: its source,
frame options, detector and recording. Plans compare equal when nothing
about the camera changed, which is how a reload (SIGHUP) knows which
cameras to leave alone.
"""

from __future__ import annotations

from collections import ChainMap
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from camera import BaseCamera
from camera.detect import parse_spec
from camera.record import EVENTS, FORMATS, MODES, Limits, RecordSettings
from camera.track import Rules

from .layers import Settings
from .table import DEFAULTS
from .tomlfile import NONE
from .values import ConfigError, camera_entries, check_name, command, names_list, parse_size, per_camera
from .zones import rules_for

# The options every camera built from a source string takes (see camera.create_camera).
FRAME_OPTIONS = ("FPS", "QUALITY", "WIDTH", "HEIGHT", "IDLE_TIMEOUT", "STALL_TIMEOUT", "AUDIO", "HWACCEL",
                 "MAX_PICTURE_PIXELS")


@dataclass(frozen=True)
class DetectorPlan:
    spec: str
    confidence: float
    classes: tuple[str, ...]
    fps: float
    timeout: float
    # The camera's detect stream, if it has one.
    source: str | None = None
    # For remote:GROUP: a reply's deadline, and how many requests may be out at once.
    deadline: float = 2.0
    in_flight: int = 2

    def options(self) -> dict[str, Any]:
        return {"confidence": self.confidence, "classes": self.classes, "fps": self.fps, "timeout": self.timeout}


@dataclass(frozen=True)
class CameraPlan:
    name: str
    source: str | BaseCamera
    options: tuple[tuple[str, Any], ...]
    detector: DetectorPlan | None
    record: RecordSettings | None
    # The labels that get a binary sensor over MQTT (see webapp/integrations/mqtt.py).
    labels: tuple[str, ...]
    # What its tracking follows (zones, masks, filters; webapp/config/zones.py), when it has a detector.
    rules: Rules | None = None


@dataclass(frozen=True)
class Plan:
    cameras: dict[str, CameraPlan]
    limits: Limits
    storage: Path


def make_plan(settings: Settings) -> Plan:
    """Every camera's plan and the recording limits; :class:`ConfigError` for the first thing wrong."""
    config = settings.config
    entries = camera_entries(config)
    names = [name for name, _ in entries]
    for name in names:
        check_name(name)
    if len(set(names)) != len(names):
        twice = next(name for name in names if names.count(name) > 1)
        raise ConfigError(f"camera name {twice!r} is given twice")
    detect = _per_camera_layers(settings, names, "DETECT", "a detector", "SPEC")
    record = _per_camera_layers(settings, names, "RECORD", "a recording mode", "MODE")
    detect_sources = _per_camera_layers(settings, names, "DETECT_SOURCE", "a detect stream", "SOURCE")
    for name in detect_sources:
        if name not in detect:
            raise ConfigError(f"camera {name!r} has a detect stream but no detector; give it one "
                              f"(--detect {name}=motion) or leave the detect stream out")
    plans = {name: _camera_plan(name, source, settings, detect.get(name), record.get(name), detect_sources.get(name))
             for name, source in entries}
    limits = Limits(retain_days=float(config["RETAIN_DAYS"]) or None,
                    max_bytes=parse_size("MAX_STORAGE", config.get("MAX_STORAGE")),
                    min_free=parse_size("MIN_FREE", config.get("MIN_FREE")) or 0)
    return Plan(plans, limits, Path(config.get("STORAGE") or DEFAULTS["STORAGE"]))


def camera_settings(settings: Settings, name: str) -> Mapping[str, Any]:
    """One camera's settings: its table in the config file over the top-level ones, flags and variables over both."""
    own = {key: value for key, value in settings.tables.get(name, {}).items() if key not in settings.forced}
    return ChainMap(own, settings.config)


def _per_camera_layers(settings: Settings, names: list[str], key: str, thing: str, placeholder: str) -> dict[str, str]:
    """``DETECT``, ``DETECT_SOURCE`` or ``RECORD`` by camera: a flag's or variable's entry for a camera beats its table in the file.

    (The file's top-level value is its tables' default, see webapp/config/tomlfile.py; with no tables it is ``key`` itself.)
    """
    chosen = dict(per_camera(settings.config.get(key), names, thing, placeholder))
    for name in names:
        own = settings.tables.get(name, {}).get(key)
        if own is not None:
            chosen.setdefault(name, own)
    return {name: value for name, value in chosen.items() if value.strip() and value.strip().lower() != NONE}


def _camera_plan(name: str, source: Any, settings: Settings, spec: str | None, mode: str | None,
                 detect_source: str | None = None) -> CameraPlan:
    view = camera_settings(settings, name)
    options = tuple((key.lower(), view.get(key, DEFAULTS[key])) for key in FRAME_OPTIONS)
    detector = None
    if spec is not None:
        try:
            parse_spec(spec)
        except ValueError as exc:
            raise ConfigError(f"camera {name!r}: {exc}") from None
        detector = DetectorPlan(spec, float(view["DETECT_CONFIDENCE"]), names_list(view.get("DETECT_CLASSES")),
                                float(view["DETECT_FPS"]), float(view["DETECT_TIMEOUT"]), detect_source,
                                float(view["REMOTE_TIMEOUT"]), int(view["REMOTE_IN_FLIGHT"]))
        if detector.spec.startswith("remote:") and not settings.config.get("BROKER"):
            raise ConfigError(f"camera {name!r} detects with {detector.spec!r}, which needs a broker: "
                              f"--broker nats://HOST:4222 (and {command('worker --group')} "
                              f"{detector.spec.removeprefix('remote:').partition('?')[0]} ... on some machine)")
    record = None
    if mode is not None:
        if mode not in MODES:
            raise ConfigError(f"camera {name!r}: recording must be 'events', 'continuous' or 'none', not {mode!r}")
        if mode == EVENTS and detector is None:
            raise ConfigError(f"camera {name!r} records events, but has no detector to find them; "
                              f"give it one (--detect {name}=motion) or record continuous")
        record = _record_settings(view, mode)
    chosen = names_list(view.get("EVENT_LABELS")) or (detector.classes if detector else ())
    labels = tuple(_sensor_labels(detector.spec, chosen)) if detector else ()
    if isinstance(source, BaseCamera):
        if source.name != name:
            raise ConfigError(f"the camera given as {name!r} is named {source.name!r}; give it under its own name")
    else:
        source = str(source)
    rules = rules_for(view, name, settings.file) if detector else None
    return CameraPlan(name, source, options, detector, record, labels, rules)


def _record_settings(view: Mapping[str, Any], mode: str) -> RecordSettings:
    fmt = str(view.get("RECORD_FORMAT") or "jpeg").lower()
    if fmt not in FORMATS:
        raise ConfigError(f"RECORD_FORMAT must be one of {', '.join(FORMATS)}, not {fmt!r}")
    return RecordSettings(
        mode=mode, format=fmt, segment_seconds=float(view["SEGMENT_SECONDS"]),
        pre_capture=float(view["PRE_CAPTURE"]), post_capture=float(view["POST_CAPTURE"]),
        event_gap=float(view["EVENT_GAP"]), event_max_length=float(view["EVENT_MAX_LENGTH"]),
        labels=names_list(view.get("EVENT_LABELS")), copy=bool(view["RECORD_COPY"]))


def _sensor_labels(detector: str, classes: tuple[str, ...]) -> list[str]:
    """The labels that get a binary sensor: the ones chosen, else ``motion`` for motion, else ``object`` (anything)."""
    if classes:
        return list(classes)
    return ["motion"] if detector.startswith("motion") and "+" not in detector else ["object"]
