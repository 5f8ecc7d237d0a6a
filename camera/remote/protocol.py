"""What crosses the broker: a frame as a request, the detections as its reply.

A request is one frame's JPEG bytes on subject ``camstream.detect.GROUP``, with the camera, frame number,
capture time, size and deadline in headers; a worker of GROUP's queue group answers with JSON, on the
request's reply subject (under ``camstream.reply``). Anything a
worker sends is checked here before it is believed: a reply for another camera or frame, or one that is not
the shape below, is a :class:`BadReply`.

Reply: ``{"camera": NAME, "seq": N, "worker": ID, "inference_ms": MS, "gated": BOOL, "detections": [{"label":
..., "score": ..., "box": [x, y, w, h], "extra": {...}}]}``, or ``{..., "error": "what went wrong"}``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

from ..detect.detection import Detection, DetectionError, as_detection

PREFIX = "camstream.detect"
# Where replies come back (nats-py's inbox prefix, instead of NATS's shared ``_INBOX``): a broker's
# permissions let camstream's servers alone subscribe here and nobody publish here, so only a worker that
# received a frame can answer it (``allow_responses``), and no one else can put a detection on a camera.
REPLY_PREFIX = "camstream.reply"
CAMERA, SEQ, TIME, WIDTH, HEIGHT, DEADLINE = ("Camstream-Camera", "Camstream-Seq", "Camstream-Time",
                                              "Camstream-Width", "Camstream-Height", "Camstream-Deadline")
# A reply longer than this is nobody's detections.
MAX_REPLY_BYTES = 1 << 20
MAX_DETECTIONS = 1000


class BadReply(ValueError):
    """A worker's answer that is not one: its one line says why."""


@dataclass(frozen=True)
class Reply:
    worker: str
    detections: list[Detection]
    inference_ms: float
    gated: bool


def subject(group: str) -> str:
    """The subject GROUP's workers answer on."""
    return f"{PREFIX}.{group}"


def request_headers(camera: str, seq: int, timestamp: float, width: int, height: int, deadline: float) -> dict:
    return {CAMERA: camera, SEQ: str(seq), TIME: f"{timestamp:.6f}", WIDTH: str(width), HEIGHT: str(height),
            DEADLINE: f"{deadline:.6f}"}


def reply_body(headers: dict, worker: str, detections: list[Detection] | None = None, inference_ms: float = 0.0,
               gated: bool = False, error: str | None = None) -> bytes:
    """A worker's answer to the request with ``headers``."""
    body: dict = {"camera": headers.get(CAMERA), "seq": _int(headers.get(SEQ)), "worker": worker}
    if error is not None:
        body["error"] = error
    else:
        body.update(inference_ms=round(inference_ms, 3), gated=gated,
                    detections=[detection.as_json() for detection in detections or []])
    return json.dumps(body).encode()


def parse_reply(data: bytes, camera: str, seq: int, width: int, height: int) -> Reply:
    """The reply to ``camera``'s frame ``seq`` (``width`` x ``height``); :class:`BadReply` if it is not one,
    :class:`RuntimeError` with the worker's words if its detector failed on the frame."""
    if len(data) > MAX_REPLY_BYTES:
        raise BadReply(f"a reply of {len(data)} bytes")
    try:
        body = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise BadReply("a reply that is not JSON") from None
    if not isinstance(body, dict):
        raise BadReply("a reply that is not a JSON object")
    if body.get("camera") != camera or body.get("seq") != seq:
        raise BadReply(f"a reply for camera {str(body.get('camera'))[:40]!r} frame {str(body.get('seq'))[:20]}, "
                       f"not {camera!r} frame {seq}")
    worker = str(body.get("worker", "?"))[:100]
    if "error" in body:
        raise RuntimeError(f"worker {worker}: {str(body['error'])[:300]}")
    items, inference_ms = body.get("detections"), body.get("inference_ms", 0.0)
    if not isinstance(items, list) or len(items) > MAX_DETECTIONS:
        raise BadReply("a reply without a list of detections")
    if not isinstance(inference_ms, int | float) or not math.isfinite(inference_ms) or inference_ms < 0:
        raise BadReply("a reply with a bad inference_ms")
    try:
        detections = [as_detection(item, width, height) for item in items]
    except DetectionError as exc:
        raise BadReply(f"a bad detection: {exc}") from None
    return Reply(worker, detections, float(inference_ms), bool(body.get("gated", False)))


def _int(text: str | None) -> int | None:
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None
