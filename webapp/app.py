"""The Flask application factory."""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Flask, session
from flask.json.provider import DefaultJSONProvider

from camera.sender import StreamSender

from . import auth, compat, detect, errors, events, history, metrics, recordings, routes, ws
from .config import CONNECTIONS, EXTENSION, MQTT, SENDER, SLOTS, gather, max_viewers
from .connections import ConnectionStats
from .detectors import DETECTION, OVERLAYS
from .lineup import start_lineup
from .mqtt import MqttPublisher, parse_broker
from .plan import make_plan
from .recording import RECORDING, Recording
from .shared import status_of
from .slots import StreamSlots


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the camstream app.

    ``config`` overrides the ``CAMSTREAM_*`` environment variables, which
    override the config file (``CONFIG``, or ``CAMSTREAM_CONFIG``), which
    overrides :data:`~webapp.config.DEFAULTS`; keys are the variable names
    without the prefix (``SOURCE``, ``CAMERAS``, ``FPS``, ...). Cameras are
    created here but capture nothing until someone watches; detectors
    (``DETECT``) are loaded here, each in its worker process.
    """
    given = dict(config or {})
    settings = gather(given)
    plan = make_plan(settings)
    broker = parse_broker(str(settings.config["MQTT"])) if settings.config.get("MQTT") else None
    app = Flask(
        __name__,
        template_folder=_resource_dir("templates"),
        static_folder=_resource_dir("static"),
    )
    app.json = StrictJSON(app)
    app.config.update(settings.config)
    auth.start_auth(app, settings.config, settings.users, list(plan.cameras), plan.storage)
    auth.install(app)
    app.wsgi_app = auth.TrustedProxy(app.wsgi_app, auth.auth_of(app).trusted)  # type: ignore[method-assign]
    app.context_processor(page_context)
    app.extensions[SLOTS] = StreamSlots(max_viewers(app.config))
    app.extensions[RECORDING] = Recording(plan.storage, plan.limits)
    events.start_events(app, status_of)
    metrics.start_metrics(app)
    app.extensions[MQTT] = MqttPublisher(broker, str(app.config["MQTT_PREFIX"]),
                                         str(app.config["MQTT_DISCOVERY_PREFIX"])) if broker else None
    start_lineup(app, given, settings, plan)
    if app.extensions[MQTT] is not None:
        app.extensions[MQTT].start()
    app.extensions[SENDER] = StreamSender()
    app.extensions[CONNECTIONS] = ConnectionStats()
    app.register_blueprint(auth.bp)
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


def page_context() -> dict[str, Any]:
    """What every page shows of the signed-in user, and the token its forms and scripts send back."""
    return {"principal": auth.principal(), "csrf_token": session.get("csrf", "")}


class StrictJSON(DefaultJSONProvider):
    """JSON as browsers parse it: a NaN or an infinity raises here instead of breaking a page later."""

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        kwargs.setdefault("allow_nan", False)
        return super().dumps(obj, **kwargs)


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
    auth.auth_of(app).streams.stop()
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
