"""Events over real HTTP: one opens and closes around the moving square, with snapshots and a clip
that starts with the seconds before it; they are listed, filtered, pushed, played and deleted."""

import io
import json
import os
import time

import av
import numpy as np
import pytest
import websocket

from camera.record import clip_segments, frames_between
from tests.conftest import Servers
from tests.helpers import decode, get, get_json, wait_until
from tests.sources import SceneCamera
from tests.viewers.test_events import EventReader
from tests.viewers.test_websocket import next_text, ws_url
from webapp import create_app
from webapp.runtime.registry import runtime_of

GAP, PRE, POST = 1.5, 1.0, 1.0


@pytest.fixture
def recording(tmp_path):
    scene = SceneCamera(rate=20)
    scene.moving.clear()
    app = create_app({"CAMERAS": {"scene": scene}, "DETECT": {"scene": "motion"}, "DETECT_FPS": 10,
                      "RECORD": {"scene": "events"}, "STORAGE": str(tmp_path / "store"), "MIN_FREE": 0,
                      "EVENT_GAP": GAP, "PRE_CAPTURE": PRE, "POST_CAPTURE": POST})
    with Servers() as servers:
        yield servers.start(app), app, scene


def red_x(image: np.ndarray) -> int:
    """Where the red square's left edge is."""
    red = (image[:, :, 2] > 180) & (image[:, :, 1] < 80)
    return int(np.argwhere(red.any(axis=0))[0][0])


def status(url: str) -> dict:
    return get_json(f"{url}/api/cameras/scene")[1]


def move_square(url: str, scene: SceneCamera, seconds: float) -> tuple[float, float]:
    """Let the detector learn the still scene, then move the square for ``seconds``; when it moved."""
    assert wait_until(lambda: status(url)["detection"]["results"] >= 10, 20)
    started = time.time()
    scene.moving.set()
    time.sleep(seconds)  # the event's length: what the test is about, not a wait for something
    scene.moving.clear()
    return started, time.time()


