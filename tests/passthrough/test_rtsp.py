"""An H.264 RTSP camera passed through: GStreamer's RTSP server from Debian, camstream on a real waitress.

The camera's own video goes to MSE viewers (/mse) and HLS readers as it
came, muxed once into fMP4; MJPEG viewers of the same camera get decoded
frames; a camera watched only over MSE decodes nothing.
"""

from __future__ import annotations

import io
import itertools
import json
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import av
import pytest
import websocket

from camera.media import boxes
from camera.viewers.mse import MAX_WAITING
from tests.config.test_cli import env, running  # noqa: F401 - a fixture
from tests.conftest import Servers
from tests.helpers import MjpegReader, decode, free_port, get_json, wait_until
from tests.passthrough.test_media import probe_packets
from tests.record.test_record_continuous import assert_index_and_files_agree
from webapp import create_app
from webapp.app import shutdown
from webapp.runtime.registry import runtime_of

pytestmark = pytest.mark.slow

SERVER = Path(__file__).resolve().parents[1] / "rtsp_server.py"
SYSTEM_PYTHON = "/usr/bin/python3"
VIDEO = ("videotestsrc is-live=true pattern=ball ! video/x-raw,width=320,height=240,framerate=15/1 ! "
         "x264enc tune=zerolatency speed-preset=ultrafast key-int-max=15 bitrate=400 ! h264parse ! "
         "rtph264pay name=pay0 pt=96 config-interval=-1")
HEVC = ("videotestsrc is-live=true pattern=ball ! video/x-raw,format=I420,width=320,height=240,framerate=15/1 ! "
        "x265enc tune=zerolatency speed-preset=ultrafast key-int-max=15 bitrate=300 ! h265parse ! "
        "rtph265pay name=pay0 pt=96 config-interval=-1")
AUDIO = ("audiotestsrc is-live=true ! audio/x-raw,rate=48000,channels=1 ! avenc_aac ! aacparse ! "
         "rtpmp4gpay name=pay1 pt=97")


def gstreamer_rtsp_available() -> bool:
    """GStreamer's RTSP server for the system python, with the encoders the streams are made with."""
    if not os.path.exists(SYSTEM_PYTHON):
        return False
    probe = ("import gi; gi.require_version('Gst', '1.0'); gi.require_version('GstRtspServer', '1.0'); "
             "from gi.repository import Gst, GstRtspServer; Gst.init(None); "
             "assert all(Gst.ElementFactory.find(name) for name in ('x264enc', 'x265enc', 'avenc_aac', 'rtph264pay', 'rtph265pay'))")
    return subprocess.run([SYSTEM_PYTHON, "-c", probe], capture_output=True, check=False).returncode == 0


if not gstreamer_rtsp_available():
    if os.environ.get("CI"):
        raise RuntimeError("GStreamer's RTSP server is missing; .ci/run should have installed it")
    pytest.skip("no GStreamer RTSP server (gir1.2-gst-rtsp-server-1.0, python3-gi, gstreamer1.0-plugins-ugly, "
                "gstreamer1.0-libav) on this machine",
                allow_module_level=True)


