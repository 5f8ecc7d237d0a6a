"""Tracking: ids that stay with an object across frames and a flickering detector, min_frames, tracks that
end after lost_seconds, objects that go stationary; filters and masks; the same scene through a real
detector worker (a scripted plug-in) and a recorder, one event per object."""

from __future__ import annotations

import numpy as np
import pytest

from camera.detect import CameraDetection, Detection, DetectionResult, parse_spec
from camera.frame import Frame
from camera.record import Limits, Recorder, RecordSettings, Retention, Storage
from camera.track import ObjectFilter, Rules, Tracking, Zone, eventinfo, track_camera
from tests.helpers import wait_until
from tests.sources import SceneCamera

WIDTH, HEIGHT = 320, 240
# The scene's zones and masks, in fractions of the picture.
DRIVE = Zone("drive", ((0.4, 0.5), (1.0, 0.5), (1.0, 1.0), (0.4, 1.0)))
OBJECT_MASK = ((0.8, 0.0), (1.0, 0.0), (1.0, 0.3), (0.8, 0.3))
MOTION_MASK = ((0.0, 0.0), (0.4, 0.0), (0.4, 0.08), (0.0, 0.08))
# Steps of the script: the person walks for WALK steps, then is gone.
WALK = 40
PARK_AT = 12


def scene(step: int, width: int = WIDTH, height: int = HEIGHT) -> list[Detection]:
    """What the scripted detector sees at ``step``: a person walking left to right into the drive (missing
    every third step: a flickering detector), a car driving in and parking in the drive, a cat under the
    object mask, and motion under the motion mask (a clock burned into the picture)."""
    found = []
    if step < WALK and step % 3 != 2:
        x = 0.05 + 0.6 * step / WALK
        found.append(Detection("person", 0.8, _box(x, 0.55, 0.08, 0.35, width, height)))
    x = 0.5 + 0.25 * min(step, PARK_AT) / PARK_AT
    found.append(Detection("car", 0.9, _box(x, 0.7, 0.2, 0.25, width, height)))
    found.append(Detection("cat", 0.7, _box(0.85, 0.1, 0.06, 0.08, width, height)))
    found.append(Detection("motion", 0.5, _box(0.02 + 0.01 * (step % 5), 0.01, 0.2, 0.05, width, height)))
    return found


def _box(x: float, y: float, w: float, h: float, width: int, height: int) -> tuple[int, int, int, int]:
    return round(x * width), round(y * height), round(w * width), round(h * height)


class Scripted:
    """The scene as a detector plug-in (``tests.detect.test_tracking:Scripted``): each call is the next step."""

    def __init__(self) -> None:
        self.step = 0

    def __call__(self, image: np.ndarray) -> list[Detection]:
        height, width = image.shape[:2]
        found = scene(self.step, width, height)
        self.step += 1
        return found


RULES = Rules(zones=(DRIVE,), object_mask=(OBJECT_MASK,), motion_mask=(MOTION_MASK,), min_frames=3,
              lost_seconds=0.5, stationary_seconds=1.0)


def result_at(step: int, detections: list[Detection], detector: str = "tests.detect.test_tracking:Scripted",
              rate: float = 10.0) -> DetectionResult:
    frame = Frame(step, b"", 1000.0 + step / rate, WIDTH, HEIGHT)
    return DetectionResult("scene", detector, frame, detections, 1.0, frame.timestamp)


def run_script(tracking: Tracking, steps: int, rate: float = 10.0) -> list[DetectionResult]:
    return [tracking.apply(result_at(step, scene(step), rate=rate)) for step in range(steps)]


