"""Just enough of ISO BMFF (MP4) to cut a fragmented MP4 byte stream into its pieces and read what MSE needs.

This module finds the boxes: the init segment (``ftyp`` + ``moov``), each
fragment (``moof`` + ``mdat``) with whether it starts with a keyframe and
when, and the ``codecs`` string a browser's ``MediaSource.isTypeSupported``
takes (``avc1.640028``, ``hvc1.1.6.L93.B0``, ``mp4a.40.2``). It also
rewrites a fragment's times (:func:`rewrite_moof`, :func:`shift_decode_times`)
and an init segment's claimed duration (:func:`init_without_duration`), so
that a recording cut out of a longer stream starts at 0 and lasts what it
holds: a player takes a file's first decode time as its start, and its
``mvhd``/``mehd`` duration as its length.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass

from .fmp4 import box

# Boxes that hold other boxes, on the way to the ones read here.
_CONTAINERS = {b"moov", b"trak", b"mdia", b"minf", b"stbl", b"moof", b"traf", b"mvex", b"edts"}
# The optional fields of tfhd, trun and each trun sample (ISO/IEC 14496-12, 8.8.7 and 8.8.8): the flag that
# says a field is there, its size in bytes, and its name, in the order they are written.
TFHD_FIELDS = ((0x01, 8, "base_data_offset"), (0x02, 4, "description_index"), (0x08, 4, "duration"),
               (0x10, 4, "size"), (0x20, 4, "flags"))
TRUN_FIELDS = ((0x001, 4, "data_offset"), (0x004, 4, "first_sample_flags"))
SAMPLE_FIELDS = ((0x100, 4, "duration"), (0x200, 4, "size"), (0x400, 4, "flags"), (0x800, 4, "composition_offset"))
NON_SYNC_SAMPLE = 0x00010000


class BoxError(ValueError):
    """Bytes that are not the boxes they should be."""


def split_boxes(data: bytes) -> tuple[list[tuple[bytes, bytes]], bytes]:
    """The complete top-level boxes at the start of ``data`` as ``(type, whole box)``, and the bytes left over."""
    boxes = []
    at = 0
    while len(data) - at >= 8:
        size, kind = struct.unpack_from(">I4s", data, at)
        header = 8
        if size == 1:
            if len(data) - at < 16:
                break
            size = struct.unpack_from(">Q", data, at + 8)[0]
            header = 16
        if size < header:
            raise BoxError(f"a {kind!r} box of {size} bytes")
        if len(data) - at < size:
            break
        boxes.append((kind, data[at:at + size]))
        at += size
    return boxes, data[at:]


def children(box: bytes, skip: int = 8) -> Iterator[tuple[bytes, bytes]]:
    """The boxes inside ``box`` (after its ``skip`` bytes of header), as ``(type, payload)``."""
    at = skip
    while at + 8 <= len(box):
        size, kind = struct.unpack_from(">I4s", box, at)
        if size < 8 or at + size > len(box):
            raise BoxError(f"a {kind!r} box of {size} bytes inside {len(box)}")
        yield kind, box[at + 8:at + size]
        at += size


def find(box: bytes, path: list[bytes], skip: int = 8) -> list[bytes]:
    """Payloads of every box at ``path`` under ``box`` (``[b"trak", b"tkhd"]``)."""
    found = []
    for kind, payload in children(box, skip):
        if kind != path[0]:
            continue
        if len(path) == 1:
            found.append(payload)
        elif kind in _CONTAINERS:
            found += find(b"\0" * 8 + payload, path[1:])
    return found


@dataclass(frozen=True)
class Track:
    """One track of an init segment: its id, kind (``vide``/``soun``), timescale and codec string."""

    track_id: int
    kind: str
    timescale: int
    codec: str
    # trex's defaults, which a fragment's samples take unless it says otherwise.
    default_duration: int = 0
    default_flags: int = 0


def tracks(init: bytes) -> list[Track]:
    """The tracks an init segment (``ftyp`` + ``moov``) declares."""
    boxes, _ = split_boxes(init)
    moov = next((box for kind, box in boxes if kind == b"moov"), None)
    if moov is None:
        raise BoxError("an init segment without a moov box")
    defaults = {}
    for trex in find(moov, [b"mvex", b"trex"]):
        track_id, _, duration, _, flags = struct.unpack_from(">IIIII", trex, 4)
        defaults[track_id] = (duration, flags)
    found = []
    for trak in find(moov, [b"trak"]):
        trak_box = b"\0" * 8 + trak
        tkhd = find(trak_box, [b"tkhd"])[0]
        track_id = struct.unpack_from(">I", tkhd, 20 if tkhd[0] == 1 else 12)[0]
        mdhd = find(trak_box, [b"mdia", b"mdhd"])[0]
        timescale = struct.unpack_from(">I", mdhd, 20 if mdhd[0] == 1 else 12)[0]
        handler = find(trak_box, [b"mdia", b"hdlr"])[0][8:12].decode("latin-1")
        stsd = find(trak_box, [b"mdia", b"minf", b"stbl", b"stsd"])[0]
        found.append(Track(track_id, handler, timescale, _codec(stsd), *defaults.get(track_id, (0, 0))))
    return found


def mime_type(init: bytes) -> str:
    """``video/mp4; codecs="avc1.640028, mp4a.40.2"`` for an init segment."""
    codecs = ", ".join(track.codec for track in tracks(init))
    return f'video/mp4; codecs="{codecs}"'


def _codec(stsd: bytes) -> str:
    """The RFC 6381 codec string of a sample description (``stsd`` payload)."""
    entry = stsd[8:]  # version, flags, entry count
    _, kind = struct.unpack_from(">I4s", entry, 0)
    name = kind.decode("latin-1")
    if name in ("avc1", "avc3"):
        config = inner(entry, 8 + 78, b"avcC")
        return f"{name}.{config[1]:02x}{config[2]:02x}{config[3]:02x}" if config else name
    if name in ("hvc1", "hev1"):
        config = inner(entry, 8 + 78, b"hvcC")
        return _hevc_codec(name, config) if config else name
    if name == "mp4a":
        esds = inner(entry, 8 + 28, b"esds")
        return f"mp4a.40.{_aac_object_type(esds)}" if esds else "mp4a.40.2"
    return name


def inner(entry: bytes, skip: int, wanted: bytes) -> bytes | None:
    """The payload of the first ``wanted`` box inside a sample entry (after its ``skip`` bytes), if any."""
    for kind, payload in children(entry, skip):
        if kind == wanted:
            return payload
    return None


def _hevc_codec(name: str, config: bytes) -> str:
    """``hvc1.1.6.L93.B0`` from an ``hvcC`` box (ISO/IEC 14496-15, E.3)."""
    space = ("", "A", "B", "C")[config[1] >> 6]
    tier = "H" if config[1] & 0x20 else "L"
    profile = config[1] & 0x1F
    compatibility = int.from_bytes(config[2:6], "big")
    reversed_bits = int(f"{compatibility:032b}"[::-1], 2)
    level = config[12]
    constraints = config[6:12].rstrip(b"\0")
    text = ".".join(f"{byte:X}" for byte in constraints)
    return f"{name}.{space}{profile}.{reversed_bits:X}.{tier}{level}" + (f".{text}" if text else "")


def _aac_object_type(esds: bytes) -> int:
    """The audio object type in an ``esds``'s AudioSpecificConfig (2 for AAC-LC)."""
    at = esds.find(b"\x05", 4)  # DecoderSpecificInfo's tag
    while at != -1:
        length_at = at + 1
        while length_at < len(esds) and esds[length_at] & 0x80:
            length_at += 1
        config_at = length_at + 1
        if config_at < len(esds):
            return esds[config_at] >> 3 or 2
        at = esds.find(b"\x05", at + 1)
    return 2


