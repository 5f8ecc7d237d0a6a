"""Starting an app's cameras and what runs beside each, and applying a reload to them.

:func:`start_lineup` starts them from a :class:`~webapp.config.plan.Plan`;
:func:`reload` (SIGHUP) reads the settings again and touches only the
cameras whose plan changed: a removed camera stops (its viewers' streams
end), a changed one is replaced, an added one starts, and the viewers of
every other camera never notice. Settings that only a restart can change
(the port, the storage, the broker: see webapp/config/table.py) are named
in the log instead; users are taken anew.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from flask import Flask

import camera.track
from camera import BaseCamera, SourceError, UnusableCamera, create_camera
from camera.detect import OverlayStream

from ..auth import auth_of
from ..config.layers import gather
from ..config.plan import CameraPlan, make_plan
from ..config.table import RESTART_KEYS
from .detectors import start_detections
from .peers import Peers, PeerSpec, parse_peers
from .registry import CameraUnit, Runtime, runtime_of

log = logging.getLogger("camstream")


@dataclass
class Change:
    """What a reload did, by camera name; ``restart`` names the changed settings that need a restart."""

    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    restart: list[str] = field(default_factory=list)


def start_lineup(runtime: Runtime, strict: bool) -> None:
    """Build every camera of the runtime's plan with its detector, overlay and recorder."""
    specs = parse_peers(runtime.lineup.settings.config.get("PEERS"))  # a wrong peer stops the start before any camera
    _add(runtime, list(runtime.lineup.plan.cameras.values()), strict=strict)
    _update_peers(runtime, specs)


def _update_peers(runtime: Runtime, specs: dict[str, PeerSpec]) -> None:
    """Start or change the hub's peers (webapp/runtime/peers.py); nothing runs without ``PEERS``."""
    config = runtime.lineup.settings.config
    peers = runtime.peers
    if peers is None:
        if not specs:
            return
        peers = Peers(runtime.lineup.lock, lambda cameras: _add_peer_cameras(runtime, cameras),
                      lambda names: _remove(runtime, names))
        runtime.peers = peers
        peers.events = runtime.events  # the peers' events pushed into the hub's (webapp/runtime/peer_events.py)
        peers.mqtt = runtime.mqtt  # and their events' openings and closings on the hub's MQTT
    peers.update(specs, {"idle_timeout": float(config.get("IDLE_TIMEOUT") or 0)})


def _add_peer_cameras(runtime: Runtime, cameras: list[BaseCamera]) -> None:
    """Peer cameras: no detector or recorder of the hub's own; listed after the local cameras."""
    _add(runtime, [CameraPlan(camera.name, camera, (), None, None, ()) for camera in cameras], strict=False)
    runtime.order(list(runtime.lineup.plan.cameras) + _peer_names(runtime))


def _peer_names(runtime: Runtime) -> list[str]:
    return runtime.peers.names() if runtime.peers is not None else []


def reload(app: Flask) -> Change:
    """Read the config file and the environment again and apply what changed; :class:`ConfigError` changes nothing."""
    runtime = runtime_of(app)
    lineup = runtime.lineup
    with lineup.lock:
        settings = gather(lineup.given)
        plan = make_plan(settings)
        peers = parse_peers(settings.config.get("PEERS"))
        auth_of(app).update(settings.config, settings.users, list(plan.cameras))
        old = _new_rules_in_place(runtime, lineup.plan.cameras, plan.cameras)
        change = Change(
            added=[name for name in plan.cameras if name not in old],
            removed=[name for name in old if name not in plan.cameras],
            changed=[name for name, wanted in plan.cameras.items() if name in old and old[name] != wanted],
            unchanged=[name for name, wanted in plan.cameras.items() if old.get(name) == wanted],
            restart=[key.lower() for key in RESTART_KEYS
                     if settings.config.get(key) != lineup.settings.config.get(key)])
        if any(camera.record for camera in plan.cameras.values()):
            runtime.recording.open()  # a storage that cannot be used is found before anything stops
        try:
            _remove(runtime, change.removed + change.changed)
            _add(runtime, [plan.cameras[name] for name in change.changed + change.added], strict=False)
        finally:
            # What runs now: a camera that failed to start is missing, and the next reload starts it.
            running = {name: plan.cameras.get(name) or old[name] for name in runtime.units
                       if name in plan.cameras or name in old}
            lineup.plan = replace(plan, cameras=running)
            runtime.order(list(plan.cameras) + _peer_names(runtime))
        app.config["SNAPSHOT_TIMEOUT"] = settings.config["SNAPSHOT_TIMEOUT"]
        lineup.settings = settings
        _update_peers(runtime, peers)
    return change


