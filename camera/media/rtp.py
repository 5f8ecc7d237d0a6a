"""RTP packets into whole frames, each handed on the moment its last packet is in (RFC 3550, 6184, 7798, 3640).

FFmpeg's RTSP demuxer runs its H.264 parser on what it depacketizes, and
that parser knows a picture is whole only when the next one starts: every
frame waited one frame interval. RTP says it sooner: the packet that ends
a video frame carries the *marker* bit. So camstream depacketizes a
camera's RTP itself, and a frame leaves the moment its marker does.

Each depacketizer takes a track's packets in order and gives
:class:`Unit` s: an H.264/H.265 access unit in Annex B (start codes, as
FFmpeg hands it over), an AAC frame, or G.711 samples, with its RTP time
unwrapped to go on past 2^32.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

# The most one frame may hold: a frame whose marker never comes is dropped past this.
MAX_UNIT_BYTES = 32 * 1024 * 1024
START_CODE = b"\0\0\0\1"

H264_IDR, H264_SPS, H264_PPS, H264_STAP_A, H264_FU_A = 5, 7, 8, 24, 28
H265_VPS, H265_SPS, H265_PPS, H265_AP, H265_FU = 32, 33, 34, 48, 49
H265_IRAP = range(16, 24)


class RtpError(ValueError):
    """A packet that is not RTP."""


@dataclass(frozen=True)
class RtpPacket:
    """The parts of an RTP packet a reader uses."""

    marker: bool
    payload_type: int
    sequence: int
    timestamp: int
    payload: bytes

    @classmethod
    def parse(cls, data: bytes) -> RtpPacket:
        if len(data) < 12 or data[0] >> 6 != 2:
            raise RtpError("not an RTP packet")
        first, second = data[0], data[1]
        sequence, timestamp = struct.unpack_from(">HI", data, 2)
        offset = 12 + 4 * (first & 0x0F)
        if first & 0x10:  # a header extension
            if len(data) < offset + 4:
                raise RtpError("a cut RTP header extension")
            offset += 4 + 4 * struct.unpack_from(">H", data, offset + 2)[0]
        end = len(data) - (data[-1] if first & 0x20 else 0)  # padding
        if offset > end:
            raise RtpError("an RTP packet shorter than its header")
        return cls(bool(second & 0x80), second & 0x7F, sequence, timestamp, data[offset:end])


@dataclass(frozen=True)
class Unit:
    """A whole frame of one track: its RTP time (unwrapped), its bytes, and whether it is a keyframe."""

    time: int
    data: bytes
    keyframe: bool = True


class Clock:
    """A track's 32-bit RTP times as one count that goes on past the wrap (and may step back a little)."""

    def __init__(self) -> None:
        self._last: int | None = None
        self._time = 0

    def unwrap(self, timestamp: int) -> int:
        if self._last is not None:
            step = (timestamp - self._last) & 0xFFFFFFFF
            self._time += step - (1 << 32) if step >= 1 << 31 else step
        else:
            self._time = timestamp
        self._last = timestamp
        return self._time


class Depacketizer:
    """A track's RTP packets in order, whole frames out."""

    def __init__(self) -> None:
        self.clock = Clock()
        self._sequence: int | None = None

    def push(self, packet: RtpPacket) -> list[Unit]:
        time = self.clock.unwrap(packet.timestamp)
        lost = self._sequence is not None and packet.sequence != (self._sequence + 1) & 0xFFFF
        self._sequence = packet.sequence
        return self._take(packet, time, lost)

    def _take(self, packet: RtpPacket, time: int, lost: bool) -> list[Unit]:
        raise NotImplementedError


class _VideoDepacketizer(Depacketizer):
    """What H.264 and H.265 share: NAL units gathered per frame, the frame handed on at its marker (or when a
    packet of a later time comes first: a camera that never sets the marker); a keyframe given the
    parameter sets it lacks (those last seen, or the SDP's), so every keyframe can start a viewer."""

    header_size = 1
    parameter_kinds: tuple[int, ...] = ()

    def __init__(self, parameter_sets: list[bytes]) -> None:
        super().__init__()
        self._sets: dict[int, bytes] = {self._kind(unit): unit for unit in parameter_sets if unit}
        self._units: list[bytes] = []
        self._size = 0
        self._time: int | None = None
        self._fragment: bytearray | None = None

    def _kind(self, unit: bytes) -> int:
        raise NotImplementedError

    def _is_keyframe(self, kind: int) -> bool:
        raise NotImplementedError

    def _units_of(self, payload: bytes) -> list[bytes]:
        raise NotImplementedError

    def _take(self, packet: RtpPacket, time: int, lost: bool) -> list[Unit]:
        out = []
        if self._time is not None and time != self._time:
            out += self._flush()
        if lost:
            self._fragment = None  # a NAL unit missing a piece would not decode
        self._time = time
        if packet.payload:
            for unit in self._units_of(packet.payload):
                self._add(unit)
        if packet.marker:
            out += self._flush()
        return out

    def _add(self, unit: bytes) -> None:
        if len(unit) < self.header_size:
            return
        size = self._size + len(unit) + len(START_CODE)
        if size <= MAX_UNIT_BYTES:
            self._units.append(unit)
            self._size = size

    def _flush(self) -> list[Unit]:
        units, time = self._units, self._time
        self._units, self._size, self._time, self._fragment = [], 0, None, None
        if not units or time is None:
            return []
        kinds = [self._kind(unit) for unit in units]
        keyframe = any(self._is_keyframe(kind) for kind in kinds)
        for unit, kind in zip(units, kinds, strict=True):
            if kind in self.parameter_kinds:
                self._sets[kind] = unit
        if keyframe:
            missing = [self._sets[kind] for kind in self.parameter_kinds if kind in self._sets and kind not in kinds]
            units = missing + units
        return [Unit(time, b"".join(START_CODE + unit for unit in units), keyframe)]

    def _fragment_piece(self, start: bool, end: bool, header: bytes, piece: bytes) -> list[bytes]:
        """A fragmented NAL unit's piece: the unit once its last piece is in."""
        if start:
            self._fragment = bytearray(header)
        if self._fragment is None:
            return []  # its start was lost
        self._fragment += piece
        if len(self._fragment) > MAX_UNIT_BYTES:
            self._fragment = None
            return []
        if not end:
            return []
        unit, self._fragment = bytes(self._fragment), None
        return [unit]


