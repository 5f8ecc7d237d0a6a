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


# Profiles whose SPS carries chroma format, bit depths and scaling matrices (ITU-T H.264, 7.3.2.1.1).
_HIGH_PROFILES = {100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135}


class _Bits:
    """Reads an RBSP bit by bit, with Exp-Golomb codes; IndexError past its end."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.at = 0

    def bits(self, count: int) -> int:
        value = 0
        for _ in range(count):
            byte = self.data[self.at >> 3]
            value = (value << 1) | ((byte >> (7 - (self.at & 7))) & 1)
            self.at += 1
        return value

    def ue(self) -> int:
        zeros = 0
        while self.bits(1) == 0:
            zeros += 1
            if zeros > 31:
                raise IndexError("an Exp-Golomb code of more than 32 bits")
        return (1 << zeros) - 1 + self.bits(zeros)

    def se(self) -> int:
        value = self.ue()
        return (value + 1) // 2 if value & 1 else -(value // 2)


def _rbsp(unit: bytes) -> bytes:
    """A NAL unit's payload without its header byte and its emulation prevention bytes (00 00 03)."""
    return unit[1:].replace(b"\0\0\3", b"\0\0")


def sps_size(sps: bytes) -> tuple[int, int] | None:
    """The picture size (width, height, after cropping) an H.264 SPS declares; None if it cannot be read.

    Read from the bits rather than by decoding a frame, so that a camera claiming a giant picture is refused
    before anything is allocated for one.
    """
    read = _read_sps(sps)
    return read[0] if read else None


def sps_frame_rate(sps: bytes) -> float | None:
    """The frame rate an H.264 SPS's timing information declares (x264 and most cameras write it); None if
    it declares none."""
    read = _read_sps(sps)
    return read[1] if read else None


def _read_sps(sps: bytes) -> tuple[tuple[int, int] | None, float | None] | None:
    try:
        bits = _Bits(_rbsp(sps))
        profile = bits.bits(8)
        bits.bits(16)  # constraint flags, level
        bits.ue()  # seq_parameter_set_id
        chroma, separate = 1, 0
        if profile in _HIGH_PROFILES:
            chroma = bits.ue()
            if chroma == 3:
                separate = bits.bits(1)
            bits.ue(), bits.ue(), bits.bits(1)  # bit depths, qpprime_y_zero_transform_bypass
            if bits.bits(1):  # seq_scaling_matrix_present
                for index in range(12 if chroma == 3 else 8):
                    if bits.bits(1):
                        _skip_scaling_list(bits, 16 if index < 6 else 64)
        bits.ue()  # log2_max_frame_num_minus4
        order = bits.ue()
        if order == 0:
            bits.ue()
        elif order == 1:
            bits.bits(1), bits.se(), bits.se()
            for _ in range(min(bits.ue(), 255)):
                bits.se()
        bits.ue(), bits.bits(1)  # max_num_ref_frames, gaps_in_frame_num_allowed
        width_mbs, height_units = bits.ue() + 1, bits.ue() + 1
        frames_only = bits.bits(1)
        if not frames_only:
            bits.bits(1)  # mb_adaptive_frame_field
        bits.bits(1)  # direct_8x8_inference
        left = right = top = bottom = 0
        if bits.bits(1):
            left, right, top, bottom = bits.ue(), bits.ue(), bits.ue(), bits.ue()
    except IndexError:
        return None
    crop_x = 1 if chroma == 0 or separate else (2 if chroma in (1, 2) else 1)
    crop_y = (2 - frames_only) * (1 if chroma == 0 or separate else (2 if chroma == 1 else 1))
    width = width_mbs * 16 - (left + right) * crop_x
    height = (2 - frames_only) * height_units * 16 - (top + bottom) * crop_y
    return ((width, height) if width > 0 and height > 0 else None), _vui_frame_rate(bits)


def _vui_frame_rate(bits: _Bits) -> float | None:
    """The frame rate of an SPS's VUI timing information (ITU-T H.264, E.1.1), read from just after the
    cropping."""
    try:
        if not bits.bits(1):  # vui_parameters_present
            return None
        if bits.bits(1) and bits.bits(8) == 255:  # aspect_ratio_info_present, aspect_ratio_idc: extended SAR
            bits.bits(16), bits.bits(16)
        if bits.bits(1):  # overscan_info_present
            bits.bits(1)
        if bits.bits(1):  # video_signal_type_present
            bits.bits(4)
            if bits.bits(1):  # colour_description_present
                bits.bits(24)
        if bits.bits(1):  # chroma_loc_info_present
            bits.ue(), bits.ue()
        if not bits.bits(1):  # timing_info_present
            return None
        ticks, scale = bits.bits(32), bits.bits(32)
    except IndexError:
        return None
    rate = scale / (2 * ticks) if ticks else 0.0
    return rate if 0 < rate <= 1000 else None


def _skip_scaling_list(bits: _Bits, size: int) -> None:
    last = following = 8
    for _ in range(size):
        if following:
            following = (last + bits.se() + 256) % 256
        last = following or last


def starts_picture(sample: bytes, hevc: bool = False) -> bool:
    """Whether a sample (4-byte-length NAL units) begins a new picture: its first slice is the picture's first
    (H.264: ``first_mb_in_slice`` 0; H.265: ``first_slice_segment_in_pic_flag``). True when it holds no
    slice or cannot be read, so that nothing is ever joined by mistake to what came before."""
    at = 0
    while at + 4 < len(sample):
        size = int.from_bytes(sample[at:at + 4], "big")
        unit = sample[at + 4:at + 4 + size]
        at += 4 + size
        if size < 3 or len(unit) < size:
            return True
        if hevc and (unit[0] >> 1) & 0x3F < 32:
            return bool(unit[2] & 0x80)
        if not hevc and 1 <= unit[0] & 0x1F <= 5:
            return bool(unit[1] & 0x80)  # first_mb_in_slice is ue(v): a first bit of 1 is 0
    return True
