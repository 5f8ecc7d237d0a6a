"""An app's recording: the storage, its retention and a recorder per camera that records.

``RECORD`` says which camera records how (see webapp/plan.py); everything
goes into ``STORAGE`` (``camstream-data`` in the folder camstream runs
from, by default).
"""

from __future__ import annotations

import logging
import re
import sqlite3
from pathlib import Path

from flask import Flask

from camera import BaseCamera
from camera.detect import CameraDetection
from camera.record import (
    Limits,
    Recorder,
    RecordSettings,
    Retention,
    Storage,
    format_bytes,
    reconcile,
)

from .settings import ConfigError

RECORDING = "camstream.recording"
DEFAULT_STORAGE = "camstream-data"

log = logging.getLogger("camstream")

_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]i?B?|B)?\s*", re.IGNORECASE)
_UNITS = {"": 1, "B": 1, "K": 1000, "M": 1000**2, "G": 1000**3, "T": 1000**4,
          "KI": 1024, "MI": 1024**2, "GI": 1024**3, "TI": 1024**4}


class Recording:
    """An app's storage, its retention and its recorders by camera name.

    The storage opens with the first camera that records (and is settled
    after a crash then); cameras are added and removed as settings reload.
    """

    def __init__(self, root: Path, limits: Limits) -> None:
        self.root = root
        self.limits = limits
        self.storage: Storage | None = None
        self.retention: Retention | None = None
        self.recorders: dict[str, Recorder] = {}

    def add(self, camera: BaseCamera, settings: RecordSettings, detection: CameraDetection | None) -> Recorder:
        """Start recording ``camera``; its detector's results open its events."""
        storage, retention = self.open()
        recorder = Recorder(camera, storage, retention, settings, detector=detection.spec.text if detection else "")
        if detection is not None:
            detection.add_result_listener(recorder.take_result)
        recorder.start()
        self.recorders = {**self.recorders, camera.name: recorder}
        log.info("camera %s: recording %s to %s", camera.name, settings.mode, storage.root)
        return recorder

    def remove(self, name: str) -> None:
        recorder = self.recorders.get(name)
        if recorder is not None:
            self.recorders = {key: value for key, value in self.recorders.items() if key != name}
            recorder.stop()

    def stop(self) -> None:
        for recorder in self.recorders.values():
            recorder.stop()
        if self.retention is not None:
            self.retention.stop()
        if self.storage is not None:
            self.storage.close()

    def open(self) -> tuple[Storage, Retention]:
        """The storage, opened and settled the first time; :class:`ConfigError` if it cannot be used."""
        if self.storage is None or self.retention is None:
            try:
                storage = Storage(self.root)
            except (OSError, sqlite3.Error) as exc:
                raise ConfigError(f"STORAGE {str(self.root)!r} cannot be used: "
                                  f"{getattr(exc, 'strerror', None) or exc}") from None
            reconcile(storage)
            retention = Retention(storage, self.limits)
            retention.start()
            self.storage, self.retention = storage, retention
            limits = self.limits
            log.info("recordings in %s: keeping %s, up to %s, leaving %s free", storage.root,
                     f"{limits.retain_days:g} days" if limits.retain_days else "everything",
                     format_bytes(limits.max_bytes) if limits.max_bytes else "any size",
                     format_bytes(limits.min_free))
        return self.storage, self.retention


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