class H264Depacketizer(_VideoDepacketizer):
    """H.264 (RFC 6184): single NAL units, STAP-A and FU-A (what cameras send)."""

    parameter_kinds = (H264_SPS, H264_PPS)

    def _kind(self, unit: bytes) -> int:
        return unit[0] & 0x1F

    def _is_keyframe(self, kind: int) -> bool:
        return kind == H264_IDR

    def _units_of(self, payload: bytes) -> list[bytes]:
        kind = payload[0] & 0x1F
        if kind == H264_STAP_A:
            return _aggregated(payload, 1)
        if kind == H264_FU_A:
            if len(payload) < 2:
                return []
            header = payload[1]
            return self._fragment_piece(bool(header & 0x80), bool(header & 0x40),
                                        bytes([(payload[0] & 0xE0) | (header & 0x1F)]), payload[2:])
        if 1 <= kind <= 23:
            return [payload]
        return []  # STAP-B, MTAP and FU-B: for interleaved sessions, which cameras do not use


class H265Depacketizer(_VideoDepacketizer):
    """H.265 (RFC 7798): single NAL units, aggregation packets and fragmentation units (no DONL)."""

    header_size = 2
    parameter_kinds = (H265_VPS, H265_SPS, H265_PPS)

    def _kind(self, unit: bytes) -> int:
        return (unit[0] >> 1) & 0x3F

    def _is_keyframe(self, kind: int) -> bool:
        return kind in H265_IRAP

    def _units_of(self, payload: bytes) -> list[bytes]:
        if len(payload) < 3:
            return []
        kind = (payload[0] >> 1) & 0x3F
        if kind == H265_AP:
            return _aggregated(payload, 2)
        if kind == H265_FU:
            header = payload[2]
            first = (payload[0] & 0x81) | ((header & 0x3F) << 1)
            return self._fragment_piece(bool(header & 0x80), bool(header & 0x40), bytes([first, payload[1]]),
                                        payload[3:])
        if kind < 48:
            return [payload]
        return []


class AacDepacketizer(Depacketizer):
    """AAC as ``mpeg4-generic`` (RFC 3640, AAC-hbr): each access unit a frame of 1024 samples.

    A packet's frames share its RTP time: the second is 1024 samples later,
    and so on. A frame larger than a packet comes in pieces, the last one
    with the marker.
    """

    FRAME_SAMPLES = 1024

    def __init__(self, size_length: int = 13, index_length: int = 3, index_delta_length: int = 3) -> None:
        super().__init__()
        self._size_length = size_length
        self._index_length = index_length
        self._delta_length = index_delta_length
        self._piece: bytearray | None = None
        self._piece_size = 0
        self._piece_time = 0

    def _take(self, packet: RtpPacket, time: int, lost: bool) -> list[Unit]:
        payload = packet.payload
        if lost:
            self._piece = None
        if len(payload) < 2:
            return []
        header_bits = struct.unpack_from(">H", payload)[0]
        header_bytes = (header_bits + 7) // 8
        sizes = self._sizes(payload[2:2 + header_bytes], header_bits)
        data = payload[2 + header_bytes:]
        if self._piece is not None:
            return self._continue(data)
        if len(sizes) == 1 and sizes[0] > len(data):
            self._piece, self._piece_size, self._piece_time = bytearray(data), sizes[0], time
            return []
        out, at = [], 0
        for index, size in enumerate(sizes):
            if size == 0 or at + size > len(data):
                break
            out.append(Unit(time + index * self.FRAME_SAMPLES, data[at:at + size]))
            at += size
        return out

    def _continue(self, data: bytes) -> list[Unit]:
        assert self._piece is not None
        self._piece += data
        if len(self._piece) < self._piece_size:
            return []
        frame, self._piece = bytes(self._piece[:self._piece_size]), None
        return [Unit(self._piece_time, frame)]

    def _sizes(self, headers: bytes, bits: int) -> list[int]:
        value = int.from_bytes(headers, "big") if headers else 0
        remaining = len(headers) * 8
        used, sizes = 0, []
        while used + self._size_length <= bits:
            index_bits = self._index_length if not sizes else self._delta_length
            if used + self._size_length + index_bits > bits:
                break
            shift = remaining - used - self._size_length
            sizes.append((value >> shift) & ((1 << self._size_length) - 1))
            used += self._size_length + index_bits
        return sizes


class PassDepacketizer(Depacketizer):
    """A payload that is its own frame (G.711): each packet's samples as they came."""

    def _take(self, packet: RtpPacket, time: int, lost: bool) -> list[Unit]:
        return [Unit(time, packet.payload)] if packet.payload else []


def _aggregated(payload: bytes, header: int) -> list[bytes]:
    """The NAL units of an aggregation packet (H.264 STAP-A, H.265 AP): each after a 16-bit size."""
    units, at = [], header
    while at + 2 <= len(payload):
        (size,) = struct.unpack_from(">H", payload, at)
        at += 2
        if size == 0 or at + size > len(payload):
            break
        units.append(payload[at:at + size])
        at += size
    return units
