"""Clips and span downloads start at 0 and last what they hold, copied from a camera recorded by copy.

Judged as a player sees them: ffprobe reads the files (start, duration,
decode times, durations, profile, audio) and Chromium plays an event's
clip in a ``<video>``. Also: a download cut short is an incomplete transfer
the client notices, retention leaves alone what a download reads, and a
camera whose clock runs fast claims no more time than went by.
"""

from __future__ import annotations

import http.client
import io
import itertools
import json
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import av
import pytest
import waitress

from camera.media import FragmentMuxer, MediaFeed, boxes
from camera.record import Limits, Recorder, RecordSettings, Retention, Storage, copy
from camera.record.exports import CutShort, ExportCache, Making
from tests.conftest import Servers
from tests.helpers import get_json, h264_aac_clip, wait_until
from tests.passthrough.test_rtsp import RtspServer, rtsp  # noqa: F401 - a fixture
from webapp import create_app
from webapp.api.stored import download

FPS = 15  # the RTSP server's
FRAME = 1 / FPS


def probe(data: bytes, tmp_path: Path) -> dict:
    """ffprobe's packets, streams and format of an MP4 held in ``data``."""
    path = tmp_path / f"probe-{len(data)}-{time.monotonic_ns()}.mp4"
    path.write_bytes(data)
    done = subprocess.run(["ffprobe", "-v", "error", "-show_packets", "-show_streams", "-show_format", "-of", "json",
                           str(path)], capture_output=True, text=True, timeout=60, check=True)
    return json.loads(done.stdout)


def assert_plays_from_0_as_long_as_it_holds(found: dict, profile: str) -> float:
    """The checks a player's view of a clip or download comes to; returns its duration."""
    streams = {stream["index"]: stream for stream in found["streams"]}
    kinds = {stream["codec_type"] for stream in streams.values()}
    assert kinds == {"video", "audio"}, f"the camera's audio is there too: {kinds}"
    video = next(stream for stream in streams.values() if stream["codec_type"] == "video")
    assert video["profile"] == profile, "copied: the camera's own profile, not an encoder's"
    assert abs(float(found["format"]["start_time"])) <= FRAME, found["format"]
    packets = found["packets"]
    first, last = {}, 0.0
    for index in streams:
        mine = [packet for packet in packets if packet["stream_index"] == index]
        assert mine, f"stream {index} holds packets"
        dts = [int(packet["dts"]) for packet in mine]
        assert all(later > earlier for earlier, later in itertools.pairwise(dts)), \
            f"stream {index}'s decode times only go forward: {dts[:40]}"
        assert all(int(packet["duration"]) > 0 for packet in mine), f"stream {index} has a packet of duration 0"
        first[index] = float(mine[0]["dts_time"])
        last = max(last, max(float(packet["dts_time"]) + float(packet["duration_time"]) for packet in mine))
        assert abs(first[index]) <= FRAME, f"stream {index} starts at {first[index]}"
    span = last - min(first.values())
    duration = float(found["format"]["duration"])
    assert abs(duration - span) <= 0.2, f"the file says {duration} s and holds {span} s"
    return duration


@pytest.fixture(scope="module")
def camera_profile(rtsp: RtspServer) -> str:  # noqa: F811 - the fixture
    """The video profile ffprobe reads from the camera itself."""
    done = subprocess.run(["ffprobe", "-v", "error", "-rtsp_transport", "tcp", "-select_streams", "v",
                           "-show_streams", "-of", "json", rtsp.url("av")],
                          capture_output=True, text=True, timeout=60, check=True)
    return json.loads(done.stdout)["streams"][0]["profile"]


@pytest.fixture(scope="module")
def site(rtsp: RtspServer, tmp_path_factory) -> Iterator[tuple[str, Path]]:  # noqa: F811 - the fixture
    """An H.264 + AAC camera recorded continuously by copy in 1 s segments, with motion events (the ball never
    stops: one event of 3 s after another)."""
    store = tmp_path_factory.mktemp("clips") / "store"
    with Servers() as servers:
        url = servers.start(create_app({
            "CAMERAS": {"yard": rtsp.url("av")}, "RECORD": {"yard": "continuous"}, "SEGMENT_SECONDS": 1,
            "DETECT": {"yard": "motion"}, "DETECT_FPS": 5, "STORAGE": str(store), "MIN_FREE": 0,
            "PRE_CAPTURE": 1, "POST_CAPTURE": 0.5, "EVENT_MAX_LENGTH": 3}))
        yield url, store