class RtspServer:
    """GStreamer's RTSP server in a process of the system python: ``/live`` (H.264), ``/av`` (with AAC) and
    ``/hevc`` (H.265)."""

    def __init__(self, port: int = 0) -> None:
        self.process = subprocess.Popen(
            [SYSTEM_PYTHON, str(SERVER), str(port), f"/live={VIDEO}", f"/av={VIDEO} {AUDIO}", f"/hevc={HEVC}"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        line = self.process.stdout.readline() if self.process.stdout else ""
        if not line.startswith("ready"):
            self.process.kill()
            raise RuntimeError(f"the RTSP server did not start: {line!r}")
        self.port = int(line.split()[1])

    def url(self, path: str) -> str:
        return f"rtsp://127.0.0.1:{self.port}/{path}"

    def stop(self) -> None:
        self.process.kill()
        self.process.wait(10)


@pytest.fixture(scope="module")
def rtsp() -> Iterator[RtspServer]:
    server = RtspServer()
    yield server
    server.stop()


@pytest.fixture
def site(rtsp: RtspServer, serve_app) -> str:
    return serve_app({"CAMERAS": {"door": rtsp.url("live"), "yard": rtsp.url("av")}, "IDLE_TIMEOUT": 2})


def status_of(site: str, name: str) -> dict:
    return get_json(f"{site}/api/cameras/{name}")[1]


def mse(base: str, name: str) -> websocket.WebSocket:
    return websocket.create_connection(base.replace("http", "ws") + f"/mse/{name}", timeout=20)


def receive_stream(ws: websocket.WebSocket, fragments: int) -> tuple[dict, bytes, list[bytes]]:
    """The header, the init segment and ``fragments`` fragments from an /mse connection."""
    header = json.loads(ws.recv())
    init = ws.recv()
    return header, init, [ws.recv() for _ in range(fragments)]


def slices(sample_data: bytes, length_prefixed: bool) -> list[bytes]:
    """The coded slices (NAL types 1 and 5) in a sample (MP4: 4-byte lengths) or a packet (Annex B)."""
    units = []
    if length_prefixed:
        at = 0
        while at + 4 <= len(sample_data):
            size = struct.unpack_from(">I", sample_data, at)[0]
            units.append(sample_data[at + 4:at + 4 + size])
            at += 4 + size
    else:
        # A NAL unit never ends in a zero byte: what trails one is the next start code's leading zero.
        units = [unit.rstrip(b"\0") for unit in sample_data.split(b"\0\0\1")]
    return [unit for unit in units if unit and unit[0] & 0x1F in (1, 5)]


def mdat_of(fragment: bytes) -> bytes:
    found, _ = boxes.split_boxes(fragment)
    return next(box[8:] for kind, box in found if kind == b"mdat")


def test_an_mse_viewer_gets_the_codecs_the_init_segment_and_fragments_from_a_keyframe(site):
    ws = mse(site, "door")
    try:
        header, init, fragments = receive_stream(ws, 20)
    finally:
        ws.close()
    assert header["type"] == "mse"
    assert header["codecs"].startswith('video/mp4; codecs="avc1.') and "mp4a" not in header["codecs"]
    assert init[4:8] == b"ftyp" and [track.kind for track in boxes.tracks(init)] == ["vide"]
    video = boxes.tracks(init)[0]
    infos = [boxes.fragment_info(boxes.split_boxes(fragment)[0][0][1], video) for fragment in fragments]
    assert infos[0].keyframe, "a new viewer starts at a keyframe"
    times = [info.decode_time for info in infos]
    assert times == sorted(times) and len(set(times)) == len(times), "one frame a fragment, in order"
    assert sum(info.keyframe for info in infos) >= 2, "a keyframe every 15 frames"


def test_the_bytes_are_the_cameras_own(rtsp, serve_app):
    """Every coded slice a viewer gets is byte for byte one the camera sent: nothing is re-encoded."""
    # One stream for both clients (the server's shared path), as an IP camera's is.
    site = serve_app({"CAMERAS": {"door": rtsp.url("shared/live")}, "IDLE_TIMEOUT": 2})
    direct = av.open(rtsp.url("shared/live"), options={"rtsp_transport": "tcp"}, timeout=10)
    sent: set[bytes] = set()
    stop = threading.Event()

    def read_direct() -> None:
        for packet in direct.demux(direct.streams.video[0]):
            sent.update(slices(bytes(packet), length_prefixed=False))
            if stop.is_set() or len(sent) > 400:
                return

    reader = threading.Thread(target=read_direct, daemon=True)
    reader.start()
    assert wait_until(lambda: len(sent) >= 5, 20), "the direct client reads the camera"
    ws = mse(site, "door")
    try:
        _, _, fragments = receive_stream(ws, 30)
        received = [unit for fragment in fragments for unit in slices(mdat_of(fragment), length_prefixed=True)]
        # The first fragments are the kept GOP, which the direct client may have joined after; the last ones
        # it reads in its own time.
        assert wait_until(lambda: all(unit in sent for unit in received[-20:]), 20), \
            f"{sum(unit not in sent for unit in received[-20:])} slices differ from the camera's"
    finally:
        ws.close()
        stop.set()
        reader.join(20)
        direct.close()
    assert len(received) >= 30
    status = status_of(site, "door")
    assert status["video"]["mode"] == "passthrough" and status["frames_encoded"] == 0


def test_a_camera_watched_only_over_mse_decodes_nothing_and_mjpeg_viewers_still_get_frames(site):
    ws = mse(site, "door")
    try:
        receive_stream(ws, 30)
        status = status_of(site, "door")
        assert status["state"] == "streaming" and status["viewers"] == 1
        assert status["video"]["decoded"] == 0 and status["frames_captured"] == 0
        # The tile tells the camera's video that plays, not the pictures decoded (none).
        assert (status["width"], status["height"]) == (320, 240)
        assert status["measured_fps"] == pytest.approx(15, rel=0.3) and status["decoded_fps"] == 0
        with MjpegReader(f"{site}/video_feed/door") as reader:
            frames = reader.read(5)
        assert decode(frames[-1]).shape == (240, 320, 3)
        after = status_of(site, "door")
        assert after["video"]["decoded"] >= 5 and after["frames_encoded"] >= 5
        ws.recv()  # the MSE viewer is fed all the while
    finally:
        ws.close()


def test_an_h264_camera_is_recorded_by_copy_its_own_slices_with_nothing_decoded(rtsp, serve_app, tmp_path):
    direct = av.open(rtsp.url("shared/live"), options={"rtsp_transport": "tcp"}, timeout=10)
    sent: set[bytes] = set()
    stop = threading.Event()

    def read_direct() -> None:
        for packet in direct.demux(direct.streams.video[0]):
            sent.update(slices(bytes(packet), length_prefixed=False))
            if stop.is_set():
                return

    reader = threading.Thread(target=read_direct, daemon=True)
    reader.start()
    store = tmp_path / "store"
    site = serve_app({"CAMERAS": {"door": rtsp.url("shared/live")}, "RECORD": {"door": "continuous"}, "SEGMENT_SECONDS": 1,
                      "STORAGE": str(store), "MIN_FREE": 0})
    recordings = lambda: get_json(f"{site}/api/recordings?camera=door")[1]["recordings"]
    try:
        assert wait_until(lambda: len(recordings()) >= 3, 30), recordings()
        files = sorted(store.glob("recordings/door/*/*.copy.mp4"))
        assert len(files) >= 2
        with av.open(str(files[0])) as recorded:
            stream = recorded.streams.video[0]
            assert stream.codec_context.name == "h264" and (stream.width, stream.height) == (320, 240)
            packets = [bytes(packet) for packet in recorded.demux(stream) if packet.size]
        units = [unit for packet in packets for unit in slices(packet, length_prefixed=True)]
        assert wait_until(lambda: all(unit in sent for unit in units), 20), \
            f"{sum(unit not in sent for unit in units)} of {len(units)} recorded slices differ from the camera's"
        # A download of a span of it is copied too: the camera's own slices again, none encoded here.
        segment = next(found for found in recordings() if not found["recording"])
        start = segment["start"]
        exported = urllib.request.urlopen(f"{site}/api/recordings/door.mp4?start={start}&end={start + 1}",
                                          timeout=30).read()
        with av.open(io.BytesIO(exported)) as video:
            stream = video.streams.video[0]
            packets = [bytes(packet) for packet in video.demux(stream) if packet.size]
        assert len(packets) >= 8
        units = [unit for packet in packets for unit in slices(packet, length_prefixed=True)]
        assert all(unit in sent for unit in units), "the download holds the camera's own slices"
    finally:
        stop.set()
        reader.join(20)
        direct.close()
    segment = next(found for found in recordings() if not found["recording"])
    assert segment["format"] == "copy" and segment["frames"] >= 10
    # One second at 15 fps, cut at a keyframe (every 15 frames): its times are the camera's, not the muxer's.
    assert 0.5 <= segment["end"] - segment["start"] <= 3.0, segment
    status = status_of(site, "door")
    assert status["recording"]["format"] == "copy" and status["recording"]["state"] == "recording"
    assert status["video"]["decoded"] == 0, "recording by copy decodes nothing"
    # Played back like any recording (decoded for that, on request).
    with MjpegReader(f"{site}/playback/door?start={segment['start']}") as reader:
        assert decode(reader.read(2)[-1]).shape == (240, 320, 3)


def test_a_cameras_aac_is_recorded_by_copy_with_its_video_and_exported_with_it(rtsp, serve_app, tmp_path):
    store = tmp_path / "store"
    site = serve_app({"CAMERAS": {"yard": rtsp.url("av")}, "RECORD": {"yard": "continuous"}, "SEGMENT_SECONDS": 1,
                      "STORAGE": str(store), "MIN_FREE": 0})
    recordings = lambda: get_json(f"{site}/api/recordings?camera=yard")[1]["recordings"]
    assert wait_until(lambda: sum(not found["recording"] for found in recordings()) >= 2, 30), recordings()
    segment = next(found for found in recordings() if not found["recording"])
    first = min(store.glob("recordings/yard/*/*.copy.mp4"))  # the oldest: closed
    with av.open(str(first)) as recorded:
        assert recorded.streams.audio[0].codec_context.name == "aac"
        kinds = [packet.stream.type for packet in recorded.demux() if packet.size]
    assert kinds.count("audio") >= 10 and kinds.count("video") >= 10, "a second of both"
    start = segment["start"]
    exported = urllib.request.urlopen(f"{site}/api/recordings/yard.mp4?start={start}&end={start + 1}",
                                      timeout=30).read()
    with av.open(io.BytesIO(exported)) as video:
        assert sum(packet.size > 0 for packet in video.demux(video.streams.audio[0])) >= 10, "the export has it too"


def test_event_clips_are_recorded_by_copy_and_served_at_once_finished_or_still_going_on(rtsp, serve_app, tmp_path):
    store = tmp_path / "store"
    # The ball never stops: events of 2 s each, one going on from the other.
    site = serve_app({"CAMERAS": {"door": rtsp.url("live")}, "DETECT": {"door": "motion"}, "DETECT_FPS": 5,
                      "RECORD": {"door": "events"}, "STORAGE": str(store), "MIN_FREE": 0, "PRE_CAPTURE": 1,
                      "POST_CAPTURE": 0.5, "EVENT_MAX_LENGTH": 2})
    events = lambda: sorted(get_json(f"{site}/api/events")[1]["events"], key=lambda event: event["id"])
    assert wait_until(lambda: len(events()) >= 3, 40), events()
    first, *_, current = events()
    assert first["end"] is not None and current["end"] is None
    assert sorted(path.name.split("-")[0] for path in store.glob("clips/door/*.copy.mp4"))[:1] == [str(first["id"])]
    finished = urllib.request.urlopen(f"{site}/api/events/{first['id']}/clip.mp4", timeout=10)
    assert finished.headers["Content-Type"] == "video/mp4" and finished.headers["Accept-Ranges"] == "bytes"
    with av.open(io.BytesIO(finished.read())) as clip:
        stream = clip.streams.video[0]
        assert stream.codec_context.name == "h264" and (stream.width, stream.height) == (320, 240)
        frames = list(clip.decode(stream))
    # Its 2 s at 15 fps, and its pre-capture from the keyframe before it (a keyframe a second).
    assert 25 <= len(frames) <= 15 * (2 + 0.5 + 1 + 1) + 2, len(frames)
    # The event going on: what is recorded of it so far, at once.
    started = time.monotonic()
    going = urllib.request.urlopen(f"{site}/api/events/{current['id']}/clip.mp4", timeout=10)
    with av.open(io.BytesIO(going.read())) as clip:
        assert len(list(clip.decode(video=0))) >= 1
    print(f"clip of an event going on: {time.monotonic() - started:.3f} s to the whole answer", file=sys.stderr)
    assert status_of(site, "door")["recording"]["format"] == "copy"


def test_kill_9_while_recording_by_copy_loses_at_most_two_seconds(rtsp, running, tmp_path):  # noqa: F811
    store = tmp_path / "store"

    def serve():
        server = running([sys.executable, "-m", "webapp", "--camera", f"door={rtsp.url('live')}", "--port", "0",
                          "--record", "continuous", "--storage", str(store), "--segment-seconds", "2",
                          "--min-free", "0"], env())
        seen: list[str] = []
        port = server.wait_for_line(r"open http://localhost:(\d+)/", seen=seen).group(1)
        return server, f"http://127.0.0.1:{port}", "".join(seen)

    server, url, _ = serve()
    recording = lambda: get_json(f"{url}/api/cameras/door")[1]["recording"]
    assert wait_until(lambda: recording()["frames_written"] >= 45, 30), recording()
    killed_at = time.time()
    server.process.send_signal(signal.SIGKILL)
    server.process.wait(10)
    server, url, log = serve()
    assert re.search(r"1 segment\(s\) repaired|1 row\(s\) without a file dropped", log), log.splitlines()
    before_kill = [segment for segment in get_json(f"{url}/api/recordings?end={killed_at}")[1]["recordings"]
                   if segment["start"] < killed_at]
    assert before_kill and before_kill[-1]["end"] >= killed_at - 2.0, (killed_at, before_kill[-1])
    assert all(segment["format"] == "copy" and not segment["recording"] for segment in before_kill)
    assert server.stop() == 0
    assert_index_and_files_agree(store)


def test_a_camera_watched_by_its_detector_alone_makes_pictures_at_the_detectors_rate(rtsp, serve_app):
    site = serve_app({"CAMERAS": {"door": rtsp.url("live")}, "DETECT": {"door": "motion"}, "DETECT_FPS": 2})
    # The detector keeps the camera running; every packet is decoded (the next ones refer to it), but only
    # about the pictures the detector takes are converted and encoded: not the camera's 15 a second.
    assert wait_until(lambda: status_of(site, "door")["detection"]["results"] >= 8, 30)
    status = status_of(site, "door")
    decoded, captured = status["video"]["decoded"], status["frames_captured"]
    assert decoded >= 40 and captured * 3 <= decoded, (decoded, captured)
    # An MJPEG viewer takes every frame: from then on every decoded picture is made.
    with MjpegReader(f"{site}/video_feed/door") as reader:
        reader.read(3)
        before = status_of(site, "door")
        reader.read(30)
        after = status_of(site, "door")
    made = after["frames_captured"] - before["frames_captured"]
    assert made >= 0.8 * (after["video"]["decoded"] - before["video"]["decoded"]), (before, after)


def test_a_snapshot_of_an_idle_h264_camera_decodes_from_its_current_gop(site):
    response = urllib.request.urlopen(f"{site}/snapshot/door.jpg", timeout=20)
    assert response.status == 200 and decode(response.read()).shape == (240, 320, 3)


def test_aac_rides_along_in_the_same_fragments(site):
    ws = mse(site, "yard")
    try:
        header, init, _fragments = receive_stream(ws, 40)
    finally:
        ws.close()
    assert "mp4a.40.2" in header["codecs"]
    assert sorted(track.kind for track in boxes.tracks(init)) == ["soun", "vide"]
    status = status_of(site, "yard")
    assert status["video"]["audio"] == "aac"


def test_live_fragments_of_a_camera_with_aac_go_forward_in_its_own_steps(site, tmp_path):
    """What a player reads of /mse: per track, decode times that only go forward, no sample without a
    duration, the audio in steps of 1024 samples as the camera sends it, the video at the camera's 15 fps."""
    ws = mse(site, "yard")
    try:
        _header, init, fragments = receive_stream(ws, 120)
    finally:
        ws.close()
    recorded = tmp_path / "live.mp4"
    recorded.write_bytes(init + b"".join(fragments))
    packets = probe_packets(recorded)
    assert len(packets["video"]) >= 20 and len(packets["audio"]) >= 40
    for kind, step in (("video", 1 / 15), ("audio", 1024 / 48000)):
        dts = [float(packet["dts_time"]) for packet in packets[kind]]
        assert all(later > earlier for earlier, later in itertools.pairwise(dts)), f"{kind} goes forward"
        durations = [float(packet["duration_time"]) for packet in packets[kind]]
        assert min(durations) > 0, f"no {kind} sample without a duration"
        steps = [later - earlier for earlier, later in itertools.pairwise(dts)]
        # The camera's clock is RTP's (90 kHz): a frame step may be a tick off, never a frame.
        assert all(abs(item - step) < step / 4 for item in steps), f"{kind} in the camera's steps: {steps}"


def test_hls_serves_the_cameras_h264_with_its_own_sps_and_cache_headers(site, rtsp):
    playlist = urllib.request.urlopen(f"{site}/hls/door/index.m3u8", timeout=30)
    text = playlist.read().decode()
    assert playlist.headers["Content-Type"] == "application/vnd.apple.mpegurl"
    assert playlist.headers["Cache-Control"] == "public, max-age=1"
    assert text.startswith("#EXTM3U") and "#EXT-X-MAP:URI=" in text
    segment_name = [line for line in text.splitlines() if line.endswith(".m4s")][-1]
    segment = urllib.request.urlopen(f"{site}/hls/door/{segment_name}", timeout=10)
    assert segment.headers["Cache-Control"] == "public, max-age=3600, immutable"
    assert boxes.split_boxes(segment.read())[0][0][0] == b"moof"
    hls = av.open(f"{site}/hls/door/index.m3u8", timeout=20)
    try:
        stream = hls.streams.video[0]
        assert stream.codec_context.name == "h264" and (stream.width, stream.height) == (320, 240)
        packets = [packet for _, packet in zip(range(20), hls.demux(stream), strict=False) if packet.size]
        assert len(packets) >= 15
        hls_sps = _sps(stream.codec_context.extradata)
    finally:
        hls.close()
    direct = av.open(rtsp.url("live"), options={"rtsp_transport": "tcp"}, timeout=10)
    try:
        assert hls_sps == _sps(direct.streams.video[0].codec_context.extradata), "the camera's own SPS"
    finally:
        direct.close()
    with pytest.raises(urllib.error.HTTPError) as gone:
        urllib.request.urlopen(f"{site}/hls/door/seg-00000000-1.m4s", timeout=10)
    assert gone.value.code == 404 and "error" in json.loads(gone.value.read())


def test_an_h265_camera_is_passed_through_to_mse_and_hls_and_decoded_only_for_mjpeg(rtsp, serve_app):
    site = serve_app({"CAMERAS": {"tower": rtsp.url("hevc")}})
    ws = mse(site, "tower")
    try:
        header, init, fragments = receive_stream(ws, 20)
        assert header["codecs"].startswith('video/mp4; codecs="hvc1.1.'), "Main profile, as Safari wants it"
        assert [track.codec for track in boxes.tracks(init)] == [header["codecs"].split('"')[1]]
        assert fragments[0][4:8] == b"moof"
        status = status_of(site, "tower")["video"]
        assert (status["codec"], status["mode"], status["width"]) == ("hevc", "passthrough", 320)
        assert status["decoded"] == 0
    finally:
        ws.close()
    hls = av.open(f"{site}/hls/tower/index.m3u8", timeout=20)
    try:
        stream = hls.streams.video[0]
        assert stream.codec_context.name == "hevc" and (stream.width, stream.height) == (320, 240)
        assert len([packet for _, packet in zip(range(10), hls.demux(stream), strict=False) if packet.size]) >= 5
    finally:
        hls.close()
    response = urllib.request.urlopen(f"{site}/snapshot/tower.jpg", timeout=20)
    assert decode(response.read()).shape == (240, 320, 3), "decoded for a snapshot"


def test_the_page_plays_h265_where_the_browser_says_it_can_and_mjpeg_where_it_cannot(rtsp, serve_app, browser):
    site = serve_app({"CAMERAS": {"tower": rtsp.url("hevc")}})
    page = browser.new_page()
    try:
        page.goto(site + "/")
        assert wait_until(lambda: status_of(site, "tower").get("video", {}).get("mime_type"), 20)
        codecs = status_of(site, "tower")["video"]["mime_type"]
        playable = page.evaluate("codecs => MediaSource.isTypeSupported(codecs)", codecs)
        if playable:
            page.wait_for_function("() => { const v = document.querySelector('camstream-view[camera=tower] video');"
                                   " return v && v.readyState >= 3 && v.currentTime > 0; }", timeout=20000)
        else:
            page.wait_for_function("() => { const view = document.querySelector('camstream-view[camera=tower]');"
                                   " const img = view.querySelector('img');"
                                   " return view.dataset.mode !== 'video' && img && img.naturalWidth === 320; }",
                                   timeout=20000)
        mode = page.eval_on_selector("camstream-view[camera=tower]", "view => view.dataset.mode")
        assert (mode == "video") == playable, f"{codecs}: playable {playable}, shown as {mode}"
        print(f"{codecs}: this browser plays it: {playable}, shown as {mode}", file=sys.stderr)
    finally:
        page.close()


def _sps(extradata: bytes) -> bytes:
    """The SPS in avcC (MP4) or Annex B extradata."""
    if extradata[:1] == b"\x01":
        size = struct.unpack_from(">H", extradata, 6)[0]
        return extradata[8:8 + size]
    return next(unit for unit in extradata.split(b"\0\0\1") if unit and unit[0] & 0x1F == 7).rstrip(b"\0")


def test_a_camera_without_passed_through_video_answers_404_on_mse_and_hls(serve_app):
    site = serve_app({"SOURCE": "pattern"})
    for path in ("/hls/default/index.m3u8", "/mse/default"):
        with pytest.raises(urllib.error.HTTPError) as error:
            urllib.request.urlopen(site + path, timeout=10)
        assert error.value.code == 404 and "/video_feed/default" in json.loads(error.value.read())["error"]


def test_an_rtsp_camera_that_refuses_says_why_and_comes_back_with_the_server(serve_app):
    port = free_port()
    site = serve_app({"CAMERAS": {"gate": f"rtsp://user:hunter2@127.0.0.1:{port}/live"}, "IDLE_TIMEOUT": 30})
    ws = mse(site, "gate")
    try:
        assert wait_until(lambda: status_of(site, "gate")["state"] == "reconnecting", 20)
        status = status_of(site, "gate")
        assert status["last_error"] and "hunter2" not in json.dumps(status)
        server = RtspServer(port)
        try:
            header = json.loads(ws.recv())  # the viewer waits, and gets the stream once the camera is back
            assert header["type"] == "mse" and ws.recv()[4:8] == b"ftyp"
            # The init segment goes out with the first keyframe, a moment before the camera says it streams.
            assert wait_until(lambda: status_of(site, "gate")["state"] == "streaming", 20)
        finally:
            server.stop()
    finally:
        ws.close()


def test_an_mse_client_that_sends_binary_is_closed_and_others_keep_watching(site):
    watcher = mse(site, "door")
    rude = mse(site, "door")
    try:
        receive_stream(rude, 1)
        rude.send_binary(b"\x00" * 64)
        with pytest.raises(websocket.WebSocketConnectionClosedException):
            for _ in range(200):
                rude.recv()
        receive_stream(watcher, 10)
    finally:
        rude.close()
        watcher.close()
    assert get_json(f"{site}/healthz")[1]["viewer_errors"] == 0


def test_an_mse_viewer_that_stops_reading_is_skipped_to_keyframes_and_holds_bounded_memory(rtsp):
    """A client that reads nothing: the server keeps its socket's worth and a bounded queue, dropping whole
    GOPs at keyframes; everyone else is unaffected."""
    app = create_app({"CAMERAS": {"door": rtsp.url("live")}})
    with Servers() as servers:
        site = servers.start(app)
        sock = socket.create_connection(("127.0.0.1", int(site.rsplit(":", 1)[1])), timeout=20)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.sendall(b"GET /mse/door HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
        feed = runtime_of(app).cameras["door"].media
        assert wait_until(lambda: feed.viewer_count == 1, 20)
        viewer = next(iter(feed._viewers))
        runtime_of(app).sender.stall_timeout = 600
        assert wait_until(lambda: viewer.skipped > 0, 60), "a reader that falls a GOP behind skips to a keyframe"
        assert viewer._waiting_bytes <= MAX_WAITING
        watcher = mse(site, "door")
        try:
            receive_stream(watcher, 20)
        finally:
            watcher.close()
        sock.close()
        assert wait_until(lambda: feed.viewer_count == 0, 20), "the viewer is gone with its socket"


def test_the_page_plays_the_h264_camera_in_a_video_element_near_the_live_edge(site, browser):
    page = browser.new_page()
    try:
        started = time.monotonic()
        page.goto(site + "/")
        page.wait_for_function("() => { const v = document.querySelector('camstream-view[camera=door] video');"
                               " return v && v.readyState >= 3 && v.currentTime > 0; }", timeout=20000)
        first_picture = time.monotonic() - started
        state = "() => { const v = document.querySelector('camstream-view[camera=door] video'); " \
                "const b = v.buffered; return [v.currentTime, b.end(b.length - 1), v.videoWidth]; }"
        before, _, width = page.evaluate(state)
        assert width == 320
        # Playing on, and within a second of the live edge (a moment's lag on a busy machine catches up).
        page.wait_for_function("() => { const v = document.querySelector('camstream-view[camera=door] video');"
                               f" const b = v.buffered; return v.currentTime > {before + 1} &&"
                               " b.end(b.length - 1) - v.currentTime < 1.0; }", timeout=20000)
        assert page.eval_on_selector("camstream-view[camera=door]", "view => view.dataset.mode") == "video"
        print(f"first picture in the browser after {first_picture:.2f} s", file=sys.stderr)
    finally:
        page.close()


def test_the_page_shows_an_rtsp_camera_that_is_down_as_mjpeg_with_its_reason(serve_app, browser):
    site = serve_app({"CAMERAS": {"gate": f"rtsp://127.0.0.1:{free_port()}/live"}})
    page = browser.new_page()
    try:
        page.goto(site + "/")
        assert page.eval_on_selector("camstream-view[camera=gate]", "view => view.paths[0]") == "video"
        # No stream comes: the view gives up on MSE (here a view of its own that waits 1 s) and shows
        # the camera's MJPEG, "no signal" frames that say why.
        page.evaluate("() => { const view = document.createElement('camstream-view'); view.id = 'quick';"
                      " view.setAttribute('camera', 'gate'); view.setAttribute('video', '');"
                      " view.setAttribute('video-timeout', '1'); document.body.appendChild(view); }")
        assert page.eval_on_selector("#quick", "view => view.paths[0]") == "video"
        page.wait_for_function("() => { const view = document.querySelector('#quick');"
                               " const img = view.querySelector('img');"
                               " return view.dataset.mode !== 'video' && img && img.naturalWidth > 0; }",
                               timeout=30000)
    finally:
        page.close()


def test_the_server_counts_mse_viewers_against_max_viewers(rtsp, serve_app):
    site = serve_app({"CAMERAS": {"door": rtsp.url("live")}, "MAX_VIEWERS": 1})
    first = mse(site, "door")
    try:
        receive_stream(first, 1)
        with pytest.raises(websocket.WebSocketBadStatusException) as refused:
            mse(site, "door")
        assert refused.value.status_code == 503
    finally:
        first.close()


def test_an_rtsp_cameras_transport_is_taken_off_its_url(rtsp):
    app = create_app({"CAMERAS": {"door": rtsp.url("live?transport=udp&profile=1")}})
    try:
        camera = runtime_of(app).cameras["door"]
        assert camera.media is not None and camera.transport == "udp"
        assert camera.url == rtsp.url("live?profile=1")
    finally:
        shutdown(app)


def test_camstreams_own_reader_takes_rtsp_over_tcp_and_ffmpegs_takes_it_over_udp(serve_app):
    server = RtspServer()  # a camera of its own: the module's has served twenty tests' clients before this one
    try:
        site = serve_app({"CAMERAS": {"tcp": server.url("av"), "udp": server.url("av?transport=udp")},
                          "IDLE_TIMEOUT": 30})
        for name, reader in (("tcp", "camstream"), ("udp", "ffmpeg")):
            ws = mse(site, name)
            try:
                header, init, fragments = receive_stream(ws, 10)
                assert "mp4a.40.2" in header["codecs"] and init[4:8] == b"ftyp" and len(fragments) == 10
                assert status_of(site, name)["video"]["reader"] == reader
            finally:
                ws.close()
    finally:
        server.stop()
