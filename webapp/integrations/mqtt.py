"""MQTT: what happens to the cameras, published to a broker, and Home Assistant's discovery of them.

With ``--mqtt mqtt://[user:password@]host[:port]`` (``mqtts://`` for TLS),
under the prefix (``camstream`` by default):

- ``camstream/status``: ``online``, retained; ``offline`` when camstream
  stops, and as its last will if it dies;
- ``camstream/<camera>/availability``: ``online`` while the camera streams,
  else ``offline``, retained;
- ``camstream/<camera>/detection``: every detection result, as JSON;
- ``camstream/<camera>/<label>``: ``ON`` or ``OFF``, retained: whether the
  newest result has that label (a binary sensor per label, see webapp/config/plan.py);
- ``camstream/<camera>/event``: a recorded event's start and end, as JSON
  (``"type": "start"`` or ``"end"``);
- ``camstream/<camera>/<zone>/<label>``: how many tracked objects of that label are in that zone now (a
  number, retained), for each zone of a tracked camera (camera/track/) and each label it counts (the zone's
  ``objects``, else the camera's labels): a sensor each in Home Assistant;
- ``homeassistant/binary_sensor/...``/config``: discovery, retained, so
  each camera's labels appear in Home Assistant as binary sensors.

paho-mqtt does the protocol in its own thread and reconnects by itself.
Cameras, detectors and recorders only put what happened on a bounded queue
(a full one drops, and counts it), which a thread of this module publishes:
a broker that is slow or down never holds up capture or streaming.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import queue
import socket
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

from camera import STREAMING, BaseCamera
from camera.redact import redact_url

from ..config.values import ConfigError

log = logging.getLogger("camstream.mqtt")

QUEUE_SIZE = 1000
KEEPALIVE_SECONDS = 30


@dataclass(frozen=True)
class Broker:
    host: str
    port: int
    username: str | None
    password: str | None
    tls: bool
    shown: str  # the URL with its password masked, for logs and status


def parse_broker(url: str) -> Broker:
    """``mqtt://[user:password@]host[:port]`` or ``mqtts://...``; :class:`ConfigError` (URL masked) otherwise."""
    shown = redact_url(url)
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        parts, port = None, None
    if parts is None or parts.scheme not in ("mqtt", "mqtts") or not parts.hostname or parts.path not in ("", "/"):
        raise ConfigError(f"MQTT must be mqtt://[user:password@]host[:port] or mqtts://..., not {shown!r}")
    tls = parts.scheme == "mqtts"
    if importlib.util.find_spec("paho") is None:
        raise ConfigError("MQTT needs paho-mqtt: install camstream with its mqtt extra, "
                          "pip install '.[mqtt]' in camstream's folder")
    return Broker(parts.hostname, port or (8883 if tls else 1883), unquote(parts.username) if parts.username else None,
                  unquote(parts.password) if parts.password else None, tls, shown)