@dataclass(frozen=True)
class FragmentInfo:
    """What a ``moof`` says of its first sample of ``track_id``: a keyframe or not, and its decode time."""

    keyframe: bool
    decode_time: int
    duration: int


def fragment_info(moof: bytes, track: Track) -> FragmentInfo | None:
    """The keyframe flag, decode time and total duration of ``track`` in a ``moof``; None if absent."""
    for traf in find(moof, [b"traf"]):
        traf_box = b"\0" * 8 + traf
        tfhd = find(traf_box, [b"tfhd"])[0]
        if struct.unpack_from(">I", tfhd, 4)[0] != track.track_id:
            continue
        defaults, _ = optional_fields(tfhd, 8, TFHD_FIELDS)
        default_duration = defaults.get("duration", track.default_duration)
        default_flags = defaults.get("flags", track.default_flags)
        tfdt = find(traf_box, [b"tfdt"])
        decode_time = 0
        if tfdt:
            decode_time = struct.unpack_from(">Q" if tfdt[0][0] == 1 else ">I", tfdt[0], 4)[0]
        first_flags, duration = None, 0
        for trun in find(traf_box, [b"trun"]):
            first, total = _trun(trun, default_duration, default_flags)
            first_flags = first if first_flags is None else first_flags
            duration += total
        keyframe = not (default_flags if first_flags is None else first_flags) & NON_SYNC_SAMPLE
        return FragmentInfo(keyframe, decode_time, duration)
    return None


