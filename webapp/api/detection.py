"""The detection endpoints: run a camera's detector now, read its newest result, see the boxes."""

from __future__ import annotations

from flask import Blueprint, Response, abort, current_app, jsonify, request

from camera import BaseCamera
from camera.detect import FAILED, CameraDetection, DetectorError, OverlayStream

from ..runtime.registry import runtime_of
from .common import get_camera, jpeg_response, live_frame, require_usable, unavailable, whole_number

bp = Blueprint("detection", __name__)


def detection_of(camera: BaseCamera) -> CameraDetection:
    """The camera's detector, or a 404 JSON error that says how to give it one."""
    detection = runtime_of(current_app).detections.get(camera.name)
    if detection is None:
        abort(404, description=f"camera {camera.name!r} has no detector; "
                               f"start camstream with --detect {camera.name}=SPEC")
    return detection


def overlay_of(camera: BaseCamera) -> OverlayStream:
    """The camera's stream with boxes drawn, or a 404 JSON error for a camera without a detector."""
    detection_of(camera)
    return runtime_of(current_app).overlays[camera.name]


@bp.post("/api/cameras/<name>/detect")
def detect(name: str) -> Response:
    """Run the detector on the camera's newest live frame now (starting an idle camera) and answer its result."""
    camera = get_camera(name)
    detection = detection_of(camera)
    require_usable(detection.source)
    if detection.state == FAILED:
        abort(unavailable(f"the detector of camera {name!r} cannot run: {detection.status()['last_error']}",
                          retry=False))
    frame = live_frame(detection.source)  # the camera's, or its detect stream's
    try:
        # Long enough for a result on the frame before ours and then on ours.
        result = detection.detect(frame, timeout=2 * detection.timeout + 1)
    except (DetectorError, TimeoutError) as exc:
        abort(unavailable(f"the detector of camera {name!r} gave no result: {exc}",
                          detection=detection.status()))
    return jsonify(result.as_json())


@bp.get("/api/cameras/<name>/detections")
def detections(name: str) -> Response:
    """The newest result of the camera's detector."""
    detection = detection_of(get_camera(name))
    result = detection.latest
    if result is None:
        abort(404, description=f"camera {name!r} has no detection result yet; "
                               f"POST /api/cameras/{name}/detect runs one")
    return jsonify(result.as_json())


def overlay_snapshot(camera: BaseCamera) -> Response:
    """``/snapshot/<name>.jpg?overlay=1``: the frame of the newest result (``&seq=N``: of frame N's result)
    with its boxes drawn, drawn once per result."""
    detection = detection_of(camera)
    raw_seq = request.args.get("seq", "")
    if raw_seq:
        result = detection.result(whole_number(raw_seq, "seq", "a frame number"))
        if result is None:
            abort(404, description=f"no detection result for frame {raw_seq} of camera {camera.name!r} "
                                   "is kept any more")
    else:
        result = detection.latest
        if result is None:
            abort(404, description=f"camera {camera.name!r} has no detection result yet; "
                                   f"POST /api/cameras/{camera.name}/detect runs one")
    return jpeg_response(result.overlay_jpeg(camera.quality), result.frame.timestamp, **{"X-Seq": str(result.frame.seq)})