@pytest.mark.slow
def test_an_event_opens_and_closes_around_motion_with_snapshots_and_a_clip(recording):
    url, app, scene = recording
    reader = EventReader(f"{url}/events?cameras=scene")
    try:
        started, stopped = move_square(url, scene, 2.0)
        assert wait_until(lambda: get_json(f"{url}/api/events")[1]["events"], 10)
        assert wait_until(lambda: get_json(f"{url}/api/events")[1]["events"][0]["end"] is not None, GAP + 10)
        pushed = reader.read_until(lambda event: event[1] == "event_end")
    finally:
        reader.close()

    _, body = get_json(f"{url}/api/events")
    [event] = body["events"]
    assert event["camera"] == "scene" and set(event["labels"]) == {"motion"}
    assert started - 0.1 <= event["start"] <= started + 1.0
    # It ends with the last motion seen (the motion detector's background takes a moment to settle
    # where the square stopped), and closes GAP seconds later.
    assert stopped - 0.5 <= event["end"] <= stopped + 2.5
    kinds = [kind for _, kind, _ in pushed if kind.startswith("event_")]
    assert kinds == ["event_start", "event_end"]
    ends = [data for _, kind, data in pushed if kind == "event_end"]
    assert ends[0]["id"] == event["id"] and ends[0]["end"] == event["end"]
    assert get_json(f"{url}/api/events/{event['id']}")[1] == event

    status_code, headers, clean = get(f"{url}/api/events/{event['id']}/snapshot.jpg")
    assert status_code == 200 and headers["Content-Type"] == "image/jpeg"
    _, _, boxed = get(f"{url}/api/events/{event['id']}/snapshot.jpg?boxes=1")
    assert decode(clean).shape == decode(boxed).shape == (240, 320, 3)
    assert np.abs(decode(clean).astype(int) - decode(boxed).astype(int)).max() > 100, "boxes drawn on one"

    # The clip, from the index: the pre-capture seconds (the square still), the event, the post-capture.
    storage = runtime_of(app).recording.storage
    row = storage.index.event(event["id"])
    frames = list(frames_between(storage, clip_segments(storage, row), row.clip_start, row.clip_end))
    times = [timestamp for timestamp, _ in frames]
    assert times == sorted(times)
    # (The ring keeps PRE seconds; a loaded machine's camera may have skipped a few frames at its far end.)
    assert times[0] <= row.start - PRE + 0.5
    # Frames from before the square moved: the detector saw the motion a frame or two later.
    still = [data for timestamp, data in frames if timestamp < started - 0.06]
    assert len(still) >= PRE * 20 * 0.5
    assert len({red_x(decode(data)) for data in still}) == 1, "before the event the square stood still"
    assert times[-1] >= row.end + POST - 0.2

    # The same clip as MP4, as a browser gets it.
    status_code, headers, mp4 = get(f"{url}{event['clip']}")
    assert status_code == 200 and headers["Content-Type"] == "video/mp4"
    with av.open(io.BytesIO(mp4)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        decoded = list(container.decode(stream))
        assert abs(len(decoded) - len(frames)) <= 1
        duration = float(decoded[-1].pts * decoded[-1].time_base - decoded[0].pts * decoded[0].time_base)
        assert duration == pytest.approx(times[-1] - times[0], abs=0.1)
    # Made once, then kept.
    assert storage.path(storage.playable_clip_name("scene", event["id"])).exists()
    assert get(f"{url}{event['clip']}")[2] == mp4


def test_events_are_filtered_by_camera_label_and_time_and_deleted(recording):
    url, app, scene = recording
    move_square(url, scene, 1.0)
    assert wait_until(lambda: [e for e in get_json(f"{url}/api/events")[1]["events"] if e["end"]], GAP + 15)
    [event] = get_json(f"{url}/api/events")[1]["events"]
    assert get_json(f"{url}/api/events?label=motion")[1]["events"] == [event]
    assert get_json(f"{url}/api/events?label=person")[1]["events"] == []
    assert get_json(f"{url}/api/events?camera=scene&after={event['start'] - 1}")[1]["events"] == [event]
    assert get_json(f"{url}/api/events?after={event['start'] + 1}")[1]["events"] == []
    iso = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(event["start"] + 5))
    assert get_json(f"{url}/api/events?before={iso}")[1]["events"] == [event]
    assert get_json(f"{url}/api/events?limit=1")[1]["events"] == [event]

    storage = runtime_of(app).recording.storage
    row = storage.index.event(event["id"])
    files = [storage.path(segment.path) for segment in clip_segments(storage, row)]
    files += [storage.path(row.snapshot), storage.path(row.snapshot_boxes)]
    assert all(path.exists() for path in files)
    status_code, _, body = get(f"{url}/api/events/{event['id']}", method="DELETE")
    assert status_code == 204 and body == b""
    assert not any(path.exists() for path in files)
    assert get_json(f"{url}/api/events/{event['id']}")[0] == 404
    assert get_json(f"{url}/api/events")[1]["events"] == []


def test_a_running_event_is_shown_open_and_cannot_be_deleted(recording):
    url, _, scene = recording
    assert wait_until(lambda: status(url)["detection"]["results"] >= 10, 20)
    scene.moving.set()
    assert wait_until(lambda: get_json(f"{url}/api/events")[1]["events"], 10)
    [event] = get_json(f"{url}/api/events")[1]["events"]
    assert event["end"] is None and status(url)["recording"]["event"] == event["id"]
    status_code, body = get_json(f"{url}/api/events/{event['id']}", method="DELETE")
    assert status_code == 409 and "still going on" in body["error"]
    # Its clip so far plays already.
    status_code, headers, mp4 = get(f"{url}{event['clip']}")
    assert status_code == 200 and headers["Content-Type"] == "video/mp4" and len(mp4) > 1000
    scene.moving.clear()


