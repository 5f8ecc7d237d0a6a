"""camera/media/ without a network: muxing packets a test encodes, the fan-out's bounds, the HLS window."""

from __future__ import annotations

import itertools
import json
import shutil
import socket
import struct
import subprocess
from pathlib import Path

import av
import numpy as np
import pytest

from camera.media import Fragment, FragmentMuxer, MediaFeed, boxes
from camera.sources.packets import PacketCamera
from camera.viewers.mse import MAX_WAITING, MseViewer
from tests.helpers import h264_aac_clip, h264_clip, wait_until


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    """Three seconds of H.264, 160x120 at 10 fps, a keyframe every 10 frames."""
    return h264_clip(tmp_path_factory.mktemp("media") / "clip.mp4", fps=10, frames=30)


def mux(clip: Path, shift=lambda index, packet: None) -> tuple[FragmentMuxer, list[Fragment]]:
    source = av.open(str(clip))
    video = source.streams.video[0]
    muxer = FragmentMuxer(video)
    fragments = []
    for index, packet in enumerate(packet for packet in source.demux(video) if packet.size):
        shift(index, packet)
        fragments += muxer.add(packet)
    source.close()
    return muxer, fragments


def test_each_frame_becomes_a_fragment_keyframes_marked_and_the_codec_named(clip):
    muxer, fragments = mux(clip)
    # libx264's ultrafast is Constrained Baseline (profile 0x42, constraint flags 0xc0), level 1 for 160x120.
    assert muxer.mime_type == 'video/mp4; codecs="avc1.42c00a"'
    assert len(fragments) == 30, "every frame's fragment goes out as its packet comes, the last one too"
    assert [index for index, fragment in enumerate(fragments) if fragment.keyframe] == [0, 10, 20]
    assert [round(fragment.time, 3) for fragment in fragments[:3]] == [0.0, 0.1, 0.2]
    assert boxes.tracks(muxer.init)[0].kind == "vide"


def sliced_clip(path: Path) -> Path:
    """Like ``clip``, each picture in two slices (as x264's sliced threads make them)."""
    output = av.open(str(path), "w")
    stream = output.add_stream("libx264", rate=10, options={"g": "10", "bf": "0", "preset": "ultrafast",
                                                            "x264-params": "slices=2"})
    stream.width, stream.height, stream.pix_fmt = 160, 120, "yuv420p"
    for index in range(30):
        frame = av.VideoFrame.from_ndarray(np.full((120, 160, 3), index * 8, np.uint8), format="bgr24")
        frame.pts = index
        output.mux(stream.encode(frame))
    output.mux(stream.encode())
    output.close()
    return path


def units_of(sample: bytes) -> list[bytes]:
    units, at = [], 0
    while at + 4 <= len(sample):
        size = struct.unpack_from(">I", sample, at)[0]
        units.append(sample[at:at + 4 + size])
        at += 4 + size
    return units


@pytest.mark.parametrize("clock", ["running", "standing still"])
def test_a_keyframe_that_comes_as_two_packets_is_one_sample(tmp_path, clock):
    """What FFmpeg's parser makes of a keyframe whose slices each follow the parameter sets (over RTSP): two
    packets of one time, the second's slice not the picture's first. A camera whose clock stands still (a raw
    file looped) still gets a sample a picture."""
    source = av.open(str(sliced_clip(tmp_path / "sliced.mp4")))
    video = source.streams.video[0]
    muxer = FragmentMuxer(video)
    fragments = []
    for packet in (packet for packet in source.demux(video) if packet.size):
        parts = [packet]
        if packet.is_keyframe:
            units = units_of(bytes(packet))
            slices = [index for index, unit in enumerate(units) if unit[4] & 0x1F == 5]
            assert len(slices) == 2
            parameter_sets = [unit for unit in units if unit[4] & 0x1F in (7, 8)]
            halves = (b"".join(units[:slices[1]]), b"".join(parameter_sets + units[slices[1]:]))
            parts = []
            for half in halves:
                part = av.Packet(half)
                part.stream, part.time_base, part.dts, part.pts = video, packet.time_base, packet.dts, packet.pts
                part.is_keyframe = True
                parts.append(part)
        for part in parts:
            if clock == "standing still":
                part.dts = part.pts = 0
            fragments += muxer.add(part)
    source.close()
    assert len(fragments) == 30, "one sample a picture, whatever it came in"
    assert [index for index, fragment in enumerate(fragments) if fragment.keyframe] == [0, 10, 20]
    if clock == "running":
        assert [round(fragment.time, 3) for fragment in fragments[9:12]] == [0.9, 1.0, 1.1], "no frame gained"
    keyframe = mdat_of(fragments[10].data)
    assert sum(1 for unit in units_of(keyframe) if unit[4] & 0x1F == 5) == 2, "both slices in one sample"