def ended_event(url: str) -> dict:
    """An event that has ended and whose clip is all recorded (its pre-capture too) in closed segments."""
    def find() -> dict | None:
        events = get_json(f"{url}/api/events?camera=yard")[1]["events"]
        closed = [segment for segment in get_json(f"{url}/api/recordings?camera=yard")[1]["recordings"]
                  if not segment["recording"]]
        if not closed:
            return None
        began, covered = min(segment["start"] for segment in closed), max(segment["end"] for segment in closed)
        done = [event for event in events if event["clip_end"] is not None and event["clip_end"] < covered
                and event["clip_start"] > began + 1]
        return min(done, key=lambda event: event["id"]) if done else None
    assert wait_until(find, 60), get_json(f"{url}/api/events?camera=yard")[1]
    found = find()
    assert found is not None
    return found


def test_an_event_clip_of_a_camera_recorded_continuously_is_copied_and_starts_at_0(site, camera_profile, tmp_path):
    url, store = site
    event = ended_event(url)
    started = time.monotonic()
    with urllib.request.urlopen(f"{url}/api/events/{event['id']}/clip.mp4", timeout=30) as answer:
        first_byte = answer.read(1)
        first_byte_at = time.monotonic() - started
        data = first_byte + answer.read()
    whole_at = time.monotonic() - started
    print(f"event clip: first byte {first_byte_at:.3f} s, whole {whole_at:.3f} s, {len(data)} bytes")
    duration = assert_plays_from_0_as_long_as_it_holds(probe(data, tmp_path), camera_profile)
    length = event["clip_end"] - event["clip_start"]  # with its pre- and post-capture (none where split)
    # From the keyframe at or before its start (a keyframe a second), to its end.
    assert length - 0.3 <= duration <= length + 1 + 0.3, (duration, length, event)
    assert not list(store.glob("clips/yard/*")) or all(path.suffix == ".mp4" for path in store.glob("clips/yard/*"))
    # Asked again: the same file, kept, now served with ranges.
    again = urllib.request.urlopen(f"{url}/api/events/{event['id']}/clip.mp4", timeout=30)
    assert again.headers["Accept-Ranges"] == "bytes" and again.read() == data


def test_a_span_download_across_segments_is_copied_and_starts_at_0(site, camera_profile, tmp_path):
    url, _ = site
    recordings = lambda: [segment for segment in get_json(f"{url}/api/recordings?camera=yard")[1]["recordings"]
                          if not segment["recording"]]
    assert wait_until(lambda: len(recordings()) >= 4, 60), recordings()
    segments = recordings()
    start = segments[0]["start"] + 0.5
    end = segments[2]["end"] - 0.2
    data = urllib.request.urlopen(f"{url}/api/recordings/yard.mp4?start={start}&end={end}", timeout=30).read()
    duration = assert_plays_from_0_as_long_as_it_holds(probe(data, tmp_path), camera_profile)
    # From the keyframe at or before the start (a second before at most) to the end; the segments follow
    # each other without a gap, so the file is as long as the span.
    assert end - start - 0.3 <= duration <= end - start + 1 + 0.3, (duration, end - start)


def test_chromium_plays_an_event_clip_from_0_for_as_long_as_it_is(site, browser, tmp_path):
    url, _ = site
    event = ended_event(url)
    clip = f"{url}/api/events/{event['id']}/clip.mp4"
    duration = float(probe(urllib.request.urlopen(clip, timeout=30).read(), tmp_path)["format"]["duration"])
    page = browser.new_page()
    try:
        page.goto(f"{url}/api/events")
        seen = page.evaluate("""async (src) => {
            const video = document.createElement('video');
            video.muted = true;
            video.preload = 'auto';
            document.body.appendChild(video);
            const loaded = new Promise((resolve, reject) => {
                video.onloadedmetadata = resolve;
                video.onerror = () => reject(new Error('error ' + (video.error && video.error.code)));
            });
            video.src = src;
            await loaded;
            return {duration: video.duration, currentTime: video.currentTime,
                    start: video.seekable.length ? video.seekable.start(0) : null};
        }""", clip)
    finally:
        page.close()
    assert seen["currentTime"] == 0 and seen["start"] in (0, None), seen
    assert abs(seen["duration"] - duration) <= 0.2, (seen, duration)


# -- a download cut short ------------------------------------------------------------------------------------


