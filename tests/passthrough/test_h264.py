"""camera/media/h264.py: the picture size an SPS declares, read without decoding, and a giant one refused."""

from __future__ import annotations

import io

import av
import numpy as np
import pytest

from camera.media.h264 import parameter_sets, sps_size
from camera.sources.factory import create_camera
from tests.helpers import wait_until


def keyframe(size: tuple[int, int], pix_fmt: str = "yuv420p", options: dict[str, str] | None = None) -> bytes:
    """The first packet of libx264's Annex B stream of a flat picture of ``size``."""
    out = io.BytesIO()
    output = av.open(out, "w", format="h264")
    stream = output.add_stream("libx264", rate=10, options={"preset": "ultrafast", **(options or {})})
    stream.width, stream.height, stream.pix_fmt = *size, pix_fmt
    frame = av.VideoFrame.from_ndarray(np.zeros((size[1], size[0], 3), np.uint8), format="bgr24").reformat(
        format=pix_fmt)
    packets = list(stream.encode(frame)) + list(stream.encode())
    output.close()
    return bytes(packets[0])


@pytest.mark.parametrize(("size", "pix_fmt", "options"), [
    ((160, 120), "yuv420p", {}),
    ((1920, 1080), "yuv420p", {}),  # cropped from 1088
    ((638, 358), "yuv420p", {"profile": "high"}),
    ((320, 240), "yuv444p", {}),  # High 4:4:4: chroma format in the SPS
    ((640, 480), "yuv420p", {"x264-params": "interlaced=1"}),  # fields: map units of two rows
    ((352, 288), "yuv420p", {"x264-params": "cqm=jvt"}),  # scaling matrices in the SPS
])
def test_the_sps_says_the_picture_size(size, pix_fmt, options):
    found = parameter_sets(keyframe(size, pix_fmt, options))
    assert found is not None
    assert sps_size(found.sps) == size


def test_a_truncated_sps_is_unreadable_not_an_error():
    found = parameter_sets(keyframe((160, 120)))
    assert found is not None
    assert sps_size(found.sps[:4]) is None


class BitWriter:
    def __init__(self) -> None:
        self.bits: list[int] = []

    def put(self, value: int, count: int) -> None:
        self.bits += [(value >> (count - 1 - index)) & 1 for index in range(count)]

    def ue(self, value: int) -> None:
        code = value + 1
        self.put(0, code.bit_length() - 1)
        self.put(code, code.bit_length())

    def rbsp(self) -> bytes:
        bits = self.bits + [1]
        bits += [0] * (-len(bits) % 8)
        data = bytes(int("".join(map(str, bits[at:at + 8])), 2) for at in range(0, len(bits), 8))
        return data.replace(b"\0\0", b"\0\0\3")  # emulation prevention (good enough for these values)


def giant_sps(width_mbs: int, height_mbs: int) -> bytes:
    """A Baseline SPS that claims a picture of ``width_mbs`` x ``height_mbs`` macroblocks."""
    bits = BitWriter()
    bits.put(66, 8), bits.put(0xC0, 8), bits.put(51, 8)
    bits.ue(0), bits.ue(0), bits.ue(2), bits.ue(1), bits.put(0, 1)  # id, frame_num, poc type 2, refs, gaps
    bits.ue(width_mbs - 1), bits.ue(height_mbs - 1)
    bits.put(1, 1), bits.put(1, 1), bits.put(0, 1), bits.put(0, 1)  # frames only, direct 8x8, no crop, no VUI
    return b"\x67" + bits.rbsp()


def test_a_handmade_sps_reads_back():
    assert sps_size(giant_sps(1000, 1000)) == (16000, 16000)
    assert sps_size(giant_sps(10, 8)) == (160, 128)


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        line = next(line for line in status if line.startswith("VmRSS:"))
    return int(line.split()[1]) / 1024


def test_a_camera_that_claims_a_giant_picture_is_refused_naming_its_size(tmp_path):
    out = io.BytesIO()
    output = av.open(out, "w", format="h264")
    stream = output.add_stream("libx264", rate=10, options={"preset": "ultrafast", "g": "5"})
    stream.width, stream.height, stream.pix_fmt = 160, 128, "yuv420p"
    for index in range(10):
        frame = av.VideoFrame.from_ndarray(np.full((128, 160, 3), index * 20, np.uint8), format="bgr24")
        frame.pts = index
        output.mux(stream.encode(frame))
    output.mux(stream.encode())
    output.close()
    units = out.getvalue().split(b"\0\0\0\1")
    giant = b"\0\0\0\1".join(giant_sps(1000, 1000) if unit[:1] and unit[0] & 0x1F == 7 else unit for unit in units)
    path = tmp_path / "giant.h264"
    path.write_bytes(giant)
    before = rss_mb()
    camera = create_camera("giant", str(path))
    camera.start()
    try:
        assert wait_until(lambda: "16000x16000" in (camera.status()["last_error"] or ""), 20), camera.status()
        subscription = camera.subscribe()  # an MJPEG viewer: nothing is decoded for it either
        try:
            assert wait_until(lambda: camera.status()["state"] in ("reconnecting", "failed"), 20)
        finally:
            subscription.close()
    finally:
        camera.stop()
    assert rss_mb() - before < 400, "no giant picture was allocated"