class MqttPublisher:
    """Publishes to ``broker`` under ``prefix`` what happens to the cameras :meth:`add` gives it."""

    def __init__(self, broker: Broker, prefix: str = "camstream", discovery_prefix: str = "homeassistant") -> None:
        # Imported here: paho-mqtt is an extra, and parse_broker has checked it is installed.
        import paho.mqtt.client as mqtt
        self.broker = broker
        # Replaced, never changed in place: paho's thread and the publishing thread read them.
        self.cameras: dict[str, BaseCamera] = {}
        self.labels: dict[str, list[str]] = {}
        self.prefix = prefix.strip("/")
        self.discovery_prefix = discovery_prefix.strip("/")
        self.node = f"{socket.gethostname()}-{self.prefix}".replace(".", "_")
        self.published = 0
        self.dropped = 0
        self._queue: queue.Queue[Callable[[], None] | None] = queue.Queue(QUEUE_SIZE)
        self._sensors: dict[tuple[str, str], str] = {}
        # Occupancy sensors: (zone, label) by camera, and the count each last published.
        self.occupancy: dict[str, list[tuple[str, str]]] = {}
        self._counts: dict[tuple[str, str, str], int] = {}
        self._connected = threading.Event()
        self._client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"camstream-{self.node}-{os.getpid()}")
        if broker.username is not None:
            self._client.username_pw_set(broker.username, broker.password)
        if broker.tls:
            self._client.tls_set()
        self._client.will_set(self.topic("status"), "offline", qos=1, retain=True)
        self._client.reconnect_delay_set(1, 30)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._thread = threading.Thread(target=self._run, name="mqtt-publisher", daemon=True)

    def topic(self, *parts: str) -> str:
        return "/".join((self.prefix, *parts))

    # -- wiring --------------------------------------------------------

    def add(self, camera: BaseCamera, labels: Sequence[str], detection: Any = None, recorder: Any = None) -> None:
        """Publish ``camera``'s availability, ``detection``'s results and ``recorder``'s events.

        ``labels`` get a binary sensor each (see :class:`webapp.config.plan.CameraPlan`).
        """
        name = camera.name
        self.cameras = {**self.cameras, name: camera}
        self.labels = {**self.labels, name: list(labels)}
        self.occupancy = {**self.occupancy, name: occupancy_sensors(detection, labels)}
        for zone, label in self.occupancy[name]:
            # Announced as 0 (see _announce); published again only when it changes.
            self._counts.setdefault((name, zone, label), 0)

        def current() -> bool:
            return self.cameras.get(name) is camera

        camera.add_state_listener(lambda camera, state: self._put(lambda: current() and self._availability(name, state)))
        if detection is not None:
            detection.add_result_listener(lambda result: self._put(lambda: current() and self._result(result)))
        if recorder is not None:
            recorder.add_event_listener(lambda kind, event: self._put(lambda: current() and self._event(kind, event)))
        if self._connected.is_set():
            self._put(lambda: current() and self._announce(self._client, name))

    def publish_event(self, kind: str, event: dict[str, Any]) -> None:
        """Publish an event no recorder of this box made (a peer's, camera ``PEER.CAMERA``, from
        webapp/runtime/peers.py) as a recorder's would be: queued, never waited for."""
        self._put(lambda: self._event(kind, event))

    def remove(self, name: str) -> None:
        """Forget a removed camera: offline, and its sensors gone from Home Assistant (empty retained configs)."""
        labels = self.labels.get(name, [])
        counted = self.occupancy.get(name, [])
        self.occupancy = {key: value for key, value in self.occupancy.items() if key != name}
        self.cameras = {key: camera for key, camera in self.cameras.items() if key != name}
        self.labels = {key: value for key, value in self.labels.items() if key != name}

        def forget() -> None:
            self._publish(self.topic(name, "availability"), "offline", retain=True)
            for label in labels:
                self._publish(self.discovery_topic(name, label), "", retain=True)
                self._publish(self.topic(name, label), "", retain=True)
                self._sensors.pop((name, label), None)
            for zone, label in counted:
                self._publish(self.occupancy_discovery_topic(name, zone, label), "", retain=True)
                self._publish(self.topic(name, zone, label), "", retain=True)
                self._counts.pop((name, zone, label), None)
        self._put(forget)

    def start(self) -> None:
        """Connect (in the background) and start publishing."""
        self._thread.start()
        self._client.connect_async(self.broker.host, self.broker.port, KEEPALIVE_SECONDS)
        self._client.loop_start()
        log.info("publishing to MQTT broker %s under %s/", self.broker.shown, self.prefix)

    def stop(self) -> None:
        """Say offline (a clean disconnect sends no last will), then disconnect."""
        try:
            self._queue.put(None, timeout=2.0)
        except queue.Full:
            pass  # the thread is a daemon; what it had not published yet is lost with it
        self._thread.join(5.0)
        if self._connected.is_set():
            for name in self.cameras:
                self._client.publish(self.topic(name, "availability"), "offline", qos=1, retain=True)
            info = self._client.publish(self.topic("status"), "offline", qos=1, retain=True)
            try:
                info.wait_for_publish(2.0)
            except (RuntimeError, ValueError):
                pass
        self._client.disconnect()
        self._client.loop_stop()

    def status(self) -> dict[str, Any]:
        return {"broker": self.broker.shown, "connected": self._connected.is_set(), "published": self.published,
                "dropped": self.dropped}

    # -- the publishing thread -----------------------------------------

    def _put(self, action: Callable[[], None]) -> None:
        """Called where things happen (often with a camera's lock held): queue, never wait."""
        try:
            self._queue.put_nowait(action)
        except queue.Full:
            self.dropped += 1

    def _run(self) -> None:
        while (action := self._queue.get()) is not None:
            try:
                action()
            except Exception:
                log.exception("MQTT: could not publish")

    def _publish(self, topic: str, payload: str, retain: bool = False) -> None:
        if self._client.publish(topic, payload, qos=0, retain=retain).rc == 0:
            self.published += 1

    def _availability(self, name: str, state: str) -> None:
        self._publish(self.topic(name, "availability"), "online" if state == STREAMING else "offline", retain=True)

    def _result(self, result: Any) -> None:
        self._publish(self.topic(result.camera, "detection"), json.dumps(result.as_json(), allow_nan=False))
        seen = {detection.label for detection in result.detections}
        for label in self.labels.get(result.camera, []):
            state = "ON" if (label in seen if label != "object" else seen) else "OFF"
            if self._sensors.get((result.camera, label)) != state:
                self._sensors[(result.camera, label)] = state
                self._publish(self.topic(result.camera, label), state, retain=True)
        self._occupancy(result)

    def _occupancy(self, result: Any) -> None:
        """Each zone's count per label of tracked objects in it, published when it changes."""
        counts: dict[tuple[str, str], int] = dict.fromkeys(self.occupancy.get(result.camera, []), 0)
        for detection in result.detections:
            if getattr(detection, "track", None) is None:
                continue
            for zone in detection.zones:
                counts[(zone, detection.label)] = counts.get((zone, detection.label), 0) + 1
        for (zone, label), count in counts.items():
            key = (result.camera, zone, label)
            if self._counts.get(key) != count:
                self._counts[key] = count
                self._publish(self.topic(result.camera, zone, label), str(count), retain=True)

    def _event(self, kind: str, event: dict[str, Any]) -> None:
        payload = {"type": kind.removeprefix("event_"), **event}
        self._publish(self.topic(event["camera"], "event"), json.dumps(payload, allow_nan=False))

    # -- paho's callbacks (its network thread) --------------------------

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        if getattr(reason, "is_failure", False):
            log.warning("MQTT broker %s refused the connection: %s", self.broker.shown, reason)
            return
        self._connected.set()
        log.info("connected to MQTT broker %s", self.broker.shown)
        # Everything retained again: the broker may have restarted without it.
        client.publish(self.topic("status"), "online", qos=1, retain=True)
        for name in self.cameras:
            self._announce(client, name)

    def _announce(self, client: Any, name: str) -> None:
        """A camera's availability, its sensors' discovery configs and states, all retained."""
        camera = self.cameras.get(name)
        if camera is None:
            return
        client.publish(self.topic(name, "availability"), "online" if camera.state == STREAMING else "offline",
                       qos=1, retain=True)
        for label in self.labels.get(name, []):
            client.publish(self.discovery_topic(name, label), json.dumps(self.discovery(name, label)),
                           qos=1, retain=True)
            client.publish(self.topic(name, label), self._sensors.get((name, label), "OFF"), qos=1, retain=True)
        for zone, label in self.occupancy.get(name, []):
            client.publish(self.occupancy_discovery_topic(name, zone, label),
                           json.dumps(self.occupancy_discovery(name, zone, label)), qos=1, retain=True)
            client.publish(self.topic(name, zone, label), str(self._counts.get((name, zone, label), 0)), qos=1,
                           retain=True)

    def _on_disconnect(self, client: Any, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        if self._connected.is_set():
            log.warning("lost the MQTT broker %s (%s); reconnecting", self.broker.shown, reason)
        self._connected.clear()

    # -- Home Assistant ------------------------------------------------

    def _object_id(self, camera: str, label: str) -> str:
        return f"camstream_{self.node}_{camera}_{label}".replace("-", "_").replace(" ", "_")

    def discovery_topic(self, camera: str, label: str) -> str:
        return f"{self.discovery_prefix}/binary_sensor/{self._object_id(camera, label)}/config"

    def occupancy_discovery_topic(self, camera: str, zone: str, label: str) -> str:
        return f"{self.discovery_prefix}/sensor/{self._object_id(camera, f'{zone}_{label}')}_count/config"

    def occupancy_discovery(self, camera: str, zone: str, label: str) -> dict[str, Any]:
        """A sensor of how many ``label`` objects are in ``zone``, on the camera's device."""
        config = self.discovery(camera, label)
        for key in ("payload_on", "payload_off", "device_class"):
            config.pop(key)
        return {**config, "name": f"{zone} {label} count",
                "unique_id": f"{self._object_id(camera, f'{zone}_{label}')}_count",
                "state_topic": self.topic(camera, zone, label), "state_class": "measurement",
                "unit_of_measurement": "objects"}

    def discovery(self, camera: str, label: str) -> dict[str, Any]:
        """A binary sensor, in Home Assistant's MQTT discovery format, grouped under a device per camera."""
        return {
            "name": label,
            "unique_id": self._object_id(camera, label),
            "state_topic": self.topic(camera, label),
            "payload_on": "ON",
            "payload_off": "OFF",
            "device_class": "motion" if label == "motion" else "occupancy",
            "availability": [{"topic": self.topic("status")}, {"topic": self.topic(camera, "availability")}],
            "availability_mode": "all",
            "device": {"identifiers": [f"camstream_{self.node}_{camera}"], "name": f"{camera} (camstream)",
                       "manufacturer": "camstream", "model": "camera"},
        }


def occupancy_sensors(detection: Any, labels: Sequence[str]) -> list[tuple[str, str]]:
    """The (zone, label) pairs a tracked camera's occupancy is published for: each zone's own ``objects``, else
    the camera's labels (those of objects: not ``motion``, nor the catch-all ``object``)."""
    tracking = getattr(detection, "tracking", None)
    if tracking is None:
        return []
    kinds = [label for label in labels if label not in ("motion", "object")]
    return [(zone.name, label) for zone in tracking.rules.zones for label in (sorted(zone.objects) or kinds)]