def test_a_download_cut_short_raises_in_its_body_after_its_first_bytes(tmp_path):
    cache = ExportCache(tmp_path / "exports")
    go_on = threading.Event()

    def make(path: Path) -> None:
        with open(path, "wb") as file:
            file.write(b"A" * 1000)
            file.flush()
            assert go_on.wait(30)
            raise FileNotFoundError(2, "a recording was deleted while it was being read")

    making = cache.fetch(cache.folder / "cut.mp4", make)
    assert isinstance(making, Making)
    file = making.open()
    assert file is not None
    chunks = making.follow(file)
    assert next(chunks) == b"A" * 1000
    go_on.set()
    with pytest.raises(CutShort):
        list(chunks)
    assert not (cache.folder / "cut.mp4").exists(), "nothing half made is kept"


def test_a_client_sees_a_download_cut_short_as_an_incomplete_transfer(tmp_path):
    """Through a real waitress: the chunked body ends without its terminating chunk."""
    cache = ExportCache(tmp_path / "exports")
    go_on = threading.Event()

    def make(path: Path) -> None:
        with open(path, "wb") as file:
            file.write(b"B" * 5000)
            file.flush()
            assert go_on.wait(30)
            raise OSError(5, "Input/output error")

    app = create_app({"CAMERAS": {"pattern": "pattern"}})

    @app.get("/span.mp4")
    def span():
        return download(cache.fetch(cache.folder / "span.mp4", make), "span.mp4", "nothing")

    server = waitress.create_server(app, host="127.0.0.1", port=0, threads=4)
    threading.Thread(target=server.run, daemon=True).start()
    try:
        connection = http.client.HTTPConnection("127.0.0.1", server.effective_port, timeout=30)
        connection.request("GET", "/span.mp4")
        answer = connection.getresponse()
        assert answer.status == 200 and answer.getheader("Transfer-Encoding") == "chunked"
        assert answer.read(5000) == b"B" * 5000
        go_on.set()
        with pytest.raises(http.client.IncompleteRead):
            answer.read()
        connection.close()
    finally:
        server.close()
        server.task_dispatcher.shutdown(timeout=2)


def test_retention_leaves_a_segment_alone_while_a_download_reads_it(tmp_path):
    storage = Storage(tmp_path / "store")
    try:
        index = storage.index
        old = time.time() - 30 * 86400
        name = storage.segment_name("yard", old, copy.SUFFIX)
        storage.path(name).parent.mkdir(parents=True, exist_ok=True)
        storage.path(name).write_bytes(b"x" * 100)
        segment_id = index.add_segment("yard", "continuous", "copy", name, old, None)
        index.update_segment(segment_id, old + 1, 10, 100, open=False, start=old)
        retention = Retention(storage, Limits(retain_days=7, min_free=0))
        with storage.exports.reading([name]):
            assert retention.run_once() == 0 and storage.path(name).exists(), "kept while it is read"
        assert retention.run_once() == 1 and not storage.path(name).exists(), "and deleted once the download is made"
    finally:
        storage.close()


def test_a_copy_export_reads_what_it_opened_though_retention_deletes_it_meanwhile(tmp_path):
    """The segments are opened before anything is written; deleting one meanwhile takes only its name."""
    fragments, init = muxed(h264_aac_clip(tmp_path / "camera.mp4", FPS, 3.0))
    path = tmp_path / "segment.copy.mp4"
    writer = copy.CopyWriter(path, init)
    for number, fragment in enumerate(fragments):
        writer.write(fragment.data, 1000.0 + number * FRAME if fragment.time is not None else None, fragment.time)
    writer.close()
    out = tmp_path / "out.mp4"
    opened = []
    real_open = copy.open_nofollow

    def open_then_delete(name):
        file = real_open(name)
        opened.append(name)
        Path(name).unlink()  # retention, the moment after
        return file

    copy.open_nofollow = open_then_delete
    try:
        frames = copy.export([(path, 1000.0, None)], 1000.0, 1003.0, out)
    finally:
        copy.open_nofollow = real_open
    assert opened == [path] and frames >= 40 and not path.exists()
    with av.open(str(out)) as container:
        assert sum(1 for packet in container.demux(video=0) if packet.size) == frames


# -- a camera whose clock runs fast -------------------------------------------------------------------------


