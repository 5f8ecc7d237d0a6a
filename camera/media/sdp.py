"""An RTSP camera's session description (SDP, RFC 8866): which tracks it sends, in which codec, at which clock.

Only what a reader of the camera's own stream needs: each ``m=`` section's
kind, payload type, codec, clock rate, channels, its ``a=fmtp`` parameters
(H.264's parameter sets, AAC's configuration) and its ``a=control`` URL.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from urllib.parse import urljoin

# Payload types with a fixed meaning (RFC 3551) that a camera may send without an ``a=rtpmap``.
STATIC_PAYLOADS = {0: ("pcmu", 8000, 1), 8: ("pcma", 8000, 1), 26: ("jpeg", 90000, 1)}
# The most of an SDP taken: a camera's is a few hundred bytes.
MAX_SDP_BYTES = 64 * 1024


@dataclass
class Media:
    """One ``m=`` section: a track the camera offers."""

    kind: str  # "video", "audio", ...
    payload_type: int
    codec: str = ""  # lower case: "h264", "h265", "mpeg4-generic", "pcmu", ...
    clock_rate: int = 90000
    channels: int = 1
    control: str = ""
    fmtp: dict[str, str] = field(default_factory=dict)
    frame_rate: float | None = None  # a=framerate

    def url(self, base: str) -> str:
        """This track's URL for SETUP: its control, made absolute against the session's base."""
        if not self.control or self.control == "*":
            return base
        if "://" in self.control:
            return self.control
        return urljoin(base if base.endswith("/") else base + "/", self.control)

    def parameter_sets(self) -> list[bytes]:
        """The NAL units of ``sprop-parameter-sets`` (H.264) or ``sprop-vps/sps/pps`` (H.265), in order."""
        if self.codec == "h264":
            found = self.fmtp.get("sprop-parameter-sets", "").split(",")
        else:
            found = [self.fmtp.get(key, "") for key in ("sprop-vps", "sprop-sps", "sprop-pps")]
        units = []
        for text in found:
            try:
                unit = base64.b64decode(text.strip(), validate=False)
            except (binascii.Error, ValueError):
                continue
            if unit:
                units.append(unit)
        return units

    def audio_config(self) -> bytes | None:
        """AAC's AudioSpecificConfig from ``config=`` (hex), for ``mpeg4-generic``."""
        try:
            return bytes.fromhex(self.fmtp.get("config", "")) or None
        except ValueError:
            return None


def parse(text: str) -> list[Media]:
    """The tracks of an SDP, in order; lines it does not know are skipped."""
    media: list[Media] = []
    for raw in text[:MAX_SDP_BYTES].splitlines():
        line = raw.strip()
        if line.startswith("m="):
            parts = line[2:].split()
            if len(parts) >= 4 and parts[3].isdigit():
                payload = int(parts[3])
                media.append(Media(parts[0].lower(), payload))
                _static(media[-1])
        elif media and line.startswith("a="):
            _attribute(media[-1], line[2:])
    return media


def _static(media: Media) -> None:
    known = STATIC_PAYLOADS.get(media.payload_type)
    if known is not None:
        media.codec, media.clock_rate, media.channels = known


def _attribute(media: Media, attribute: str) -> None:
    name, _, value = attribute.partition(":")
    if name == "control":
        media.control = value.strip()
        return
    if name == "framerate":
        try:
            media.frame_rate = float(value) if 0 < float(value) <= 1000 else None
        except ValueError:
            pass
        return
    payload, _, rest = value.strip().partition(" ")
    if not payload.isdigit() or int(payload) != media.payload_type:
        return
    if name == "rtpmap":
        encoding, *numbers = rest.strip().split("/")
        media.codec = encoding.lower()
        if numbers and numbers[0].isdigit():
            media.clock_rate = int(numbers[0]) or media.clock_rate
        if len(numbers) > 1 and numbers[1].isdigit():
            media.channels = int(numbers[1]) or 1
    elif name == "fmtp":
        for item in rest.split(";"):
            key, found, text = item.strip().partition("=")
            if found:
                media.fmtp[key.strip().lower()] = text.strip()