def mdat_of(fragment: bytes) -> bytes:
    found, _ = boxes.split_boxes(fragment)
    return next(box[8:] for kind, box in found if kind == b"mdat")


def test_a_clock_that_jumps_or_runs_backwards_still_gives_increasing_times(clip):
    def jump(index: int, packet: av.Packet) -> None:
        second = int(1 / packet.time_base)
        if index >= 12:
            packet.dts -= second  # back by a second
            packet.pts -= second
        if index >= 20:
            packet.dts += 3600 * second  # an hour ahead
            packet.pts += 3600 * second
    _, fragments = mux(clip, jump)
    times = [fragment.time for fragment in fragments]
    assert all(later > earlier for earlier, later in itertools.pairwise(times))
    assert times[-1] < 5, "a jump is taken as a new timeline, not as hours of nothing"


def probe_packets(path: Path) -> dict[str, list[dict]]:
    """ffprobe's packets of each stream of ``path`` (``video``, ``audio``), in decode order."""
    report = subprocess.run(["ffprobe", "-v", "error", "-show_packets", "-show_streams", "-of", "json", str(path)],
                            capture_output=True, text=True, check=True)
    data = json.loads(report.stdout)
    kinds = {stream["index"]: stream["codec_type"] for stream in data["streams"]}
    found: dict[str, list[dict]] = {kind: [] for kind in kinds.values()}
    for packet in data["packets"]:
        found[kinds[packet["stream_index"]]].append(packet)
    return found


@pytest.mark.parametrize("b_frames", [0, 2])
def test_every_track_goes_forward_in_the_cameras_own_steps_even_with_two_aac_frames_on_one_time(tmp_path, b_frames):
    if shutil.which("ffprobe") is None:
        pytest.skip("no ffprobe")
    clip = h264_aac_clip(tmp_path / "av.mp4", fps=15, seconds=3, b_frames=b_frames)
    source = av.open(str(clip))
    video, audio = source.streams.video[0], source.streams.audio[0]
    muxer = FragmentMuxer(video, audio)
    out = bytearray(muxer.init)
    made, audio_seen = [], 0
    for packet in source.demux(video, audio):
        if not packet.size:
            continue
        if packet.stream is audio:
            audio_seen += 1
            if audio_seen % 2 == 0:  # what RTSP does with two AAC frames in one RTP packet: one time for both
                packet.dts = packet.pts = packet.dts - 1024
        fragments = muxer.add(packet)
        made.append((packet.stream.type, packet.is_keyframe, len(fragments)))
        out += b"".join(fragment.data for fragment in fragments)
    source.close()
    video = [(keyframe, count) for kind, keyframe, count in made if kind == "video"]
    assert all(count == 0 for keyframe, count in video if keyframe), "a keyframe waits for the next packet"
    assert all(count == (2 if earlier[0] else 1) for earlier, (keyframe, count) in itertools.pairwise(video)
               if not keyframe), "any other frame leaves as its packet comes"
    written = tmp_path / "live.mp4"
    written.write_bytes(bytes(out))
    packets = probe_packets(written)
    for kind, step in (("video", 1 / 15), ("audio", 1024 / 48000)):
        dts = [float(packet["dts_time"]) for packet in packets[kind]]
        durations = [float(packet["duration_time"]) for packet in packets[kind]]
        assert len(dts) > 30
        assert all(later > earlier for earlier, later in itertools.pairwise(dts)), f"{kind} decode times go forward"
        assert all(duration == pytest.approx(step, abs=1e-4) for duration in durations), f"{kind} steps"
        # Both tracks keep the camera's own alignment: the first frame at 0, audio where it fell beside it (B-frames
        # put the first decode a few frames before the first picture).
        assert dts[0] == pytest.approx(0, abs=0.15), f"{kind} starts at 0"
    # The camera's frame order and times are kept: presentation times are whole frames apart.
    pts = sorted(float(packet["pts_time"]) for packet in packets["video"])
    assert all(later - earlier == pytest.approx(1 / 15, abs=1e-3) for earlier, later in itertools.pairwise(pts))


class Viewer:
    """A viewer of a feed that keeps what it is handed."""

    def __init__(self) -> None:
        self.closed = False
        self.messages: list[bytes] = []
        self.starts: list[tuple[int, bool]] = []

    def begin(self, start: list[bytes], complete: bool) -> None:
        self.messages = list(start)
        self.starts.append((len(start), complete))

    def offer(self, message: bytes, keyframe: bool) -> None:
        self.messages.append(message)

    def close(self) -> None:
        self.closed = True


