"""The camera both examples stream, from the same ``CAMSTREAM_*`` variables as camstream's own server."""

from __future__ import annotations

import os

from camera import BaseCamera, create_camera


def camera_from_environment() -> BaseCamera:
    """The camera ``CAMSTREAM_SOURCE`` names (``auto`` when unset): a device, a file, rtsp://, http://, ``pattern``.

    ``CAMSTREAM_FPS``, ``CAMSTREAM_WIDTH``, ``CAMSTREAM_QUALITY`` and
    ``CAMSTREAM_IDLE_TIMEOUT`` are read as camstream reads them. Nothing is
    opened until someone watches.
    """
    options: dict[str, float | int] = {}
    for key, kind in (("FPS", float), ("WIDTH", int), ("HEIGHT", int), ("QUALITY", int), ("IDLE_TIMEOUT", float)):
        value = os.environ.get(f"CAMSTREAM_{key}")
        if value:
            try:
                options[key.lower()] = kind(value)
            except ValueError:
                raise SystemExit(f"CAMSTREAM_{key} must be a number, not {value!r}") from None
    return create_camera("default", os.environ.get("CAMSTREAM_SOURCE", "auto"), **options)
