"""camstream's capture side: cameras, frame fan-out, JPEG and MJPEG framing.

One capture thread per camera reads a source, encodes each frame once and
publishes it; every viewer holds a subscription that always yields the
newest frame. Nothing here knows about Flask or HTTP servers.

The stream bodies are in :mod:`camera.viewers.wsgi` (a thread per viewer, for
WSGI) and :mod:`camera.viewers.aio` (on an asyncio event loop, for ASGI apps);
detection is in :mod:`camera.detect` and recording in :mod:`camera.record`.
"""

from .base import FAILED, IDLE, RECONNECTING, STARTING, STREAMING, BaseCamera, CameraState
from .broadcast import Broadcaster, Subscription
from .errors import SourceError
from .frame import Frame
from .redact import redact_url
from .sources import (
    HttpCamera,
    OpenCVCamera,
    PacketCamera,
    PatternCamera,
    UnusableCamera,
    VideoFileCamera,
    create_camera,
)

__all__ = [
    "FAILED",
    "IDLE",
    "RECONNECTING",
    "STARTING",
    "STREAMING",
    "BaseCamera",
    "Broadcaster",
    "CameraState",
    "Frame",
    "HttpCamera",
    "OpenCVCamera",
    "PacketCamera",
    "PatternCamera",
    "SourceError",
    "Subscription",
    "UnusableCamera",
    "VideoFileCamera",
    "create_camera",
    "redact_url",
]