def test_a_new_viewer_gets_the_header_init_and_the_gop_so_far(clip):
    muxer, fragments = mux(clip)
    feed = MediaFeed()
    feed.begin(muxer.init, muxer.mime_type)
    for fragment in fragments[:14]:
        feed.publish(fragment)
    viewer = Viewer()
    assert feed.add(viewer)
    assert viewer.starts == [(2 + 4, True)], "header, init, and frames 10-13"
    assert viewer.messages[0][2:].startswith(b'{"type": "mse"')
    for fragment in fragments[14:]:
        feed.publish(fragment)
    assert len(viewer.messages) == 2 + 4 + 16
    feed.begin(muxer.init, muxer.mime_type)
    assert viewer.starts[-1] == (2, False), "a new stream starts every viewer over"


class Sender:
    def notify(self, viewer) -> None:
        pass


def test_an_mse_viewer_that_falls_behind_drops_to_the_newest_keyframe_and_stays_bounded(clip):
    muxer, fragments = mux(clip)
    feed = MediaFeed()
    feed.begin(muxer.init, muxer.mime_type)
    one, other = socket.socketpair()
    try:
        viewer = MseViewer(one, b"", Sender(), feed=feed, camera_name="cam")
        viewer.clock = itertools.count(0, 0.1).__next__  # a tenth of a second between fragments: well behind
        viewer.attach()
        for fragment in fragments:
            feed.publish(fragment)  # nothing is sent: the sender thread never runs
        waiting = list(viewer._waiting)
        assert viewer.skipped == 20, "the first two GOPs went when the next keyframe came"
        assert len(waiting) == 2 + 10, "header, init, and the newest GOP"
        huge = Fragment(b"\0\0\0\x08mdat" + b"\0" * (MAX_WAITING // 2), False, 3.0, 0.1)
        for _ in range(3):
            feed.publish(huge)
        assert viewer._waiting_bytes <= MAX_WAITING
        assert viewer._need_keyframe, "past the bound it waits for the next keyframe"
    finally:
        one.close()
        other.close()


def test_an_mse_viewer_only_a_moment_behind_keeps_what_waits_at_a_keyframe(clip):
    """A fragment the sender has not written yet when a keyframe comes is no reason to drop it: the hole it
    would leave in the audio makes a browser drop its video up to the next keyframe."""
    muxer, fragments = mux(clip)
    feed = MediaFeed()
    feed.begin(muxer.init, muxer.mime_type)
    one, other = socket.socketpair()
    try:
        viewer = MseViewer(one, b"", Sender(), feed=feed, camera_name="cam")
        viewer.clock = lambda: 100.0  # no time passes
        viewer.attach()
        for fragment in fragments:
            feed.publish(fragment)
        assert viewer.skipped == 0 and len(viewer._waiting) == 2 + len(fragments)
    finally:
        one.close()
        other.close()


def two_sizes(folder: Path) -> Path:
    """An Annex B H.264 file that goes from 320x240 to 640x480 at a keyframe, as a camera set anew does."""
    path = folder / "two-sizes.h264"
    with path.open("wb") as joined:
        for width, height in ((320, 240), (640, 480)):
            part = folder / f"{width}.h264"
            output = av.open(str(part), "w", format="h264")
            stream = output.add_stream("libx264", rate=10, options={"g": "5", "bf": "0", "preset": "ultrafast"})
            stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
            for index in range(10):
                frame = av.VideoFrame.from_ndarray(np.full((height, width, 3), index * 20, np.uint8), format="bgr24")
                frame.pts = index
                output.mux(stream.encode(frame))
            output.mux(stream.encode())
            output.close()
            joined.write(part.read_bytes())
    return path


def test_a_new_resolution_upstream_gives_every_viewer_a_new_init_segment(tmp_path):
    camera = PacketCamera("cam", str(two_sizes(tmp_path)))
    inits: list[bytes] = []
    begin = camera.media.begin
    camera.media.begin = lambda init, mime_type: (inits.append(init), begin(init, mime_type))
    camera.start()
    try:
        assert wait_until(lambda: len(inits) >= 2, 20), "the stream starts, then starts over at the new size"
    finally:
        camera.stop()
    sizes = []
    for init in inits[:2]:
        moov = next(box for kind, box in boxes.split_boxes(init)[0] if kind == b"moov")
        tkhd = boxes.find(moov, [b"trak", b"tkhd"])[0]
        sizes.append(tuple(value >> 16 for value in struct.unpack_from(">II", tkhd, len(tkhd) - 8)))
    assert sizes == [(320, 240), (640, 480)]