def _trun(trun: bytes, default_duration: int, default_flags: int) -> tuple[int | None, int]:
    """The first sample's flags and the run's total duration."""
    header, at = optional_fields(trun, 8, TRUN_FIELDS)
    first = header.get("first_sample_flags")
    total = 0
    for index in range(struct.unpack_from(">I", trun, 4)[0]):
        sample, at = optional_fields(trun, at, SAMPLE_FIELDS)
        if index == 0 and first is None:
            first = sample.get("flags", default_flags)
        total += sample.get("duration", default_duration)
    return first, total


def optional_fields(box: bytes, at: int, layout: tuple[tuple[int, int, str], ...]) -> tuple[dict[str, int], int]:
    """The fields of ``layout`` that the box's flags (its bytes 1-3) say are there, read from ``at`` on; and
    where they end."""
    flags = int.from_bytes(box[1:4], "big")
    found = {}
    for flag, size, name in layout:
        if flags & flag:
            found[name] = int.from_bytes(box[at:at + size], "big")
            at += size
    return found, at


# -- rewriting times ------------------------------------------------------


@dataclass(frozen=True)
class TrackTiming:
    """What a ``moof`` says of one track's samples: the first one's decode time, how many there are, their
    total duration, and how many of them have a duration of 0 (FFmpeg's muxer wrote such)."""

    track_id: int
    decode_time: int
    samples: int
    duration: int
    zero_durations: int


def timings(moof: bytes, defaults: dict[int, int] | None = None) -> list[TrackTiming]:
    """Every track's timing in a ``moof``, in the order of its ``traf`` boxes; ``defaults`` are the init
    segment's ``trex`` default sample durations by track id (0 where not given)."""
    found = []
    for traf in find(moof, [b"traf"]):
        traf_box = b"\0" * 8 + traf
        tfhd = find(traf_box, [b"tfhd"])[0]
        track_id = struct.unpack_from(">I", tfhd, 4)[0]
        fields, _ = optional_fields(tfhd, 8, TFHD_FIELDS)
        default = fields.get("duration", (defaults or {}).get(track_id, 0))
        tfdt = find(traf_box, [b"tfdt"])
        decode_time = _tfdt_time(tfdt[0]) if tfdt else 0
        samples = duration = zeros = 0
        for trun in find(traf_box, [b"trun"]):
            for sample_duration in _trun_durations(trun, default):
                samples += 1
                duration += sample_duration
                zeros += sample_duration == 0
        found.append(TrackTiming(track_id, decode_time, samples, duration, zeros))
    return found