def test_a_flickering_walker_keeps_one_id_and_a_parked_car_goes_stationary():
    results = run_script(Tracking(RULES, rate=10.0), 80)
    person_ids = {d.track for r in results for d in r.detections if d.label == "person" and d.track is not None}
    car_ids = {d.track for r in results for d in r.detections if d.label == "car" and d.track is not None}
    assert len(person_ids) == 1 and len(car_ids) == 1 and person_ids != car_ids
    # min_frames: the first two sightings have no id yet.
    firsts = [next(d for d in r.detections if d.label == "car") for r in results[:3]]
    assert [d.track for d in firsts] == [None, None, *car_ids]
    # The cat (object mask) and the masked motion never come out.
    labels = {d.label for r in results for d in r.detections}
    assert labels == {"person", "car"}
    # The person entered the drive; the car is in it; the car goes stationary about a second after parking.
    assert any("drive" in d.zones for r in results for d in r.detections if d.label == "person")
    cars = [next(d for d in r.detections if d.label == "car") for r in results]
    still = [step for step, car in enumerate(cars) if car.stationary]
    assert still and still == list(range(still[0], 80)) and PARK_AT + 8 <= still[0] <= PARK_AT + 12
    # The person's track ends once, after lost_seconds, with the zones it entered; the car's never does.
    ended = [(step, end) for step, r in enumerate(results) for end in r.ended]
    assert [(end.track, end.label, end.entered) for _, end in ended] == [(*person_ids, "person", ("drive",))]
    assert WALK + 3 <= ended[0][0] <= WALK + 7
    assert results[0].as_json()["detections"][0].keys() >= {"track", "zones", "stationary"}


def test_ids_hold_at_the_detectors_own_rate():
    """At 2 detections a second the walker moves five times as far between boxes: still one id."""
    tracking = Tracking(Rules(min_frames=2, lost_seconds=2.0), rate=2.0)
    ids = set()
    for step in range(12):
        x = 0.1 + 0.05 * step
        boxes = [] if step % 3 == 2 else [Detection("person", 0.8, _box(x, 0.3, 0.15, 0.5, WIDTH, HEIGHT))]
        result = tracking.apply(result_at(step, boxes, rate=2.0))
        ids |= {d.track for d in result.detections if d.track is not None}
    assert len(ids) == 1


def test_two_people_side_by_side_are_two_tracks_and_labels_never_mix():
    tracking = Tracking(Rules(min_frames=1), rate=10.0)
    for step in range(10):
        boxes = [Detection("person", 0.8, (10 + step, 50, 30, 80)), Detection("person", 0.8, (200 - step, 50, 30, 80)),
                 Detection("dog", 0.8, (10 + step, 50, 30, 80))]
        result = tracking.apply(result_at(step, boxes))
    assert len({d.track for d in result.detections}) == 3


def test_filters_drop_low_scores_and_sizes_out_of_range():
    rules = Rules(min_frames=1, objects={"person": ObjectFilter(min_score=0.6, min_area=500, max_area=0.5)})
    tracking = Tracking(rules)
    boxes = [Detection("person", 0.5, (0, 0, 50, 50)),  # score too low
             Detection("person", 0.9, (100, 0, 10, 10)),  # 100 px: too small
             Detection("person", 0.9, (0, 0, 300, 230)),  # more than half the picture
             Detection("person", 0.9, (200, 100, 40, 60)),  # counts
             Detection("car", 0.1, (0, 0, 10, 10))]  # no filter for cars
    result = tracking.apply(result_at(0, boxes))
    assert [(d.label, d.box) for d in result.detections] == [("person", (200, 100, 40, 60)), ("car", (0, 0, 10, 10))]
    assert tracking.dropped == 3


def test_a_zone_counts_after_its_min_seconds_and_only_for_its_objects():
    zone = Zone("porch", ((0, 0), (WIDTH, 0), (WIDTH, HEIGHT), (0, HEIGHT)), frozenset({"person"}), 0.5)
    tracking = Tracking(Rules(zones=(zone,), min_frames=1))
    zones = []
    for step in range(10):
        result = tracking.apply(result_at(step, [Detection("person", 0.9, (10, 10, 30, 60)),
                                                 Detection("car", 0.9, (100, 100, 60, 40))]))
        zones.append([d.zones for d in result.detections])
    assert zones[0] == [(), ()] and zones[4] == [(), ()]
    assert zones[5] == [("porch",), ()] and zones[9] == [("porch",), ()]


