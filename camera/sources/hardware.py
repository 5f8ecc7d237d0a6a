"""Hardware decoding through FFmpeg (``--hwaccel``): whether a device decodes here, found out once per process.

PyAV's wheel is built with some device types (``hwdevices_available()``: cuda, qsv, drm, amf on Linux, not
vaapi); a type it has may still have no device on this machine, or no driver that decodes H.264. A device is
tried once by making an H.264 decoder on it; a camera that asks for one that does not work decodes in software
and says so in one log line and in its status.
"""

from __future__ import annotations

import threading

import av
from av.codec.hwaccel import HWAccel, hwdevices_available

NONE, AUTO = "none", "auto"
# What the setting accepts: FFmpeg's device types, whether or not this machine's PyAV has them.
KINDS = (NONE, AUTO, "cuda", "vaapi", "qsv", "drm", "videotoolbox", "d3d11va", "dxva2", "vulkan", "amf")

_lock = threading.Lock()
_tried: dict[str, str | None] = {}


def accelerator(wanted: str) -> tuple[HWAccel | None, str]:
    """What to open a stream with for ``--hwaccel wanted``: the accelerator (None for software) and a note
    that says which, or why not."""
    if wanted == NONE:
        return None, "software"
    kinds = list(hwdevices_available()) if wanted == AUTO else [wanted]
    reasons = []
    for kind in kinds:
        reason = _try(kind)
        if reason is None:
            return HWAccel(device_type=kind, allow_software_fallback=True), kind
        reasons.append(f"{kind}: {reason}")
    if not kinds:
        reasons.append("this PyAV has no device types")
    return None, f"software ({wanted} is not available: {'; '.join(reasons)})"


def _try(kind: str) -> str | None:
    """None if an H.264 decoder can be made on a ``kind`` device, else why not."""
    with _lock:
        if kind not in _tried:
            _tried[kind] = _probe(kind)
        return _tried[kind]


def _probe(kind: str) -> str | None:
    if kind not in hwdevices_available():
        return f"this PyAV's FFmpeg has no {kind} (it has {', '.join(hwdevices_available()) or 'none'})"
    try:
        context = av.CodecContext.create("h264", "r", hwaccel=HWAccel(device_type=kind, allow_software_fallback=False))
    except (av.FFmpegError, RuntimeError, ValueError) as exc:
        return f"no {kind} device here ({exc})"
    if not context.is_hwaccel:
        return f"no {kind} decoder for H.264"
    return None