def shift_decode_times(moof: bytes, offsets: dict[int, int]) -> bytes:
    """``moof`` with each listed track's ``tfdt`` moved by its offset (negative to move it earlier); the
    result is written as a version 1 (64-bit) ``tfdt``. ValueError if a time would go below 0."""
    times = {timing.track_id: timing.decode_time + offsets[timing.track_id]
             for timing in timings(moof) if timing.track_id in offsets}
    return rewrite_moof(moof, decode_times=times)


def rewrite_moof(moof: bytes, decode_times: dict[int, int] | None = None, fill: dict[int, int] | None = None,
                 sequence: int | None = None, defaults: dict[int, int] | None = None) -> bytes:
    """A copy of the ``moof`` box ``moof`` with, per track id: its decode time set (``decode_times``, written
    as a version 1 ``tfdt``, added where there was none), each sample whose duration is 0 given ``fill``'s
    duration instead, and the fragment's ``mfhd`` sequence number set to ``sequence``. ``defaults`` are the
    ``trex`` default durations (to tell a sample that has none). The data offsets of its ``trun`` boxes
    (from the ``moof``'s start) are moved by as much as the ``moof`` grew, so the samples stay found in the
    ``mdat`` that follows it."""
    decode_times = decode_times or {}
    fill = fill or {}
    parts: list[bytes | bytearray] = []
    offsets_at: list[tuple[int, int]] = []  # (part index, where in it) of each trun's data offset
    for kind, payload in children(moof):
        if kind == b"mfhd" and sequence is not None:
            parts.append(box(b"mfhd", payload[:4] + struct.pack(">I", sequence & 0xFFFFFFFF)))
        elif kind == b"traf":
            traf, where = _rewrite_traf(payload, decode_times, fill, defaults or {})
            offsets_at += [(len(parts), at) for at in where]
            parts.append(traf)
        else:
            parts.append(box(kind, payload))
    grown = 8 + sum(len(part) for part in parts) - len(moof)
    for index, at in offsets_at:
        part = parts[index]
        assert isinstance(part, bytearray)
        struct.pack_into(">i", part, at, struct.unpack_from(">i", part, at)[0] + grown)
    return box(b"moof", *parts)


def _rewrite_traf(traf: bytes, decode_times: dict[int, int], fill: dict[int, int],
                  defaults: dict[int, int]) -> tuple[bytearray, list[int]]:
    """A rewritten ``traf`` box (see :func:`rewrite_moof`), and where in it each ``trun``'s data offset is."""
    inner = list(children(b"\0" * 8 + traf))
    tfhd = next((payload for kind, payload in inner if kind == b"tfhd"), None)
    if tfhd is None:
        raise BoxError("a traf without a tfhd")
    track_id = struct.unpack_from(">I", tfhd, 4)[0]
    fields, _ = optional_fields(tfhd, 8, TFHD_FIELDS)
    wanted = fill.get(track_id)
    default = fields.get("duration", defaults.get(track_id, 0))
    if wanted and not default and any(_trun_uses_default(payload) for kind, payload in inner if kind == b"trun"):
        fields["duration"] = default = wanted  # samples that take the default take this one
    out = bytearray(b"\0" * 8)
    where = []
    for kind, payload in inner:
        if kind == b"tfhd":
            out += box(b"tfhd", _with_fields(payload[:4], payload[4:8], fields, TFHD_FIELDS))
            if track_id in decode_times and not any(other == b"tfdt" for other, _ in inner):
                out += _tfdt(decode_times[track_id])
        elif kind == b"tfdt" and track_id in decode_times:
            out += _tfdt(decode_times[track_id])
        elif kind == b"trun":
            trun = bytearray(payload)
            if wanted:
                _fill_trun(trun, wanted)
            if int.from_bytes(trun[1:4], "big") & 0x001:  # a data offset: the first field after the count
                where.append(len(out) + 8 + 8)
            out += box(b"trun", trun)
        else:
            out += box(kind, payload)
    struct.pack_into(">I4s", out, 0, len(out), b"traf")
    return out, where