def test_a_motion_only_detector_is_not_tracked_for_events():
    tracking = Tracking(RULES)
    result = tracking.apply(result_at(0, scene(0), detector="motion?sensitivity=0.5"))
    assert result.tracked is False
    assert tracking.apply(result_at(1, scene(1))).tracked is True


@pytest.mark.slow
def test_through_a_detector_worker_and_a_recorder_one_event_per_object(tmp_path):
    """The scripted plug-in in a real worker process on a real camera, tracked, into a real recorder: one
    person event that lists the drive, one car event that does not come back while it is parked, nothing for
    the masked cat or the masked motion, and one clip for the two objects' time together."""
    camera = SceneCamera(rate=20, size=(WIDTH, HEIGHT))
    storage = Storage(tmp_path / "store")
    retention = Retention(storage, Limits(retain_days=None, min_free=0))
    recorder = Recorder(camera, storage, retention, RecordSettings(pre_capture=0.5, post_capture=0.5, event_gap=5.0),
                        detector="tests.detect.test_tracking:Scripted")
    detection = CameraDetection(camera, parse_spec("tests.detect.test_tracking:Scripted"), fps=10)
    # Lost after 2 s: the script's flicker (a step in three missing) stays one track down to 1 detection a second.
    rules = Rules(zones=(DRIVE,), object_mask=(OBJECT_MASK,), motion_mask=(MOTION_MASK,), lost_seconds=2.0,
                  stationary_seconds=1.0)
    tracking = track_camera(detection, rules, recorder)
    detection.add_result_listener(recorder.take_result)
    seen: list[DetectionResult] = []
    detection.add_result_listener(seen.append)
    camera.start()
    recorder.start()
    detection.start()
    try:
        assert detection.wait_ready() is None
        assert wait_until(lambda: detection.status()["results"] >= WALK + 10, 60)
        # The walker is gone: its track ends lost_seconds later, and its event with it.
        assert wait_until(lambda: len(storage.index.events()) >= 2 and not recorder.objects.open, 30)
    finally:
        detection.stop()
        recorder.stop()
        camera.stop()
    events = eventinfo.with_objects(storage.index, storage.index.events())
    clips = storage.index.segments(kind="clip")
    storage.close()
    # The car's event and the person's overlap: one clip, from the first to open until the last one ends.
    assert len(clips) == 1 and clips[0].start <= min(e.start for e in events)
    assert clips[0].end >= max(e.end for e in events) - 0.2
    shown = sorted((e.extra["label"], tuple(e.extra["zones"]), e.end is not None) for e in events)
    assert shown == [("car", ("drive",), True), ("person", ("drive",), True)], shown
    # Ids stable over the flicker: one person track, one car track, as the events say.
    people = {d.track for r in seen for d in r.detections if d.label == "person" and d.track is not None}
    cars = {d.track for r in seen for d in r.detections if d.label == "car" and d.track is not None}
    assert len(people) == 1 and len(cars) == 1
    assert {e.extra["track"] for e in events} == people | cars
    assert all(d.label in ("person", "car") for r in seen for d in r.detections)
    assert tracking.tracks() and all(t["stationary"] for t in tracking.tracks() if t["label"] == "car")


def _wired() -> bool:
    """Whether the app puts each camera's tracking in front of its results (webapp/config/plan.py's
    CameraPlan.rules, used by webapp/runtime/lineup.py)."""
    from webapp.config.plan import CameraPlan
    return "rules" in CameraPlan.__dataclass_fields__


