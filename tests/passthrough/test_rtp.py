"""RTP into whole frames (camera/media/rtp.py) and a camera's SDP (camera/media/sdp.py), packet by packet."""

from __future__ import annotations

import base64
import struct

import pytest

from camera.media import rtp, sdp
from tests.passthrough.fake_rtsp import rtp_packets

SPS = bytes([0x67, 0x42, 0xC0, 0x0D, 0xD9, 0x01, 0x41, 0xFB, 0x01, 0x10])
PPS = bytes([0x68, 0xCB, 0x83, 0xCB, 0x20])
IDR = bytes([0x65, 0x88]) + bytes(range(256)) * 12  # larger than a packet: FU-A
SLICE = bytes([0x41, 0x9A, 0x01, 0x02])


def packet(payload: bytes, sequence: int, timestamp: int, marker: bool = False, payload_type: int = 96) -> rtp.RtpPacket:
    raw = struct.pack(">BBHII", 0x80, (0x80 if marker else 0) | payload_type, sequence & 0xFFFF, timestamp, 1) + payload
    return rtp.RtpPacket.parse(raw)


def annexb(*units: bytes) -> bytes:
    return b"".join(b"\0\0\0\1" + unit for unit in units)


def test_a_frame_is_handed_on_at_its_marker_with_fu_a_put_back_together():
    depacketizer = rtp.H264Depacketizer([])
    raws = rtp_packets(annexb(SPS, PPS, IDR), 10, 1000)
    assert len(raws) > 3
    out = []
    for index, raw in enumerate(raws):
        got = depacketizer.push(rtp.RtpPacket.parse(raw))
        assert bool(got) == (index == len(raws) - 1), "nothing before the marker, the frame at it"
        out += got
    assert out == [rtp.Unit(1000, annexb(SPS, PPS, IDR), True)]


def test_stap_a_and_single_units_and_a_missing_marker():
    depacketizer = rtp.H264Depacketizer([])
    stap = bytes([24]) + struct.pack(">H", len(SPS)) + SPS + struct.pack(">H", len(PPS)) + PPS
    assert depacketizer.push(packet(stap, 1, 0)) == []
    assert depacketizer.push(packet(SLICE, 2, 0)) == []
    # A camera that never sets the marker: the frame goes when a packet of a later time comes.
    assert depacketizer.push(packet(SLICE, 3, 3000)) == [rtp.Unit(0, annexb(SPS, PPS, SLICE), False)]
    assert depacketizer.push(packet(SLICE, 4, 3000, marker=True)) == [rtp.Unit(3000, annexb(SLICE, SLICE), False)]


def test_a_keyframe_without_parameter_sets_gets_the_sdps_then_the_newest_in_band():
    depacketizer = rtp.H264Depacketizer([SPS, PPS])
    idr = bytes([0x65, 0x88, 1, 2, 3])
    assert depacketizer.push(packet(idr, 1, 0, True))[0].data == annexb(SPS, PPS, idr)
    newer = SPS[:-1] + b"\x20"
    depacketizer.push(packet(newer, 2, 90, False))
    depacketizer.push(packet(idr, 3, 90, True))
    assert depacketizer.push(packet(idr, 4, 180, True))[0].data == annexb(newer, PPS, idr)


def test_a_lost_piece_drops_that_unit_only():
    depacketizer = rtp.H264Depacketizer([])
    raws = rtp_packets(annexb(SLICE, IDR), 100, 5)
    kept = [raw for index, raw in enumerate(raws) if index != 2]  # a piece of the IDR's FU-A is lost
    units = [unit for raw in kept for unit in depacketizer.push(rtp.RtpPacket.parse(raw))]
    assert units == [rtp.Unit(5, annexb(SLICE), False)]


def test_a_frame_that_never_ends_is_bounded(monkeypatch):
    monkeypatch.setattr(rtp, "MAX_UNIT_BYTES", 10_000)
    depacketizer = rtp.H264Depacketizer([])
    depacketizer.push(packet(bytes([0x7C, 0x85]) + b"x" * 1000, 0, 0))  # FU-A start, never an end
    for sequence in range(1, 100):
        depacketizer.push(packet(bytes([0x7C, 0x05]) + b"x" * 1000, sequence, 0))
        assert depacketizer._fragment is None or len(depacketizer._fragment) <= 10_000
    for sequence in range(100, 200):
        depacketizer.push(packet(SLICE + b"y" * 1000, sequence, 0))
    assert depacketizer._size <= 10_000 and sum(map(len, depacketizer._units)) <= 10_000


