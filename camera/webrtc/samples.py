"""What WebRTC needs out of a camera's fMP4: the H.264 parameter sets (or H.265's ``hvcC``) and the AAC
configuration of the init segment, and each fragment's samples as bytes.

The muxer (camera/media/muxer.py) writes every video frame as a fragment of
its own and AAC in fragments of their own; an ``mdat`` holds a video sample
as 4-byte-length NAL units, and AAC frames raw, one after another, each as
long as the ``trun`` says.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from ..media import boxes

# The NAL unit types that matter here (ITU-T H.264, table 7-1).
NAL_IDR, NAL_SPS, NAL_PPS, NAL_AUD = 5, 7, 8, 9
START_CODE = b"\0\0\0\1"


@dataclass(frozen=True)
class StreamInfo:
    """An init segment, read once per stream: the video's track id, SPS and PPS (Annex B, ready to go before a
    keyframe) and ``avcC`` profile bytes; the AAC track's id and AudioSpecificConfig (None without audio)."""

    video_track: int | None
    parameter_sets: bytes
    profile: bytes  # profile_idc, constraint flags, level_idc (``avcC`` bytes 1-3); empty if not H.264
    audio_track: int | None
    audio_config: bytes | None
    audio_rate: int
    hevc_config: bytes | None = None  # the ``hvcC`` payload of an H.265 stream (what its decoder takes)

    @property
    def h264(self) -> bool:
        return len(self.profile) == 3

    @property
    def hevc(self) -> bool:
        return self.hevc_config is not None


def stream_info(init: bytes) -> StreamInfo:
    """What :class:`StreamInfo` holds, from an init segment (``ftyp`` + ``moov``); raises ``BoxError``."""
    found, _ = boxes.split_boxes(init)
    moov = next((box for kind, box in found if kind == b"moov"), None)
    if moov is None:
        raise boxes.BoxError("an init segment without a moov box")
    video_track = audio_track = None
    parameter_sets, profile, audio_config, audio_rate, hevc_config = b"", b"", None, 0, None
    for track, trak in zip(boxes.tracks(init), boxes.find(moov, [b"trak"]), strict=True):
        stsd = boxes.find(b"\0" * 8 + trak, [b"mdia", b"minf", b"stbl", b"stsd"])[0]
        entry = stsd[8:]
        kind = entry[4:8]
        if track.kind == "vide" and video_track is None:
            video_track = track.track_id
            if kind in (b"avc1", b"avc3"):
                config = boxes.inner(entry, 8 + 78, b"avcC")
                if config is not None:
                    parameter_sets, profile = _avcc_parameter_sets(config), config[1:4]
            elif kind in (b"hvc1", b"hev1"):
                hevc_config = boxes.inner(entry, 8 + 78, b"hvcC")
        elif track.kind == "soun" and audio_track is None and kind == b"mp4a":
            esds = boxes.inner(entry, 8 + 28, b"esds")
            config = _decoder_specific_info(esds) if esds is not None else None
            if config:
                audio_track, audio_config, audio_rate = track.track_id, config, track.timescale
    return StreamInfo(video_track, parameter_sets, profile, audio_track, audio_config, audio_rate, hevc_config)


def _avcc_parameter_sets(config: bytes) -> bytes:
    """The SPS and PPS of an ``avcC`` payload (ISO/IEC 14496-15, 5.3.3.1), each after a start code."""
    out = bytearray()
    at = 5
    count = config[at] & 0x1F if at < len(config) else 0
    at += 1
    for group in range(2):
        for _ in range(count):
            if at + 2 > len(config):
                return bytes(out)
            size = struct.unpack_from(">H", config, at)[0]
            out += START_CODE + config[at + 2:at + 2 + size]
            at += 2 + size
        if group == 0:
            if at >= len(config):
                break
            count = config[at]
            at += 1
    return bytes(out)


def _decoder_specific_info(esds: bytes) -> bytes | None:
    """The AudioSpecificConfig inside an ``esds`` payload (ISO/IEC 14496-1 descriptors, tag 5)."""
    at = 4  # version and flags
    while at < len(esds):
        tag = esds[at]
        at += 1
        length = 0
        for _ in range(4):
            byte = esds[at]
            at += 1
            length = (length << 7) | (byte & 0x7F)
            if not byte & 0x80:
                break
        if tag == 0x03:  # ES_Descriptor: ES_ID, flags, then optional fields, then what it holds
            flags = esds[at + 2]
            at += 3 + (2 if flags & 0x80 else 0) + (2 if flags & 0x20 else 0)
            if flags & 0x40:
                at += 1 + esds[at]
        elif tag == 0x04:  # DecoderConfigDescriptor: 13 bytes, then what it holds
            at += 13
        elif tag == 0x05:
            return esds[at:at + length]
        else:
            at += length
    return None


def samples(fragment: bytes, track_id: int) -> list[bytes]:
    """The samples of ``track_id`` in one ``moof`` + ``mdat``, in order; [] if it holds none of that track."""
    found, _ = boxes.split_boxes(fragment)
    moof_start = 0
    for kind, box in found:
        if kind == b"moof":
            moof = box
            break
        moof_start += len(box)
    else:
        return []
    out: list[bytes] = []
    for traf in boxes.find(moof, [b"traf"]):
        traf_box = b"\0" * 8 + traf
        tfhd = boxes.find(traf_box, [b"tfhd"])[0]
        if struct.unpack_from(">I", tfhd, 4)[0] != track_id:
            continue
        defaults, _ = boxes.optional_fields(tfhd, 8, boxes.TFHD_FIELDS)
        base = defaults.get("base_data_offset", 0)  # default-base-is-moof: offsets from the moof's start
        default_size = defaults.get("size", 0)
        for trun in boxes.find(traf_box, [b"trun"]):
            header, at = boxes.optional_fields(trun, 8, boxes.TRUN_FIELDS)
            offset = base + header.get("data_offset", 0)
            position = moof_start + offset
            for _ in range(struct.unpack_from(">I", trun, 4)[0]):
                sample, at = boxes.optional_fields(trun, at, boxes.SAMPLE_FIELDS)
                size = sample.get("size", default_size)
                out.append(fragment[position:position + size])
                position += size
    return out


def nal_types(sample: bytes) -> list[int]:
    """The types of the NAL units of a length-prefixed H.264 sample."""
    types = []
    at = 0
    while at + 4 < len(sample):
        size = struct.unpack_from(">I", sample, at)[0]
        types.append(sample[at + 4] & 0x1F)
        at += 4 + size
    return types


def annex_b(sample: bytes, parameter_sets: bytes, keyframe: bool) -> bytes:
    """A length-prefixed H.264 sample with start codes instead (what RTP packetizing splits on); a keyframe
    without its own SPS and PPS gets the init segment's in front, so a browser can start there. Access unit
    delimiters are left out (WebRTC carries none)."""
    out = bytearray()
    has_sps = False
    at = 0
    while at + 4 <= len(sample):
        size = struct.unpack_from(">I", sample, at)[0]
        unit = sample[at + 4:at + 4 + size]
        at += 4 + size
        if not unit:
            continue
        kind = unit[0] & 0x1F
        if kind == NAL_AUD:
            continue
        has_sps = has_sps or kind == NAL_SPS
        out += START_CODE + unit
    if keyframe and not has_sps and parameter_sets:
        return parameter_sets + bytes(out)
    return bytes(out)