def _settings(tmp_path, scene: SceneCamera, detector: str) -> dict:
    """The scene's camera as the app is given it: its detector, events, and the zone and masks as a file's
    [cameras.scene] would give them."""
    return {"CAMERAS": {"scene": scene}, "DETECT": {"scene": detector}, "DETECT_FPS": 10,
            "RECORD": {"scene": "events"}, "STORAGE": str(tmp_path / "store"), "MIN_FREE": 0, "PRE_CAPTURE": 0.5,
            "POST_CAPTURE": 0.5, "ZONES": {"drive": {"coordinates": [list(point) for point in DRIVE.polygon]}},
            "OBJECT_MASK": [[list(point) for point in OBJECT_MASK]],
            "MOTION_MASK": [[list(point) for point in MOTION_MASK]], "LOST_SECONDS": 2.0, "STATIONARY_SECONDS": 1.0}


def _one_event_per_object(url: str) -> None:
    """What the app shows once the script ran: tracked boxes in the newest result, one event per object with
    its track, label and zones, and ``?zone=`` filtering them."""
    from tests.helpers import get, get_json

    assert wait_until(lambda: get_json(f"{url}/api/cameras/scene")[1]["detection"]["results"] >= WALK + 10, 60)
    _, latest = get_json(f"{url}/api/cameras/scene/detections")
    car = next(d for d in latest["detections"] if d["label"] == "car")
    assert car["track"] is not None and car["zones"] == ["drive"] and car["stationary"] is True
    assert {d["label"] for d in latest["detections"]} == {"car"}  # the cat and the clock are masked

    def ended() -> list:
        events = get_json(f"{url}/api/events")[1]["events"]
        return events if len(events) >= 2 and all(e["end"] is not None for e in events) else []
    assert wait_until(ended, 30)
    events = ended()
    assert sorted((e["label"], e["zones"]) for e in events) == [("car", ["drive"]), ("person", ["drive"])]
    assert all(isinstance(e["track"], int) for e in events) and len({e["track"] for e in events}) == 2
    assert len(get_json(f"{url}/api/events?zone=drive")[1]["events"]) == 2
    assert get_json(f"{url}/api/events?zone=porch")[1]["events"] == []
    assert [e["label"] for e in get_json(f"{url}/api/events?zone=drive&label=person")[1]["events"]] == ["person"]
    assert get_json(f"{url}/api/events?zone=" + "x" * 101)[0] == 400
    # One clip for both, and each event's clip is its span of it.
    for event in events:
        status, _, body = get(f"{url}/api/events/{event['id']}/clip.mp4")
        assert status == 200 and body[4:8] == b"ftyp", (event, status, body[:200])


@pytest.mark.slow
@pytest.mark.skipif(not _wired(), reason="the app does not track cameras yet (CameraPlan has no rules)")
def test_the_app_lists_one_event_per_object_with_its_zones(tmp_path):
    """The same scene through the app: events listed with track, label and zones, ``?zone=`` filtering them,
    tracked boxes in /api/cameras/NAME/detections."""
    from tests.conftest import Servers
    from webapp import create_app

    app = create_app(_settings(tmp_path, SceneCamera(rate=20, size=(WIDTH, HEIGHT)),
                               "tests.detect.test_tracking:Scripted"))
    with Servers() as servers:
        _one_event_per_object(servers.start(app))


@pytest.mark.slow
@pytest.mark.skipif(not _wired(), reason="the app does not track cameras yet (CameraPlan has no rules)")
def test_the_same_through_a_remote_worker(tmp_path):
    """The scripted plug-in in a `camstream worker` behind a real nats-server: the same events."""
    remote = pytest.importorskip("tests.remote.test_workers")
    from tests.conftest import Servers
    from webapp import create_app

    broker = remote.NatsServer()
    worker = None
    try:
        worker = remote.Worker(broker.url, "scripted", "tests.detect.test_tracking:Scripted")
        settings = _settings(tmp_path, SceneCamera(rate=20, size=(WIDTH, HEIGHT)), "remote:scripted")
        # One frame out at a time: the script's steps come back in the order of the frames.
        app = create_app({**settings, "BROKER": broker.url, "REMOTE_IN_FLIGHT": 1})
        with Servers() as servers:
            _one_event_per_object(servers.start(app))
    finally:
        if worker is not None:
            worker.kill()
        broker.stop()


# -- poses -------------------------------------------------------------