def muxed(clip: Path, video_clock: float = 1.0) -> tuple[list, bytes]:
    """The fragments (and the init segment) camstream's muxer makes of ``clip``'s packets, their video times
    multiplied by ``video_clock`` (a camera whose clock runs that much fast)."""
    with av.open(str(clip)) as container:
        video, audio = container.streams.video[0], container.streams.audio[0]
        muxer = FragmentMuxer(video, audio)
        fragments = []
        for packet in container.demux(video, audio):
            if packet.size == 0:
                continue
            if packet.stream.type == "video" and video_clock != 1.0:
                packet.pts = round(packet.pts * video_clock) if packet.pts is not None else None
                packet.dts = round(packet.dts * video_clock) if packet.dts is not None else None
            fragments += muxer.add(packet)
        close = getattr(muxer, "close", None)  # FFmpeg's muxer held the last frame back; camstream's own does not
        fragments += close() if close is not None else []
        assert muxer.init is not None
        return fragments, muxer.init


class _Subscription:
    fps: float | None = None

    def take(self) -> None:
        return None

    def close(self) -> None:
        pass


class _Broadcaster:
    def watch(self, wake: threading.Event, fps: float | None = None) -> _Subscription:
        return _Subscription()


class FastClockCamera:
    """What a recorder needs of a camera that passes its video through: a name, a rate and its media feed."""

    name = "fast"
    fps = float(FPS)

    def __init__(self) -> None:
        self.media = MediaFeed()
        self.broadcaster = _Broadcaster()

    def hold(self) -> None:
        pass

    def unhold(self) -> None:
        pass


def test_a_camera_clock_that_runs_fast_claims_no_more_than_the_wall_clock(tmp_path):
    """Its video times run 2.7x the wall clock: its segments still end no later than the next one starts, never
    in the future, and each claims about the wall time it took."""
    fragments, init = muxed(h264_aac_clip(tmp_path / "camera.mp4", FPS, 4.0), video_clock=2.7)
    assert max(fragment.time for fragment in fragments if fragment.time is not None) > 2.7 * 3.5
    storage = Storage(tmp_path / "store")
    retention = Retention(storage, Limits(retain_days=None, min_free=0))
    camera = FastClockCamera()
    recorder = Recorder(camera, storage, retention, RecordSettings(mode="continuous", segment_seconds=1.0))
    try:
        recorder.start()
        camera.media.begin(init, boxes.mime_type(init))
        began = time.time()
        frames = 0
        for fragment in fragments:  # as the camera sends them: a frame every 1/15 s of the wall clock
            if fragment.time is not None:
                frames += 1
                time.sleep(max(0.0, began + frames * FRAME - time.time()))
            camera.media.publish(fragment)
        camera.media.end()
        assert wait_until(lambda: recorder.frames_written >= frames and not recorder._fragments, 30)
    finally:
        recorder.stop()
    ended = time.time()
    segments = storage.index.segments("fast")
    storage.close()
    assert len(segments) >= 2, segments
    for segment in segments:
        # Cut at the first keyframe (one a second) a second after its start: 2 s of the wall clock at most.
        assert segment.end <= ended, f"a segment that ends in the future: {segment}"
        assert segment.end - segment.start <= 2.0 + 0.3, f"{segment.end - segment.start:.2f} s claimed"
    for earlier, later in itertools.pairwise(segments):
        assert earlier.end <= later.start, f"segments that overlap: {earlier} and {later}"
    total = sum(segment.end - segment.start for segment in segments)
    assert total <= ended - began + 0.1, f"{total:.2f} s claimed for {ended - began:.2f} s recorded"


def test_a_segment_by_copy_plays_from_0_with_every_sample_timed(tmp_path):
    """A segment file on its own (what an events-only camera's clip is served as): from 0, forward, no 0."""
    fragments, init = muxed(h264_aac_clip(tmp_path / "camera.mp4", FPS, 3.0))
    path = tmp_path / "segment.copy.mp4"
    writer = copy.CopyWriter(path, init)
    keyframes = [number for number, fragment in enumerate(fragments) if fragment.keyframe]
    for number, fragment in enumerate(fragments[keyframes[1]:]):  # from the second keyframe: not at 0
        writer.write(fragment.data, 1000.0 + number * FRAME if fragment.time is not None else None, fragment.time)
    writer.close()
    assert copy.plays_from_zero(path)
    found = probe(path.read_bytes(), tmp_path)
    profile = next(stream["profile"] for stream in found["streams"] if stream["codec_type"] == "video")
    assert_plays_from_0_as_long_as_it_holds(found, profile)
    with av.open(io.BytesIO(path.read_bytes())) as container:
        assert container.streams.audio and container.streams.video