def open_descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.slow
def test_no_export_leaks_a_file_descriptor_answered_or_refused(recording):
    """Clips of an open event and downloads, made and refused, a few hundred times: the descriptors stay put."""
    url, _, scene = recording
    assert wait_until(lambda: status(url)["detection"]["results"] >= 10, 20)
    scene.moving.set()
    try:
        assert wait_until(lambda: get_json(f"{url}/api/events")[1]["events"], 10)
        [event] = get_json(f"{url}/api/events")[1]["events"]
        first = get(f"{url}{event['clip']}")
        assert first[0] == 200, first
        before = open_descriptors()
        answers: dict[int, int] = {}
        for round_ in range(200):
            paths = ["/api/recordings/scene.mp4?start=1000000000&end=1000000010", "/api/events/999999/clip.mp4"]
            for path in paths + ([event["clip"]] if round_ % 10 == 0 else []):
                code = get(url + path)[0]
                answers[code] = answers.get(code, 0) + 1
        assert answers == {404: 400, 200: 20}, answers
        assert wait_until(lambda: open_descriptors() <= before + 5, 10), (before, open_descriptors())
    finally:
        scene.moving.clear()


@pytest.mark.parametrize("path", [
    "/api/events/0", "/api/events/99999999999999999999999", "/api/events/-1", "/api/events/abc",
    "/api/events/1/snapshot.jpg", "/api/events/1/clip.mp4", "/api/events/..%2F..%2Fetc%2Fpasswd",
    "/api/events?camera=nope", "/api/events?after=yesterday", "/api/events?before=nan",
    "/api/events?after=1e300", "/api/events?limit=0", "/api/events?limit=abc", "/api/events?limit=100000",
    "/api/events?label=" + "x" * 200,
])
def test_bad_event_requests_are_json_errors(recording, path):
    url, _, _ = recording
    status_code, headers, body = get(url + path)
    assert 400 <= status_code < 500, path
    assert headers["Content-Type"] == "application/json" and "error" in json.loads(body)


def test_event_start_and_end_reach_the_cameras_websocket(recording):
    url, _, scene = recording
    ws = websocket.create_connection(ws_url(url, "scene"), timeout=15)
    try:
        ws.send(json.dumps({"fps": 1}))
        move_square(url, scene, 1.0)
        kinds = []
        while "event_end" not in kinds:
            message = next_text(ws)
            if message["event"].startswith("event_"):
                kinds.append(message["event"])
                assert message["camera"] == "scene" and "labels" in message
    finally:
        ws.close()
    assert kinds == ["event_start", "event_end"]


@pytest.mark.slow
def test_an_event_that_never_stops_is_cut_at_its_longest_length_and_the_next_goes_on_from_it(tmp_path):
    scene = SceneCamera(rate=20)
    app = create_app({"CAMERAS": {"scene": scene}, "DETECT": {"scene": "motion"}, "DETECT_FPS": 10,
                      "RECORD": {"scene": "events"}, "STORAGE": str(tmp_path / "store"), "MIN_FREE": 0,
                      "EVENT_GAP": GAP, "PRE_CAPTURE": PRE, "POST_CAPTURE": POST, "EVENT_MAX_LENGTH": 2})
    with Servers() as servers:
        url = servers.start(app)
        scene.moving.set()  # and it never stops
        assert wait_until(lambda: len(get_json(f"{url}/api/events")[1]["events"]) >= 3, 30)
        events = sorted(get_json(f"{url}/api/events")[1]["events"], key=lambda event: event["id"])
        clip = get(f"{url}/api/events/{events[0]['id']}/clip.mp4")
    first, second, third = events[:3]
    assert first["continues"] is None and second["continues"] == first["id"] and third["continues"] == second["id"]
    for earlier, later in ((first, second), (second, third)):
        assert earlier["end"] == pytest.approx(earlier["start"] + 2, abs=0.01), "closed at its longest length"
        assert later["start"] == pytest.approx(earlier["end"], abs=0.01) and later["clip_start"] == later["start"]
        assert earlier["clip_end"] == earlier["end"], "no post-capture: the next clip takes over"
    assert clip[0] == 200
    with av.open(io.BytesIO(clip[2])) as video:
        stream = video.streams.video[0]
        seconds = float(stream.duration * stream.time_base) if stream.duration else float(video.duration / 1e6)
    assert seconds <= PRE + 2 + 0.5, f"the first clip is its pre-capture and 2 s, not {seconds:.1f} s"
