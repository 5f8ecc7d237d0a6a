"""H.264 as RTSP cameras send it (Annex B): the parameter sets a keyframe carries, to notice a new stream.

A camera that changes resolution or profile sends a new SPS with its next
keyframe; the fMP4 init segment must then be made anew. Packets in MP4's
length-prefixed form (a file, RTMP) carry their parameter sets out of band
and are not looked into.
"""

from __future__ import annotations

from dataclasses import dataclass

SPS, PPS = 7, 8


@dataclass(frozen=True)
class ParameterSets:
    """A keyframe's SPS and PPS, and its picture size (decoded once, when the sets change)."""

    sps: bytes
    pps: bytes
    width: int = 0
    height: int = 0

    @property
    def extradata(self) -> bytes:
        """The sets as Annex B extradata, which FFmpeg's MP4 muxer turns into an ``avcC`` box."""
        return b"\0\0\0\1" + self.sps + b"\0\0\0\1" + self.pps


def nal_units(data: bytes) -> list[bytes]:
    """The NAL units of an Annex B packet (start codes of three or four bytes); [] if it is not Annex B."""
    if not data.startswith((b"\0\0\1", b"\0\0\0\1")):
        return []
    # A NAL unit never ends in a zero byte: what trails one is the next start code's leading zero.
    return [unit.rstrip(b"\0") for unit in data.split(b"\0\0\1")[1:] if unit.strip(b"\0")]


def parameter_sets(data: bytes) -> ParameterSets | None:
    """The SPS and PPS an Annex B keyframe carries; None if it carries none."""
    units = nal_units(data)
    sps = next((unit for unit in units if unit[0] & 0x1F == SPS), None)
    pps = next((unit for unit in units if unit[0] & 0x1F == PPS), None)
    return ParameterSets(sps, pps) if sps and pps else None
