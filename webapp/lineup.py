"""An app's cameras and what runs beside each: its detector, its stream with boxes drawn, its recorder.

:func:`start_lineup` starts them from a :class:`~webapp.plan.Plan`;
:func:`reload` (SIGHUP) reads the settings again and touches only the
cameras whose plan changed: a removed camera stops (its viewers' streams
end), a changed one is replaced, an added one starts, and the viewers of
every other camera never notice. Settings that only a restart can change
(the port, the storage, the broker) are named in the log instead; users
are taken anew.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from flask import Flask

from camera import BaseCamera, SourceError, UnusableCamera, create_camera
from camera.detect import OverlayStream

from . import metrics
from .auth import auth_of
from .config import EXTENSION, MQTT, Settings, cameras_of, gather
from .detectors import DETECTION, OVERLAYS, detections_of, overlays_of, start_detections
from .events import events_of, hub_of
from .plan import CameraPlan, Plan, make_plan
from .recording import recording_of

LINEUP = "camstream.lineup"

# Settings read once, when the app starts.
RESTART_KEYS = ("HOST", "PORT", "THREADS", "LOG_LEVEL", "MAX_VIEWERS", "SOCKET_HANDOFF", "STORAGE", "RETAIN_DAYS",
                "MAX_STORAGE", "MIN_FREE", "MQTT", "MQTT_PREFIX", "MQTT_DISCOVERY_PREFIX", "SECRET_KEY",
                "ALLOWED_HOSTS", "TRUSTED_PROXIES", "CORS_ORIGINS", "SESSION_LIFETIME", "LOGIN_ATTEMPTS",
                "LOCKOUT_SECONDS")

log = logging.getLogger("camstream")


@dataclass
class Lineup:
    """What an app was started with, and the lock that keeps two reloads from overlapping."""

    given: dict[str, Any]
    settings: Settings
    plan: Plan
    lock: threading.Lock = field(default_factory=threading.Lock)


@dataclass
class Change:
    """What a reload did, by camera name; ``restart`` names the changed settings that need a restart."""

    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    restart: list[str] = field(default_factory=list)


def start_lineup(app: Flask, given: dict[str, Any], settings: Settings, plan: Plan) -> None:
    """Build every camera of ``plan`` with its detector, overlay and recorder, and hook them to the app."""
    app.extensions[LINEUP] = Lineup(given, settings, plan)
    app.extensions[EXTENSION] = {}
    app.extensions[DETECTION] = {}
    app.extensions[OVERLAYS] = {}
    _add(app, list(plan.cameras.values()), strict=bool(settings.config.get("STRICT_SOURCES")))


def reload(app: Flask) -> Change:
    """Read the config file and the environment again and apply what changed; :class:`ConfigError` changes nothing."""
    lineup: Lineup = app.extensions[LINEUP]
    with lineup.lock:
        settings = gather(lineup.given)
        plan = make_plan(settings)
        auth_of(app).update(settings.config, settings.users, list(plan.cameras))
        old = lineup.plan.cameras
        change = Change(
            added=[name for name in plan.cameras if name not in old],
            removed=[name for name in old if name not in plan.cameras],
            changed=[name for name, wanted in plan.cameras.items() if name in old and old[name] != wanted],
            unchanged=[name for name, wanted in plan.cameras.items() if old.get(name) == wanted],
            restart=[key.lower() for key in RESTART_KEYS
                     if settings.config.get(key) != lineup.settings.config.get(key)])
        if any(camera.record for camera in plan.cameras.values()):
            recording_of(app).open()  # a storage that cannot be used is found before anything stops
        try:
            _remove(app, change.removed + change.changed)
            _add(app, [plan.cameras[name] for name in change.changed + change.added], strict=False)
        finally:
            # What runs now: a camera that failed to start is missing, and the next reload starts it.
            running = {name: plan.cameras.get(name) or old[name] for name in cameras_of(app)}
            lineup.plan = replace(plan, cameras=running)
            _reorder(app, list(plan.cameras))
        app.config["SNAPSHOT_TIMEOUT"] = settings.config["SNAPSHOT_TIMEOUT"]
        lineup.settings = settings
    return change


def reload_logged(app: Flask) -> Change | None:
    """:func:`reload`, saying in the log what it did, or why it did nothing."""
    try:
        change = reload(app)
    except (SourceError, ValueError) as exc:
        log.error("reload: nothing changed: %s", exc)
        return None
    except Exception:
        log.exception("reload: failed part way")
        return None
    parts = [f"{what} {', '.join(names)}" for what, names in
             (("added", change.added), ("removed", change.removed), ("changed", change.changed)) if names]
    log.info("reload: %s; %d camera(s) unchanged", "; ".join(parts) or "no camera changed", len(change.unchanged))
    if change.restart:
        log.warning("reload: %s changed; that takes a restart", ", ".join(change.restart))
    return change


def _add(app: Flask, plans: list[CameraPlan], strict: bool) -> None:
    cameras = {plan.name: _camera(plan, strict) for plan in plans}
    wanted = {plan.name: (cameras[plan.name], plan.detector) for plan in plans if plan.detector is not None}
    detections = start_detections(wanted, strict)
    overlays = {name: OverlayStream(detection.camera, detection) for name, detection in detections.items()}
    recording = recording_of(app)
    try:
        recorders = {plan.name: recording.add(cameras[plan.name], plan.record, detections.get(plan.name))
                     for plan in plans if plan.record is not None}
    except BaseException:
        for detection in detections.values():
            detection.stop(timeout=1.0)
        raise
    app.extensions[EXTENSION] = {**cameras_of(app), **cameras}
    app.extensions[DETECTION] = {**detections_of(app), **detections}
    app.extensions[OVERLAYS] = {**overlays_of(app), **overlays}
    events = events_of(app)
    publisher = app.extensions.get(MQTT)
    for plan in plans:
        name, camera, detection, recorder = plan.name, cameras[plan.name], detections.get(plan.name), recorders.get(plan.name)
        hub_of(app).watch(camera, detection)
        if detection is not None:
            metrics.watch_detection(app, name, detection)
        if recorder is not None:
            recorder.add_event_listener(lambda kind, event: events.publish(kind, event["camera"], event))
        if publisher is not None:
            publisher.add(camera, plan.labels, detection, recorder)


def _camera(plan: CameraPlan, strict: bool) -> BaseCamera:
    if isinstance(plan.source, BaseCamera):
        return plan.source
    options = dict(plan.options)
    try:
        return create_camera(plan.name, plan.source, **options)
    except SourceError as exc:
        if strict:
            raise
        log.error("camera %s: %s; it stays failed, the other cameras serve", plan.name, exc)
        return UnusableCamera(plan.name, plan.source, str(exc), **options)


def _remove(app: Flask, names: Iterable[str]) -> None:
    for name in names:
        camera = cameras_of(app).get(name)
        if camera is None:
            continue
        _stop_beside(app, name)
        app.extensions[EXTENSION] = {key: value for key, value in cameras_of(app).items() if key != name}
        hub_of(app).forget(name)
        metrics.forget_camera(app, name)
        publisher = app.extensions.get(MQTT)
        if publisher is not None:
            publisher.remove(name)
        camera.stop(timeout=5.0)


def _stop_beside(app: Flask, name: str) -> None:
    """Stop what runs beside camera ``name``: recorder first (it holds the camera), then overlay, then detector."""
    recording_of(app).remove(name)
    overlay = overlays_of(app).get(name)
    if overlay is not None:
        app.extensions[OVERLAYS] = {key: value for key, value in overlays_of(app).items() if key != name}
        overlay.stop()
    detection = detections_of(app).get(name)
    if detection is not None:
        app.extensions[DETECTION] = {key: value for key, value in detections_of(app).items() if key != name}
        detection.stop(timeout=3.0)


def _reorder(app: Flask, names: list[str]) -> None:
    """The app's cameras in the order the settings give them (the page shows them so)."""
    for key in (EXTENSION, DETECTION, OVERLAYS):
        current = app.extensions[key]
        app.extensions[key] = {name: current[name] for name in names if name in current}
    recording = recording_of(app)
    recording.recorders = {name: recording.recorders[name] for name in names if name in recording.recorders}