def pose_candidate(cx: float, cy: float, w: float, h: float, score: float) -> list[float]:
    """A pose model's column: a box, one class score (person), and 17 keypoints (x, y, visibility) standing
    in the box: the head at the top, the ankles at the bottom; the left ear is not visible."""
    column = [cx, cy, w, h, score]
    for index in range(17):
        x = cx - w / 4 if index % 2 else cx + w / 4
        y = cy - h / 2 + h * index / 16
        column += [x, y, 0.1 if index == 3 else 0.9]
    return column


def pose_model(path) -> str:
    from tests.models import yolo_model
    return str(yolo_model(path, [pose_candidate(320, 300, 100, 300, 0.9)], classes=1 + 17 * 3,
                          metadata={"kpt_shape": "[17, 3]", "names": "{0: 'person'}", "task": "pose"}))


def test_a_pose_model_gives_each_person_17_keypoints_in_frame_pixels_and_draws_the_skeleton(tmp_path):
    from camera import jpeg
    from camera.detect.pose import PoseDetector, make_yolo
    from camera.detect.yolo import YoloDetector
    from tests.models import candidate, yolo_model

    detector = make_yolo(pose_model(tmp_path / "pose.onnx"), confidence=0.5)
    assert isinstance(detector, PoseDetector) and detector.names == ["person"] and detector.keypoints == (17, 3)
    # A 640x480 frame is letterboxed into the 640x640 input with 80 pixels of grey above: keypoints lose them.
    image = np.full((480, 640, 3), 40, np.uint8)
    [person] = detector(image)
    assert person.label == "person" and person.box == (270, 70, 100, 300)
    points = person.extra["keypoints"]
    assert len(points) == 17 and points[0] == [345.0, 70.0, 0.9] and points[16] == [345.0, 370.0, 0.9]
    assert points[3][2] == 0.1
    plain = make_yolo(str(yolo_model(tmp_path / "plain.onnx", [candidate(320, 320, 50, 50, {0: 0.9}, 80)], 80)))
    assert type(plain) is YoloDetector
    # Tracked like any box, the keypoints go along; the overlay draws the skeleton (white) between them.
    frame = Frame(1, jpeg.encode(image, 95), 1000.0, 640, 480)
    result = Tracking(Rules(min_frames=1)).apply(DetectionResult("scene", "yolo:pose.onnx", frame, [person], 1.0,
                                                                 1000.0))
    assert result.as_json()["detections"][0]["extra"]["keypoints"] == points
    drawn = jpeg.decode(result.overlay_jpeg(95))
    # Between the shoulders (5 and 6): a white line across the box's middle, where the plain frame is dark.
    x5, y5, _ = points[5]
    x6, y6, _ = points[6]
    middle = drawn[round((y5 + y6) / 2), round((x5 + x6) / 2)]
    assert middle.min() > 200, middle


def test_a_pose_model_without_room_for_its_keypoints_is_refused(tmp_path):
    from camera.detect.errors import DetectorLoadError
    from camera.detect.pose import make_yolo
    from tests.models import candidate, yolo_model

    path = yolo_model(tmp_path / "small.onnx", [candidate(320, 320, 50, 50, {0: 0.9}, 20)], 20,
                      metadata={"kpt_shape": "[17, 3]"})
    with pytest.raises(DetectorLoadError, match="no room for a box, a class and 17x3 keypoints"):
        make_yolo(str(path))


@pytest.mark.slow
def test_the_tracking_bench_writes_its_section(tmp_path):
    """bench/tracking.py still works: a short run writes its section (the numbers are the bench's business)."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    out = tmp_path / "benchmarks.md"
    subprocess.run([sys.executable, str(root / "bench" / "tracking.py"), "--boxes", "20", "--results", "20",
                    "--seconds", "1", "--out", str(out)], check=True, timeout=120, capture_output=True)
    text = out.read_text()
    assert "<!-- begin tracking -->" in text and "| 20 boxes |" in text and "frames in 1 s" in text
