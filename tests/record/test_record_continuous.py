"""Continuous recording: a kill -9 loses at most two seconds, listing, paced playback, MP4 downloads."""

import io
import itertools
import json
import re
import signal
import sys
import time
import urllib.request

import av
import numpy as np
import pytest

from camera.record import Index, Storage, framefile
from camera.record.formats import frame_times
from tests.config.test_cli import env, running  # noqa: F401 - a fixture
from tests.conftest import Servers
from tests.helpers import MjpegReader, UpstreamServer, decode, get, get_json, make_jpeg, wait_until
from tests.sources import SceneCamera
from webapp import create_app


def serve_recording(running, storage, fmt):  # noqa: F811 - the fixture's value
    server = running([sys.executable, "-m", "webapp", "--source", "pattern", "--fps", "10", "--port", "0",
                      "--record", "continuous", "--record-format", fmt, "--storage", str(storage),
                      "--segment-seconds", "2", "--min-free", "0"], env())
    seen = []
    port = server.wait_for_line(r"open http://localhost:(\d+)/", seen=seen).group(1)
    return server, f"http://127.0.0.1:{port}", "".join(seen)


def assert_index_and_files_agree(root):
    storage = Storage(root)
    try:
        segments = storage.index.segments()
        for segment in segments:
            path = storage.path(segment.path)
            assert path.stat().st_size == segment.bytes, segment
            times = frame_times(segment.format, path, segment.start)
            assert len(times) == segment.frames and times[-1] == pytest.approx(segment.end, abs=0.002)
        files = {storage.relative(path) for path in (root / "recordings").rglob("*") if path.is_file()}
        assert files == {segment.path for segment in segments}
        return segments
    finally:
        storage.close()


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["jpeg", "h264"])
def test_kill_9_mid_recording_loses_at_most_two_seconds(tmp_path, running, fmt):  # noqa: F811
    storage = tmp_path / "store"
    server, url, _ = serve_recording(running, storage, fmt)
    recording = lambda: get_json(f"{url}/api/cameras/default")[1]["recording"]
    assert wait_until(lambda: recording()["frames_written"] >= 45, 30), recording()
    killed_at = time.time()
    server.process.send_signal(signal.SIGKILL)
    server.process.wait(10)

    server, url, log = serve_recording(running, storage, fmt)
    # The segment being written is cut clean, or dropped if it had no whole frame (or fragment) yet.
    assert re.search(r"1 segment\(s\) repaired|1 row\(s\) without a file dropped", log), log.splitlines()
    _, body = get_json(f"{url}/api/recordings?end={killed_at}")
    before_kill = [segment for segment in body["recordings"] if segment["start"] < killed_at]
    assert before_kill and before_kill[-1]["end"] >= killed_at - 2.0, (killed_at, before_kill[-1])
    assert all(not segment["recording"] for segment in before_kill)
    # What was written before plays after the restart.
    reader = MjpegReader(f"{url}{before_kill[-1]['playback']}")
    with reader:
        assert all(decode(frame).shape == (480, 640, 3) for frame in reader.read(3))
    assert server.stop() == 0
    assert_index_and_files_agree(storage)


@pytest.fixture
def recording(tmp_path):
    scene = SceneCamera(rate=20)
    app = create_app({"CAMERAS": {"scene": scene}, "RECORD": "scene=continuous",
                      "STORAGE": str(tmp_path / "store"), "MIN_FREE": 0, "SEGMENT_SECONDS": 1})
    with Servers() as servers:
        yield servers.start(app), tmp_path / "store", scene


def segments(url: str) -> list[dict]:
    return get_json(f"{url}/api/recordings?camera=scene")[1]["recordings"]