def _tfdt(decode_time: int) -> bytes:
    if decode_time < 0:
        raise ValueError(f"a decode time of {decode_time}: times start at 0")
    return box(b"tfdt", struct.pack(">IQ", 1 << 24, decode_time))


def _tfdt_time(payload: bytes) -> int:
    return struct.unpack_from(">Q" if payload[0] == 1 else ">I", payload, 4)[0]


def _with_fields(version_flags: bytes, head: bytes, fields: dict[str, int],
                 layout: tuple[tuple[int, int, str], ...]) -> bytes:
    """A full box's payload with the optional ``fields`` of ``layout`` (and only those), its flags saying so."""
    flags = int.from_bytes(version_flags[1:4], "big")
    body = b""
    for flag, size, name in layout:
        if name in fields:
            flags |= flag
            body += fields[name].to_bytes(size, "big")
        else:
            flags &= ~flag
    return version_flags[:1] + flags.to_bytes(3, "big") + head + body


def _trun_uses_default(trun: bytes) -> bool:
    """Whether a ``trun``'s samples take the default duration (it gives none of its own)."""
    return not int.from_bytes(trun[1:4], "big") & 0x100 and struct.unpack_from(">I", trun, 4)[0] > 0


def _trun_durations(trun: bytes, default: int) -> list[int]:
    _, at = optional_fields(trun, 8, TRUN_FIELDS)
    durations = []
    for _ in range(struct.unpack_from(">I", trun, 4)[0]):
        sample, at = optional_fields(trun, at, SAMPLE_FIELDS)
        durations.append(sample.get("duration", default))
    return durations


def _fill_trun(trun: bytearray, duration: int) -> None:
    """Give each sample of a ``trun`` (payload) whose own duration is 0 ``duration`` instead, in place."""
    flags = int.from_bytes(trun[1:4], "big")
    if not flags & 0x100:
        return
    _, at = optional_fields(bytes(trun[:16]), 8, TRUN_FIELDS)
    sample_size = sum(size for flag, size, _ in SAMPLE_FIELDS if flags & flag)
    for _ in range(struct.unpack_from(">I", trun, 4)[0]):
        if struct.unpack_from(">I", trun, at)[0] == 0:  # duration is the first of a sample's fields
            struct.pack_into(">I", trun, at, duration)
        at += sample_size


def init_without_duration(init: bytes) -> bytes:
    """An init segment (``ftyp`` + ``moov``) that claims no duration: ``mvhd``, ``tkhd`` and ``mdhd`` say 0
    (unknown: a player adds up the fragments) and no ``mehd`` says how long the fragments last. A file cut
    from a stream must not claim the stream's length."""
    found, rest = split_boxes(init)
    return b"".join(_undurated(kind, whole) for kind, whole in found) + rest


# Where a box's duration is (after its version and flags), for version 0 and version 1.
_DURATION_AT = {b"mvhd": (16, 24), b"mdhd": (16, 24), b"tkhd": (20, 28)}


def _undurated(kind: bytes, whole: bytes) -> bytes:
    header = 16 if struct.unpack_from(">I", whole)[0] == 1 else 8
    payload = whole[header:]
    if kind in (b"moov", b"trak", b"mdia", b"mvex"):
        return box(kind, *(_undurated(child, box(child, body)) for child, body in children(whole, header)
                           if child != b"mehd"))
    if kind in _DURATION_AT and payload:
        version = payload[0]
        at = _DURATION_AT[kind][version == 1]
        size = 8 if version == 1 else 4
        edited = bytearray(payload)
        edited[at:at + size] = bytes(size)
        return box(kind, edited)
    return whole