def test_times_go_on_past_the_32_bit_wrap():
    clock = rtp.Clock()
    assert [clock.unwrap(t) for t in (0xFFFFF000, 0xFFFFFF00, 0x100, 0x50)] == \
        [0xFFFFF000, 0xFFFFFF00, 0x1_0000_0100, 0x1_0000_0050]


def test_h265_aggregation_and_fragments():
    vps, sps, pps = bytes([0x40, 0x01, 1]), bytes([0x42, 0x01, 2]), bytes([0x44, 0x01, 3])
    idr = bytes([0x26, 0x01]) + b"z" * 3000  # IDR_W_RADL
    depacketizer = rtp.H265Depacketizer([])
    ap = bytes([48 << 1, 1]) + b"".join(struct.pack(">H", len(unit)) + unit for unit in (vps, sps, pps))
    assert depacketizer.push(packet(ap, 1, 0)) == []
    pieces = [idr[2:1002], idr[1002:2002], idr[2002:]]
    for index, piece in enumerate(pieces):
        fu = bytes([49 << 1, 1, (0x80 if index == 0 else 0) | (0x40 if index == 2 else 0) | 19]) + piece
        got = depacketizer.push(packet(fu, 2 + index, 0, marker=index == 2))
    assert got == [rtp.Unit(0, annexb(vps, sps, pps, idr), True)]


def test_aac_frames_of_one_packet_are_1024_samples_apart_and_a_large_one_comes_in_pieces():
    depacketizer = rtp.AacDepacketizer()
    frames = [b"a" * 100, b"b" * 120, b"c" * 90]
    headers = b"".join(struct.pack(">H", len(frame) << 3) for frame in frames)
    payload = struct.pack(">H", 16 * len(frames)) + headers + b"".join(frames)
    assert depacketizer.push(packet(payload, 1, 48000)) == [
        rtp.Unit(48000, frames[0]), rtp.Unit(49024, frames[1]), rtp.Unit(50048, frames[2])]
    big = b"d" * 3000
    header = struct.pack(">HH", 16, len(big) << 3)
    assert depacketizer.push(packet(header + big[:1400], 2, 51072)) == []
    assert depacketizer.push(packet(header + big[1400:], 3, 51072, marker=True)) == [rtp.Unit(51072, big)]


def test_what_is_not_rtp_is_refused():
    for data in (b"", b"\x00" * 12, bytes([0x8F]) + b"\0" * 11, bytes([0x90]) + b"\0" * 11):
        with pytest.raises(rtp.RtpError):
            rtp.RtpPacket.parse(data)


CAMERA_SDP = f"""v=0
o=- 1 1 IN IP4 192.168.1.64
s=Media Presentation
c=IN IP4 0.0.0.0
t=0 0
a=control:*
m=video 0 RTP/AVP 96
a=rtpmap:96 H264/90000
a=fmtp:96 profile-level-id=420029; packetization-mode=1; sprop-parameter-sets={base64.b64encode(SPS).decode()},{base64.b64encode(PPS).decode()}
a=framerate:25
a=control:trackID=1
m=audio 0 RTP/AVP 97
a=rtpmap:97 MPEG4-GENERIC/16000/1
a=fmtp:97 streamtype=5; profile-level-id=15; mode=AAC-hbr; config=1408; SizeLength=13; IndexLength=3; IndexDeltaLength=3
a=control:trackID=2
m=audio 0 RTP/AVP 0
a=control:rtsp://192.168.1.64/other
"""


def test_a_cameras_sdp():
    video, audio, g711 = sdp.parse(CAMERA_SDP.replace("\n", "\r\n"))
    assert (video.kind, video.codec, video.clock_rate, video.frame_rate) == ("video", "h264", 90000, 25.0)
    assert video.parameter_sets() == [SPS, PPS]
    assert video.url("rtsp://192.168.1.64/Streaming/101") == "rtsp://192.168.1.64/Streaming/101/trackID=1"
    assert (audio.codec, audio.clock_rate, audio.channels, audio.audio_config()) == ("mpeg4-generic", 16000, 1,
                                                                                     b"\x14\x08")
    assert audio.fmtp["sizelength"] == "13"
    assert (g711.codec, g711.clock_rate, g711.url("rtsp://x/")) == ("pcmu", 8000, "rtsp://192.168.1.64/other")
