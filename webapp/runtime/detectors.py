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
from camera.detect.spec import REMOTE
from camera.remote import BrokerLink, RemoteDetection

from ..config.values import ConfigError

if TYPE_CHECKING:
    from ..config.plan import DetectorPlan

log = logging.getLogger("camstream")


def start_detections(wanted: Mapping[str, tuple[BaseCamera, DetectorPlan, BaseCamera | None]],
                     strict: bool, link: BrokerLink | None = None) -> dict[str, CameraDetection]:
    """Start the detectors ``wanted`` (by camera name: the camera, its detector, its detect stream if it has
    one) and wait until each has loaded or failed.

    With ``strict`` a detector that cannot load (a missing model, a file
    that is no detector) raises :class:`ConfigError`; otherwise it shows
    ``failed`` with the reason and the rest serve.
    """
    detections = {name: _detection(camera, plan, source, link) for name, (camera, plan, source) in wanted.items()}
    for detection in detections.values():
        if detection.source.usable:
            detection.start()
    for name, detection in detections.items():
        reason = detection.wait_ready() if detection.source.usable else f"camera {name!r} cannot start"
        if reason is None:
            continue
        if strict:
            for other in detections.values():
                other.stop(timeout=1.0)
                if other.source is not other.camera:
                    other.source.stop(timeout=1.0)
            raise ConfigError(f"detector {detection.spec.text!r} of camera {name!r}: {reason}")
        detection.fail(reason)
    return detections


def _detection(camera: BaseCamera, plan: DetectorPlan, source: BaseCamera | None,
               link: BrokerLink | None) -> CameraDetection:
    spec = parse_spec(plan.spec)
    if spec.kind != REMOTE:
        return CameraDetection(camera, spec, source=source, **plan.options())
    if link is None:  # make_plan says so first; a camera given as an object may not have been through it
        raise ConfigError(f"camera {camera.name!r} detects with {plan.spec!r}, which needs --broker")
    return RemoteDetection(camera, spec, link, fps=plan.fps, deadline=plan.deadline, in_flight=plan.in_flight,
                           source=source)
