"""The Flask application factory."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Flask, session
from flask.json.provider import DefaultJSONProvider

from camera.remote import BrokerLink

from . import auth
from .api import compat, detection, errors, events, media, page, push, recordings, status, streams, webrtc
from .api import zones as zone_editor
from .config.layers import gather, max_viewers
from .config.plan import make_plan
from .integrations import metrics
from .integrations.mqtt import MqttPublisher, parse_broker
from .runtime import mdns
from .runtime.lineup import start_lineup
from .runtime.recording import Recording
from .runtime.registry import EXTENSION, Lineup, Runtime, runtime_of
from .serve.slots import StreamSlots


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the camstream app.

    ``config`` overrides the ``CAMSTREAM_*`` environment variables, which
    override the config file (``CONFIG``, or ``CAMSTREAM_CONFIG``), which
    overrides the defaults (webapp/config/table.py); keys are the variable names
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
    mqtt = MqttPublisher(broker, str(app.config["MQTT_PREFIX"]), str(app.config["MQTT_DISCOVERY_PREFIX"])) \
        if broker else None
    runtime = Runtime(Lineup(given, settings, plan), Recording(plan.storage, plan.limits),
                      StreamSlots(max_viewers(app.config)), mqtt)
    metrics.collect_from(runtime)
    app.extensions[EXTENSION] = runtime
    if any(camera.record for camera in plan.cameras.values()):
        runtime.recording.open()  # a storage another camstream holds stops the start before any camera or broker
    if settings.config.get("BROKER"):
        runtime.broker = BrokerLink(str(settings.config["BROKER"]))
        runtime.broker.start()
    start_lineup(runtime, strict=bool(settings.config.get("STRICT_SOURCES")))
    if mqtt is not None:
        mqtt.start()
    app.register_blueprint(auth.bp)
    for area in (page, streams, status, compat, detection, push, media, events, recordings, metrics, webrtc, zone_editor,
                 mdns):
        app.register_blueprint(area.bp)
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
    # The mDNS goodbye (the other boxes drop this one) takes a few hundred ms of its own: said meanwhile.
    goodbye = threading.Thread(target=mdns.stop, args=(app,), name="mdns-goodbye", daemon=True)
    goodbye.start()
    webrtc.shutdown(app)
    runtime = runtime_of(app)
    if runtime.peers is not None:
        runtime.peers.stop()
    runtime.stop(timeout, before_join=auth.auth_of(app).streams.stop)
    goodbye.join(1.0)


def _resource_dir(name: str) -> str:
    """Where ``templates/`` or ``static/`` is.

    An installed package carries them inside ``webapp/``; a source checkout
    has them at the project's top level.
    """
    here = Path(__file__).resolve().parent
    installed = here / name
    return str(installed if installed.is_dir() else here.parent / name)