def test_continuous_recording_is_listed_in_segments_without_anyone_watching(recording):
    url, _, _ = recording
    assert wait_until(lambda: len(segments(url)) >= 4, 30)
    found = segments(url)
    assert [segment["start"] for segment in found] == sorted(segment["start"] for segment in found)
    closed = [segment for segment in found if not segment["recording"]]
    assert len(closed) >= 3
    for previous, segment in itertools.pairwise(closed):
        # One after the other, a frame apart, a second each.
        assert 0 < segment["start"] - previous["end"] <= 0.2
        assert 0.8 <= segment["end"] - segment["start"] <= 1.1 and segment["format"] == "jpeg"
    _, status = get_json(f"{url}/api/cameras/scene")
    assert status["viewers"] == 0 and status["state"] == "streaming"
    assert status["recording"]["state"] == "recording" and status["recording"]["mode"] == "continuous"
    middle = closed[1]
    within = get_json(f"{url}/api/recordings?start={middle['start'] + 0.1}&end={middle['end'] - 0.1}")[1]
    assert [segment["id"] for segment in within["recordings"]] == [middle["id"]]


@pytest.mark.slow
def test_playback_from_a_time_is_paced_as_recorded(recording):
    url, _, _ = recording
    assert wait_until(lambda: len(segments(url)) >= 4, 30)
    start = segments(url)[0]["start"] + 0.5
    reader = MjpegReader(f"{url}/playback/scene?start={start}")
    with reader:
        began = time.monotonic()
        stamps = []
        for _ in range(40):
            # Recorded frames carry their capture time in them.
            stamps.append(framefile.stamp_of(reader.read(1)[0]))
        elapsed = time.monotonic() - began
    assert stamps[0] >= start and stamps == sorted(stamps) and len(set(stamps)) == 40
    # Two seconds of recording take (at least most of) two seconds to play: paced, not poured out.
    assert elapsed >= 0.75 * (stamps[-1] - stamps[0])


def test_a_span_downloads_as_mp4(recording):
    url, _, _ = recording
    assert wait_until(lambda: len(segments(url)) >= 4, 30)
    first = segments(url)[0]
    start, end = first["start"] + 0.2, first["start"] + 2.2
    status, headers, body = get(f"{url}/api/recordings/scene.mp4?start={start}&end={end}")
    assert status == 200 and headers["Content-Type"] == "video/mp4"
    assert "attachment" in headers["Content-Disposition"]
    with av.open(io.BytesIO(body)) as container:
        frames = list(container.decode(video=0))
    assert 30 <= len(frames) <= 42
    assert frames[0].width == 320 and frames[0].height == 240
    # The requested 2 s and no more; a busy machine's camera may have caught fewer frames near its ends.
    assert 1.0 <= float((frames[-1].pts - frames[0].pts) * frames[0].time_base) <= 2.15


def test_a_download_is_made_once_and_a_player_seeking_in_it_reads_the_same_file(recording):
    url, storage, _ = recording
    assert wait_until(lambda: len(segments(url)) >= 3 and not segments(url)[1]["recording"], 30)
    first = segments(url)[0]
    query = f"start={first['start']}&end={first['start'] + 1.5}"
    whole = get(f"{url}/api/recordings/scene.mp4?{query}")
    kept = list((storage / "exports").glob("*.mp4"))
    assert whole[0] == 200 and len(kept) == 1, "kept in the storage folder's exports/"
    assert "Content-Length" not in whole[1], "the first asker is sent the file as it is made, before its length is known"
    with av.open(io.BytesIO(whole[2])) as container:
        assert len(list(container.decode(video=0))) >= 20, "sent whole all the same"
    again = get(f"{url}/api/recordings/scene.mp4?{query}")
    assert again[1]["Content-Length"] == str(len(whole[2])) and again[2] == whole[2], "then the kept file"
    made = kept[0].stat().st_ino
    request = urllib.request.Request(f"{url}/api/recordings/scene.mp4?{query}", headers={"Range": "bytes=100-199"})
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 206 and response.headers["Content-Range"].startswith("bytes 100-199/")
        part = response.read()
    assert part == whole[2][100:200], "the seek reads the very file the download was"
    # Made once: a second making would have put a new file in its place (written beside it, then moved).
    assert [path.stat().st_ino for path in (storage / "exports").glob("*.mp4")] == [made]


