"""Starting cameras' detectors and waiting until each has loaded.

``DETECT`` says which camera runs which detector, with options
(``DETECT_CONFIDENCE``, ``DETECT_CLASSES``, ``DETECT_FPS``,
``DETECT_TIMEOUT``) per camera: see webapp/config/plan.py.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING

from camera import BaseCamera
from camera.detect import CameraDetection, parse_spec

from ..config.values import ConfigError

if TYPE_CHECKING:
    from ..config.plan import DetectorPlan

log = logging.getLogger("camstream")


def start_detections(wanted: Mapping[str, tuple[BaseCamera, DetectorPlan]], strict: bool) -> dict[str, CameraDetection]:
    """Start the detectors ``wanted`` (by camera name) and wait until each has loaded or failed.

    With ``strict`` a detector that cannot load (a missing model, a file
    that is no detector) raises :class:`ConfigError`; otherwise it shows
    ``failed`` with the reason and the rest serve.
    """
    detections = {name: CameraDetection(camera, parse_spec(plan.spec), **plan.options())
                  for name, (camera, plan) in wanted.items()}
    for detection in detections.values():
        if detection.camera.usable:
            detection.start()
    for name, detection in detections.items():
        reason = detection.wait_ready() if detection.camera.usable else f"camera {name!r} cannot start"
        if reason is None:
            continue
        if strict:
            for other in detections.values():
                other.stop(timeout=1.0)
            raise ConfigError(f"detector {detection.spec.text!r} of camera {name!r}: {reason}")
        detection.fail(reason)
    return detections
