"""Reading the detector settings and starting each camera's detector.

``DETECT`` says which camera runs which detector: ``"name=spec,name=spec"``
(the ``CAMSTREAM_DETECT`` form), a list of ``"name=spec"`` strings (one per
``--detect``), or a mapping of names to specs. A spec without ``name=``
belongs to the only camera of a one-camera server. The options
(``DETECT_CONFIDENCE``, ``DETECT_CLASSES``, ``DETECT_FPS``,
``DETECT_TIMEOUT``) apply to every detector.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from flask import Flask

from camera import BaseCamera
from camera.detect import CameraDetection, OverlayStream, parse_spec

from .config import per_camera
from .settings import ConfigError

# The keys under app.extensions that hold an app's detectors, and its
# cameras' streams with the boxes drawn, by camera name.
DETECTION = "camstream.detection"
OVERLAYS = "camstream.overlays"

log = logging.getLogger("camstream")


def detections_of(app: Flask) -> dict[str, CameraDetection]:
    """The detectors an app runs, by camera name."""
    return app.extensions[DETECTION]


def overlays_of(app: Flask) -> dict[str, OverlayStream]:
    """The streams with boxes drawn of the cameras that have a detector, by camera name."""
    return app.extensions[OVERLAYS]


def build_overlays(detections: Mapping[str, CameraDetection]) -> dict[str, OverlayStream]:
    return {name: OverlayStream(detection.camera, detection) for name, detection in detections.items()}


def build_detections(config: Mapping[str, Any], cameras: Mapping[str, BaseCamera]) -> dict[str, CameraDetection]:
    """Start the detectors ``config`` asks for and wait until each has loaded or failed.

    With ``STRICT_SOURCES`` a detector that cannot load (a missing model, a
    file that is no detector) raises :class:`ConfigError`; otherwise it
    shows ``failed`` with the reason and the rest serve.
    """
    options = {
        "confidence": float(config["DETECT_CONFIDENCE"]),
        "classes": detect_classes(config.get("DETECT_CLASSES")),
        "fps": float(config["DETECT_FPS"]),
        "timeout": float(config["DETECT_TIMEOUT"]),
    }
    detections: dict[str, CameraDetection] = {}
    for name, text in detect_entries(config, list(cameras)):
        try:
            spec = parse_spec(text)
        except ValueError as exc:
            raise ConfigError(f"camera {name!r}: {exc}") from None
        detections[name] = CameraDetection(cameras[name], spec, **options)
    for name, detection in detections.items():
        if cameras[name].usable:
            detection.start()
    for name, detection in detections.items():
        reason = detection.wait_ready() if cameras[name].usable else f"camera {name!r} cannot start"
        if reason is None:
            continue
        if config.get("STRICT_SOURCES"):
            for other in detections.values():
                other.stop(timeout=1.0)
            raise ConfigError(f"detector {detection.spec.text!r} of camera {name!r}: {reason}")
        detection.fail(reason)
    return detections


def detect_entries(config: Mapping[str, Any], names: list[str]) -> list[tuple[str, str]]:
    """``(camera name, spec)`` pairs from ``DETECT``, checked against the cameras there are."""
    return per_camera(config.get("DETECT"), names, "a detector", "SPEC")


def detect_classes(value: object) -> tuple[str, ...]:
    """``DETECT_CLASSES`` (``"person,car"`` or a list) as a tuple of names."""
    if value is None or value == "":
        return ()
    items = value.split(",") if isinstance(value, str) else list(value)  # type: ignore[call-overload]
    return tuple(dict.fromkeys(str(item).strip() for item in items if str(item).strip()))
