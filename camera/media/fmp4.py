"""Writing one fragment of fragmented MP4 (ISO/IEC 14496-12, 8.8): a ``moof`` and the ``mdat`` it describes.

FFmpeg's MP4 muxer closes a fragment only when the next packet arrives,
so each frame would leave a frame interval late; writing the two boxes
here lets a frame go out the moment its packet is in. Every field is
written explicitly (no defaults left to the init segment's ``trex``), so
a player reads each sample's duration, size and flags from the fragment
alone.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

# Sample flags (8.8.3.1): a sync sample depends on nothing; any other depends on others and is not a sync sample.
SYNC_FLAGS = 0x02000000
NON_SYNC_FLAGS = 0x01010000
# tfhd: the data offsets count from the moof; a default duration is given as well (some players read only that).
_TFHD_FLAGS = 0x020000 | 0x000008
# trun: data offset, and each sample's duration, size and flags; composition offsets only where a sample has one.
_TRUN_FLAGS = 0x000001 | 0x000100 | 0x000200 | 0x000400
_TRUN_COMPOSITION = 0x000800


@dataclass(frozen=True)
class Sample:
    """One sample of a track: its bytes as MP4 holds them, its duration and its composition offset in the
    track's timescale."""

    data: bytes
    duration: int
    keyframe: bool = True
    composition_offset: int = 0


def box(kind: bytes, *payload: bytes) -> bytes:
    """A box of ``kind`` around ``payload``."""
    body = b"".join(payload)
    return struct.pack(">I4s", 8 + len(body), kind) + body


def full_box(kind: bytes, version: int, flags: int, *payload: bytes) -> bytes:
    return box(kind, struct.pack(">I", (version << 24) | flags), *payload)


def fragment(sequence: int, track_id: int, decode_time: int, samples: list[Sample]) -> bytes:
    """The ``moof`` + ``mdat`` of ``samples`` of one track, the first decoded at ``decode_time``."""
    composition = any(sample.composition_offset for sample in samples)
    flags = _TRUN_FLAGS | (_TRUN_COMPOSITION if composition else 0)
    rows = b"".join(
        struct.pack(">III", sample.duration, len(sample.data), SYNC_FLAGS if sample.keyframe else NON_SYNC_FLAGS)
        + (struct.pack(">i", sample.composition_offset) if composition else b"")
        for sample in samples)

    def moof(data_offset: int) -> bytes:
        return box(b"moof",
                   full_box(b"mfhd", 0, 0, struct.pack(">I", sequence)),
                   box(b"traf",
                       full_box(b"tfhd", 0, _TFHD_FLAGS, struct.pack(">II", track_id, samples[0].duration)),
                       full_box(b"tfdt", 1, 0, struct.pack(">Q", decode_time)),
                       # Version 1: composition offsets are signed (a B-frame's may be negative).
                       full_box(b"trun", 1, flags, struct.pack(">Ii", len(samples), data_offset), rows)))

    header_size = len(moof(0))
    return moof(header_size + 8) + box(b"mdat", *(sample.data for sample in samples))


def length_prefixed(data: bytes) -> bytes:
    """An H.264/H.265 access unit as MP4 holds it (each NAL unit after its 4-byte length), from Annex B (start
    codes, as RTSP and MPEG-TS carry it); data already length-prefixed (a file's) is returned as it is."""
    if not data.startswith((b"\0\0\1", b"\0\0\0\1")):
        return data
    out = bytearray()
    at = data.find(b"\0\0\1")
    while at != -1:
        begin = at + 3
        following = data.find(b"\0\0\1", begin)
        end = len(data) if following == -1 else following
        # A NAL unit never ends in a zero byte: what trails one is the next start code's leading zero.
        while end > begin and data[end - 1] == 0:
            end -= 1
        if end > begin:
            out += struct.pack(">I", end - begin)
            out += data[begin:end]
        at = following
    return bytes(out)


def raw_aac(data: bytes) -> bytes:
    """An AAC frame without its ADTS header (MPEG-TS carries one; MP4 and RTSP do not)."""
    if len(data) >= 7 and data[0] == 0xFF and data[1] & 0xF0 == 0xF0:
        header = 7 if data[1] & 0x01 else 9  # protection_absent: no CRC
        return data[header:]
    return data


def adts_config(data: bytes) -> bytes | None:
    """The AudioSpecificConfig an ADTS header describes (what an MP4 ``esds`` holds); None if not ADTS."""
    if len(data) < 7 or data[0] != 0xFF or data[1] & 0xF0 != 0xF0:
        return None
    profile = (data[2] >> 6) + 1
    rate_index = (data[2] >> 2) & 0x0F
    channels = ((data[2] & 0x01) << 2) | (data[3] >> 6)
    return struct.pack(">H", (profile << 11) | (rate_index << 7) | (channels << 3))
