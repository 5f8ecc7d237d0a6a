"""Everything an app runs, in one typed object: its cameras with what runs beside each, and the server's parts.

Routes, metrics, MQTT and the command line read what runs through
:func:`runtime_of`; start, reload and shutdown change it only through
:class:`Runtime`'s methods. The cameras are one mapping of
:class:`CameraUnit` (camera, detector, stream with boxes, recorder), so
nothing is kept in step by hand, and the mapping is replaced, never changed
in place: a reader iterates a snapshot while a reload runs.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from flask import Flask

from camera import BaseCamera
from camera.detect import CameraDetection, OverlayStream
from camera.events import EventHub, EventLog
from camera.record import Recorder
from camera.viewers.sender import StreamSender

from ..serve.connections import ConnectionStats
from ..serve.files import Followers
from ..serve.slots import StreamSlots
from .meters import Metrics
from .recording import Recording

if TYPE_CHECKING:
    from camera.remote import BrokerLink

    from ..config.layers import Settings
    from ..config.plan import Plan
    from ..integrations.mqtt import MqttPublisher
    from .peers import Peers

# Where an app keeps its runtime (Flask's place for an extension's state).
EXTENSION = "camstream"
# Requests that read through recordings at once: each holds a worker thread and a core for a while.
MAX_PLAYBACKS = 4
MAX_EXPORTS = 2
# Requests that follow a download as it is made (a worker thread each), in all and from one address.
MAX_FOLLOWERS = 8
MAX_FOLLOWERS_PER_ADDRESS = 2


@dataclass(frozen=True)
class CameraUnit:
    """One camera and what runs beside it: its detector, its stream with boxes drawn, its recorder."""

    camera: BaseCamera
    detection: CameraDetection | None = None
    overlay: OverlayStream | None = None
    recorder: Recorder | None = None

    def stop(self, timeout: float) -> None:
        """Stop what runs beside the camera: recorder first (it holds the camera), then overlay, then detector."""
        if self.recorder is not None:
            self.recorder.stop()
        if self.overlay is not None:
            self.overlay.stop()
        if self.detection is not None:
            self.detection.stop(timeout)
            if self.detection.source is not self.camera:  # its detect stream, there for it alone
                self.detection.source.stop(timeout)


@dataclass
class Lineup:
    """What an app was started with, and the lock that keeps two reloads from overlapping."""

    given: dict
    settings: Settings
    plan: Plan
    lock: threading.Lock = field(default_factory=threading.Lock)


@dataclass
class Runtime:
    """An app's running parts. One per app: two apps in a process share nothing."""

    lineup: Lineup
    recording: Recording
    slots: StreamSlots
    mqtt: MqttPublisher | None = None
    # The NATS connection of remote:GROUP detectors (camera/remote/), when --broker is given.
    broker: BrokerLink | None = None
    # The other camstream boxes whose cameras this one shows (webapp/runtime/peers.py), when --peer is given.
    peers: Peers | None = None
    metrics: Metrics = field(default_factory=Metrics)
    # Every detection result and camera state change (``/events``, WebSocket), and what feeds it.
    events: EventLog = field(default_factory=EventLog)
    hub: EventHub = field(init=False)
    sender: StreamSender = field(default_factory=StreamSender)
    connections: ConnectionStats = field(default_factory=ConnectionStats)
    units: dict[str, CameraUnit] = field(default_factory=dict)
    playbacks: threading.BoundedSemaphore = field(default_factory=lambda: threading.BoundedSemaphore(MAX_PLAYBACKS))
    exports: threading.BoundedSemaphore = field(default_factory=lambda: threading.BoundedSemaphore(MAX_EXPORTS))
    followers: Followers = field(default_factory=lambda: Followers(MAX_FOLLOWERS, MAX_FOLLOWERS_PER_ADDRESS))
    started_at: float = field(default_factory=time.time)
    # Blocks of a camera's status that features outside camera/ add by name (``webrtc``: webapp/api/webrtc.py).
    status_parts: dict[str, Callable[[BaseCamera], object]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.hub = EventHub(self.events, self.status_of)

    @property
    def cameras(self) -> dict[str, BaseCamera]:
        """The cameras, by name, in the settings' order."""
        return {name: unit.camera for name, unit in self.units.items()}

    @property
    def detections(self) -> dict[str, CameraDetection]:
        """The detectors, by camera name."""
        return {name: unit.detection for name, unit in self.units.items() if unit.detection is not None}

    @property
    def overlays(self) -> dict[str, OverlayStream]:
        """The streams with boxes drawn of the cameras that have a detector, by camera name."""
        return {name: unit.overlay for name, unit in self.units.items() if unit.overlay is not None}

    @property
    def recorders(self) -> dict[str, Recorder]:
        """The recorders, by camera name."""
        return {name: unit.recorder for name, unit in self.units.items() if unit.recorder is not None}

    def add(self, units: dict[str, CameraUnit]) -> None:
        self.units = {**self.units, **units}

    def remove(self, name: str) -> CameraUnit | None:
        """Take camera ``name`` out (its routes 404 from now on) and give back what ran, for stopping."""
        unit = self.units.get(name)
        self.units = {key: value for key, value in self.units.items() if key != name}
        return unit

    def order(self, names: list[str]) -> None:
        """The cameras in the order the settings give them (the page shows them so)."""
        self.units = {name: self.units[name] for name in names if name in self.units}

    def status_of(self, camera: BaseCamera) -> dict:
        """A camera's status with its ``detection`` and ``recording`` blocks (None where it has none).

        ``viewers`` counts the viewers of its stream with boxes drawn too.
        """
        status = camera.status()
        unit = self.units.get(camera.name) or CameraUnit(camera)
        if unit.overlay is not None:
            status["viewers"] += unit.overlay.viewers
        parts = {key: part(camera) for key, part in self.status_parts.items()}
        return {**status, **parts, "detection": unit.detection.status() if unit.detection is not None else None,
                "recording": unit.recorder.status() if unit.recorder is not None else None}

    def stop(self, timeout: float, before_join: Callable[[], None] = lambda: None) -> None:
        """End every stream and release every camera, waiting ``timeout`` seconds at most in all."""
        deadline = time.monotonic() + timeout
        if self.mqtt is not None:
            self.mqtt.stop()
            self.mqtt = None
        units = list(self.units.values())
        for unit in units:
            unit.camera.stop(timeout=0)
        if self.broker is not None:
            self.broker.close()
        self.events.close()
        before_join()
        for unit in units:
            unit.stop(max(0.1, deadline - time.monotonic()))
        self.recording.stop()
        self.sender.stop(timeout)
        for unit in units:
            unit.camera.join(max(0.0, deadline - time.monotonic()))


def runtime_of(app: Flask) -> Runtime:
    """The app's :class:`Runtime`."""
    return app.extensions[EXTENSION]