@pytest.mark.parametrize("path, status", [
    ("/api/recordings?camera=nope", 404),
    ("/api/recordings?start=soon", 400),
    ("/api/recordings?start=1800000000&end=1700000000", 400),
    ("/api/recordings?limit=-3", 400),
    ("/playback/nope", 404),
    ("/playback/scene?start=7000000000", 404),
    ("/playback/scene?start=inf", 400),
    ("/api/recordings/scene.mp4", 400),
    ("/api/recordings/scene.mp4?start=1000000000&end=1000000010", 404),
    ("/api/recordings/scene.mp4?start=1000000000&end=1000009000", 400),
    ("/api/recordings/..%2F..%2Fetc%2Fpasswd.mp4?start=1000000000&end=1000000010", 404),
    ("/api/recordings/scene.mp4?start=1000000000&end=2026-13-45", 400),
])
def test_bad_recording_requests_are_json_errors(recording, path, status):
    url, _, _ = recording
    code, headers, body = get(url + path)
    assert code == status, (path, body)
    assert headers["Content-Type"] == "application/json" and "error" in json.loads(body)


def test_without_recording_the_endpoints_say_so(serve_app):
    url = serve_app({"SOURCE": "pattern"})
    for path in ("/api/recordings", "/api/events", "/playback/default", "/api/events/1"):
        status, body = get_json(url + path)
        assert status == 404 and "no camera has --record" in body["error"]


def test_frames_are_recorded_as_the_camera_encoded_them(recording):
    url, root, scene = recording
    published = {}
    with scene.subscribe() as subscription:
        while len(published) < 40:
            frame = subscription.next_frame(10)
            assert frame is not None
            published[frame.timestamp] = frame.jpeg
    assert wait_until(lambda: segments(url)[-1]["end"] > max(published), 30)
    index = Index(root / "camstream.db")
    recorded = index.segments("scene", min(published), max(published), kind="continuous")
    index.close()
    frames = {}
    for segment in recorded:
        path = root / segment.path
        frames.update(framefile.read(path, framefile.scan(path)))
    matched = [timestamp for timestamp in published if timestamp in frames]
    assert len(matched) >= 36, "the recorder keeps up with a 20 fps camera"
    # Byte for byte what the camera published: nothing decoded, nothing encoded again.
    assert all(framefile.unstamp(frames[timestamp]) == published[timestamp] for timestamp in matched)


def test_cameras_whose_video_is_not_passed_through_record_their_frames(tmp_path):
    # An HTTP camera that turns out to send MJPEG, and a file of MJPEG: both are read as packets, neither is
    # passed through, so both are recorded from their frames, not by copy.
    clip = tmp_path / "clip.avi"
    output = av.open(str(clip), "w")
    stream = output.add_stream("mjpeg", rate=10)
    stream.width, stream.height, stream.pix_fmt = 160, 120, "yuvj420p"
    for index in range(20):
        output.mux(stream.encode(av.VideoFrame.from_ndarray(np.full((120, 160, 3), index * 10, np.uint8),
                                                             format="bgr24")))
    output.mux(stream.encode())
    output.close()
    with UpstreamServer([make_jpeg(index) for index in range(5)], fps=10) as upstream:
        app = create_app({"CAMERAS": {"web": upstream.url, "file": str(clip)}, "RECORD": "web=continuous,file=continuous",
                          "STORAGE": str(tmp_path / "store"), "MIN_FREE": 0, "SEGMENT_SECONDS": 1})
        with Servers() as servers:
            url = servers.start(app)
            for name in ("web", "file"):
                found = lambda name=name: get_json(f"{url}/api/recordings?camera={name}")[1]["recordings"]
                assert wait_until(lambda found=found: len(found()) >= 2, 30), (name, found())
                assert {segment["format"] for segment in found()} == {"jpeg"}, found()
                assert all(segment["frames"] > 0 for segment in found()[:-1])
                status = get_json(f"{url}/api/cameras/{name}")[1]["recording"]
                assert status["format"] == "jpeg" and status["state"] == "recording", status
