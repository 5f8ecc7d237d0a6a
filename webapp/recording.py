"""Reading the recording settings and starting each camera's recorder.

``RECORD`` says which camera records how: ``"name=events,name=continuous"``
(the ``CAMSTREAM_RECORD`` form), a list of ``"name=mode"`` strings (one per
``--record``), or a mapping; a bare mode belongs to the only camera of a
one-camera server. Everything goes into ``STORAGE`` (``camstream-data``
in the folder camstream runs from, by default).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flask import Flask

from camera import BaseCamera
from camera.detect import CameraDetection
from camera.events import EventLog
from camera.record import (
    EVENTS,
    FORMATS,
    MODES,
    Limits,
    Recorder,
    RecordSettings,
    Retention,
    Storage,
    format_bytes,
    reconcile,
)

from .config import per_camera
from .settings import ConfigError

RECORDING = "camstream.recording"
DEFAULT_STORAGE = "camstream-data"

log = logging.getLogger("camstream")

_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]i?B?|B)?\s*", re.IGNORECASE)
_UNITS = {"": 1, "B": 1, "K": 1000, "M": 1000**2, "G": 1000**3, "T": 1000**4,
          "KI": 1024, "MI": 1024**2, "GI": 1024**3, "TI": 1024**4}


@dataclass
class Recording:
    """An app's storage, its retention and its recorders by camera name (none when nothing records)."""

    storage: Storage | None = None
    retention: Retention | None = None
    recorders: dict[str, Recorder] = field(default_factory=dict)

    def stop(self) -> None:
        for recorder in self.recorders.values():
            recorder.stop()
        if self.retention is not None:
            self.retention.stop()
        if self.storage is not None:
            self.storage.close()


def recording_of(app: Flask) -> Recording:
    return app.extensions[RECORDING]


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


def record_entries(config: Mapping[str, Any], names: list[str]) -> dict[str, str]:
    """``{camera: mode}`` from ``RECORD``, checked against the cameras there are."""
    entries = dict(per_camera(config.get("RECORD"), names, "a recording mode", "MODE"))
    for name, mode in entries.items():
        if mode not in MODES:
            raise ConfigError(f"camera {name!r}: recording must be 'events' or 'continuous', not {mode!r}")
    return entries


def record_settings(config: Mapping[str, Any], mode: str) -> RecordSettings:
    fmt = str(config.get("RECORD_FORMAT") or "jpeg").lower()
    if fmt not in FORMATS:
        raise ConfigError(f"RECORD_FORMAT must be one of {', '.join(FORMATS)}, not {fmt!r}")
    labels = config.get("EVENT_LABELS") or ()
    items = labels.split(",") if isinstance(labels, str) else list(labels)
    return RecordSettings(
        mode=mode, format=fmt, segment_seconds=float(config["SEGMENT_SECONDS"]),
        pre_capture=float(config["PRE_CAPTURE"]), post_capture=float(config["POST_CAPTURE"]),
        event_gap=float(config["EVENT_GAP"]),
        labels=tuple(dict.fromkeys(str(item).strip() for item in items if str(item).strip())))


@dataclass(frozen=True)
class Plan:
    """What ``config`` asks to record, checked before anything starts."""

    settings: dict[str, RecordSettings]
    limits: Limits
    root: Path


def plan_recording(config: Mapping[str, Any], cameras: Mapping[str, BaseCamera], detected: set[str]) -> Plan:
    """Check the recording settings; ``detected`` names the cameras that have a detector."""
    entries = record_entries(config, list(cameras))
    limits = Limits(retain_days=float(config["RETAIN_DAYS"]) or None,
                    max_bytes=parse_size("MAX_STORAGE", config.get("MAX_STORAGE")),
                    min_free=parse_size("MIN_FREE", config.get("MIN_FREE")) or 0)
    for name, mode in entries.items():
        if mode == EVENTS and name not in detected:
            raise ConfigError(f"camera {name!r} records events, but has no detector to find them; "
                              f"give it one (--detect {name}=motion) or record continuous")
    settings = {name: record_settings(config, mode) for name, mode in entries.items()}
    return Plan(settings, limits, Path(config.get("STORAGE") or DEFAULT_STORAGE))


def start_recording(plan: Plan, cameras: Mapping[str, BaseCamera], detections: Mapping[str, CameraDetection],
                    events: EventLog) -> Recording:
    """Open the storage, settle it after a crash, start retention and a recorder per camera that records."""
    if not plan.settings:
        return Recording()
    try:
        storage = Storage(plan.root)
    except OSError as exc:
        raise ConfigError(f"STORAGE {str(plan.root)!r} cannot be used: {exc.strerror or exc}") from None
    reconcile(storage)
    retention = Retention(storage, plan.limits)
    retention.start()
    recording = Recording(storage, retention)
    for name, settings in plan.settings.items():
        detection = detections.get(name)
        recorder = Recorder(cameras[name], storage, retention, settings,
                            detector=detection.spec.text if detection else "")
        if detection is not None:
            detection.add_result_listener(recorder.take_result)
        recorder.add_event_listener(lambda kind, event: events.publish(kind, event["camera"], event))
        recorder.start()
        recording.recorders[name] = recorder
    limits = plan.limits
    log.info("recording to %s (%s); keeping %s, up to %s, leaving %s free", storage.root,
             ", ".join(f"{name}: {settings.mode}" for name, settings in plan.settings.items()),
             f"{limits.retain_days:g} days" if limits.retain_days else "everything",
             format_bytes(limits.max_bytes) if limits.max_bytes else "any size", format_bytes(limits.min_free))
    return recording
