"""An app's recording: the storage, its retention and a recorder per camera that records.

``RECORD`` says which camera records how (see webapp/config/plan.py); everything
goes into ``STORAGE`` (``camstream-data`` in the folder camstream runs
from, by default).
"""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

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

from ..config.values import ConfigError

log = logging.getLogger("camstream")

class Recording:
    """An app's storage and its retention, and the recorders that write to them.

    The storage opens with the first camera that records (and is settled
    after a crash then); each recorder is kept with its camera (see
    webapp/runtime/registry.py).
    """

    def __init__(self, root: Path, limits: Limits) -> None:
        self.root = root
        self.limits = limits
        self.storage: Storage | None = None
        self.retention: Retention | None = None

    def add(self, camera: BaseCamera, settings: RecordSettings, detection: CameraDetection | None) -> Recorder:
        """Start recording ``camera``; its detector's results open its events."""
        storage, retention = self.open()
        recorder = Recorder(camera, storage, retention, settings, detector=detection.spec.text if detection else "")
        if detection is not None:
            detection.add_result_listener(recorder.take_result)
        recorder.start()
        log.info("camera %s: recording %s to %s", camera.name, settings.mode, storage.root)
        return recorder

    def stop(self) -> None:
        """Close the storage; the recorders are stopped before, with their cameras."""
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
            if self.limits.max_bytes:  # kept downloads count against the cap: a tenth of it at most
                storage.exports.max_bytes = min(storage.exports.max_bytes, self.limits.max_bytes // 10)
            retention = Retention(storage, self.limits)
            retention.start()
            self.storage, self.retention = storage, retention
            limits = self.limits
            log.info("recordings in %s: keeping %s, up to %s, leaving %s free", storage.root,
                     f"{limits.retain_days:g} days" if limits.retain_days else "everything",
                     format_bytes(limits.max_bytes) if limits.max_bytes else "any size",
                     format_bytes(limits.min_free))
        return self.storage, self.retention