def _new_rules_in_place(runtime: Runtime, old: dict[str, CameraPlan], new: dict[str, CameraPlan]) -> dict[str, CameraPlan]:
    """The running cameras' plans, after giving a camera whose zones, masks or filters alone changed its new
    rules where it runs: its tracking takes them and its tracks go on, instead of the camera, its detector and
    its viewers starting over. Not when its MQTT zone sensors change with them (a new camera tells Home
    Assistant), nor for a camera without a detector."""
    kept = dict(old)
    for name, wanted in new.items():
        was = old.get(name)
        if was is None or was == wanted or wanted.rules is None or replace(was, rules=wanted.rules) != wanted:
            continue
        detection = runtime.detections.get(name)
        if detection is None or (runtime.mqtt is not None and _sensors(was.rules) != _sensors(wanted.rules)):
            continue
        camera.track.update_rules(detection, wanted.rules, runtime.recorders.get(name))
        kept[name] = wanted
    return kept


def _sensors(rules: Any) -> set[tuple[str, frozenset[str]]]:
    """What a camera's MQTT occupancy sensors are made of: its zones and their labels."""
    return {(zone.name, zone.objects) for zone in rules.zones} if rules is not None else set()


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


def _add(runtime: Runtime, plans: list[CameraPlan], strict: bool) -> None:
    cameras = {plan.name: _camera(plan, strict) for plan in plans}
    wanted = {plan.name: (cameras[plan.name], plan.detector, _detect_camera(plan, strict))
              for plan in plans if plan.detector is not None}
    # Looked up before any detector starts: the first lookup imports norfair (a second or two), and results
    # that came meanwhile would be neither tracked nor heard by the listeners added below.
    track_camera = camera.track.track_camera if wanted else None
    detections = start_detections(wanted, strict, runtime.broker)
    # Tracking first: every listener added below (recorder, event log, metrics, MQTT) sees tracked boxes.
    rules = {plan.name: plan.rules for plan in plans}
    for name, detection in detections.items():
        assert track_camera is not None
        track_camera(detection, rules[name])
    try:
        recorders = {plan.name: runtime.recording.add(cameras[plan.name], plan.record, detections.get(plan.name))
                     for plan in plans if plan.record is not None}
        for name, recorder in recorders.items():
            if rules.get(name) is not None:
                recorder.objects.required_zones = frozenset(rules[name].required_zones)
    except BaseException:
        for detection in detections.values():
            detection.stop(timeout=1.0)
        raise
    units = {name: CameraUnit(camera, detections.get(name),
                              OverlayStream(camera, detections[name]) if name in detections else None,
                              recorders.get(name))
             for name, camera in cameras.items()}
    runtime.add(units)
    for plan in plans:
        name, unit = plan.name, units[plan.name]
        runtime.hub.watch(unit.camera, unit.detection)
        if unit.detection is not None:
            runtime.metrics.watch_detection(name, unit.detection)
        if unit.recorder is not None:
            unit.recorder.add_event_listener(lambda kind, event: runtime.events.publish(kind, event["camera"], event))
        if runtime.mqtt is not None:
            runtime.mqtt.add(unit.camera, plan.labels, unit.detection, unit.recorder)


def _camera(plan: CameraPlan, strict: bool) -> BaseCamera:
    if isinstance(plan.source, BaseCamera):
        return plan.source
    return _built(plan.name, plan.source, dict(plan.options), strict)


def _detect_camera(plan: CameraPlan, strict: bool) -> BaseCamera | None:
    """The camera's detect stream, a camera of its own named ``NAME-detect`` (its log lines say which)."""
    if plan.detector is None or plan.detector.source is None:
        return None
    options = {**dict(plan.options), "audio": False, "width": None, "height": None}
    return _built(f"{plan.name}-detect", plan.detector.source, options, strict,
                  what=f"the detect stream of camera {plan.name!r}")


def _built(name: str, source: str, options: dict, strict: bool, what: str | None = None) -> BaseCamera:
    """The camera of ``source``; one that can never work raises (``strict``) or stays failed and says why."""
    try:
        return create_camera(name, source, **options)
    except SourceError as exc:
        if strict and what is None:
            raise
        if strict:
            raise SourceError(f"{what}: {exc}") from None
        log.error("%s: %s; it stays failed, the other cameras serve", what or f"camera {name}", exc)
        options.pop("audio", None)
        options.pop("hwaccel", None)
        options.pop("max_picture_pixels", None)
        return UnusableCamera(name, source, str(exc), **options)


def _remove(runtime: Runtime, names: Iterable[str]) -> None:
    for name in names:
        unit = runtime.remove(name)
        if unit is None:
            continue
        unit.stop(timeout=3.0)
        runtime.hub.forget(name)
        runtime.metrics.forget_camera(name)
        if runtime.mqtt is not None:
            runtime.mqtt.remove(name)
        unit.camera.stop(timeout=5.0)
