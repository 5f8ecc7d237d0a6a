"""The Flask application factory."""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Flask
from flask.json.provider import DefaultJSONProvider

from camera.sender import StreamSender

from . import compat, detect, errors, events, history, metrics, recordings, routes, ws
from .config import (
    CONNECTIONS,
    DEFAULTS,
    EXTENSION,
    MQTT,
    SENDER,
    SLOTS,
    build_cameras,
    max_viewers,
    socket_handoff,
)
from .connections import ConnectionStats
from .detectors import DETECTION, OVERLAYS, build_detections, build_overlays, detect_classes, detect_entries
from .mqtt import Broker, MqttPublisher, parse_broker, sensor_labels
from .recording import RECORDING, plan_recording, start_recording
from .settings import check_numbers
from .shared import status_of
from .slots import StreamSlots


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the camstream app.

    ``config`` overrides the ``CAMSTREAM_*`` environment variables, which
    override :data:`~webapp.config.DEFAULTS`; keys are the variable names
    without the prefix (``SOURCE``, ``CAMERAS``, ``FPS``, ...). Cameras are
    created here but capture nothing until someone watches; detectors
    (``DETECT``) are loaded here, each in its worker process.
    """
    app = Flask(
        __name__,
        template_folder=_resource_dir("templates"),
        static_folder=_resource_dir("static"),
    )
    app.json = StrictJSON(app)
    app.config.from_mapping(DEFAULTS)
    app.config.from_prefixed_env("CAMSTREAM")
    if config:
        app.config.from_mapping(config)
    check_numbers(app.config, config, DEFAULTS)
    app.config["SOCKET_HANDOFF"] = socket_handoff(app.config)
    app.extensions[SLOTS] = StreamSlots(max_viewers(app.config))
    broker = parse_broker(str(app.config["MQTT"])) if app.config.get("MQTT") else None
    cameras = app.extensions[EXTENSION] = build_cameras(app.config)
    plan = plan_recording(app.config, cameras, {name for name, _ in detect_entries(app.config, list(cameras))})
    app.extensions[DETECTION] = build_detections(app.config, cameras)
    app.extensions[OVERLAYS] = build_overlays(app.extensions[DETECTION])
    events.start_events(app, status_of)
    try:
        app.extensions[RECORDING] = start_recording(plan, cameras, app.extensions[DETECTION],
                                                    events.events_of(app))
    except BaseException:
        for detection in app.extensions[DETECTION].values():
            detection.stop(timeout=1.0)
        raise
    app.extensions[MQTT] = start_mqtt(app, broker) if broker else None
    app.extensions[SENDER] = StreamSender()
    app.extensions[CONNECTIONS] = ConnectionStats()
    metrics.start_metrics(app)
    app.register_blueprint(routes.bp)
    app.register_blueprint(compat.bp)
    app.register_blueprint(metrics.bp)
    app.register_blueprint(detect.bp)
    app.register_blueprint(events.bp)
    app.register_blueprint(ws.bp)
    app.register_blueprint(history.bp)
    app.register_blueprint(recordings.bp)
    errors.register(app)
    return app


class StrictJSON(DefaultJSONProvider):
    """JSON as browsers parse it: a NaN or an infinity raises here instead of breaking a page later."""

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        kwargs.setdefault("allow_nan", False)
        return super().dumps(obj, **kwargs)


def start_mqtt(app: Flask, broker: Broker) -> MqttPublisher:
    """Publish the app's cameras, detections and events to ``broker``."""
    detections = app.extensions[DETECTION]
    chosen = detect_classes(app.config.get("EVENT_LABELS")) or detect_classes(app.config.get("DETECT_CLASSES"))
    labels = {name: sensor_labels(detection.spec.text, chosen) for name, detection in detections.items()}
    publisher = MqttPublisher(broker, app.extensions[EXTENSION], labels, str(app.config["MQTT_PREFIX"]),
                              str(app.config["MQTT_DISCOVERY_PREFIX"]))
    publisher.start(detections, app.extensions[RECORDING].recorders)
    return publisher


def shutdown(app: Flask, timeout: float = 3.0) -> None:
    """End every stream and release every camera of ``app``, waiting ``timeout`` seconds at most in all."""
    deadline = time.monotonic() + timeout
    publisher = app.extensions.get(MQTT)
    if publisher is not None:
        publisher.stop()
        app.extensions[MQTT] = None
    cameras = app.extensions[EXTENSION].values()
    for camera in cameras:
        camera.stop(timeout=0)
    events.events_of(app).close()
    for overlay in app.extensions[OVERLAYS].values():
        overlay.stop()
    for detection in app.extensions[DETECTION].values():
        detection.stop(max(0.1, deadline - time.monotonic()))
    app.extensions[RECORDING].stop()
    app.extensions[SENDER].stop(timeout)
    for camera in cameras:
        camera.join(max(0.0, deadline - time.monotonic()))


def _resource_dir(name: str) -> str:
    """Where ``templates/`` or ``static/`` is.

    An installed package carries them inside ``webapp/``; a source checkout
    has them at the project's top level.
    """
    here = Path(__file__).resolve().parent
    installed = here / name
    return str(installed if installed.is_dir() else here.parent / name)
