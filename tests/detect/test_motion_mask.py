"""The motion mask inside the detector's worker (motion there neither makes a box nor opens a motion gate, so
the model does not run for a clock burned into the picture), and an event's object row going with its event
(retention and DELETE alike)."""

from __future__ import annotations

import sqlite3

import numpy as np

from camera.detect import parse_spec
from camera.detect.build import MotionGate, build_detector
from camera.detect.motion import MotionDetector
from camera.record import Limits, Retention, Storage, delete_event
from camera.track import eventinfo
from tests.helpers import get_json, wait_until
from tests.sources import SceneCamera

# The band the SceneCamera's square moves along (y 100-140 of 240), as fractions and in pixels.
BAND = ((0.0, 0.35), (1.0, 0.35), (1.0, 0.65), (0.0, 0.65))


def frames_with_a_square(count: int, y: int) -> list[np.ndarray]:
    """A grey picture, 320x240, with a white square 30 pixels a side stepping right 8 pixels a frame at ``y``."""
    pictures = []
    for index in range(count):
        picture = np.full((240, 320, 3), 90, np.uint8)
        x = 20 + 8 * index
        picture[y:y + 30, x:x + 30] = 250
        pictures.append(picture)
    return pictures


def test_the_motion_detector_sees_nothing_under_its_mask_and_the_rest_as_before():
    for y, masked in ((110, True), (20, False)):
        motion = MotionDetector()
        motion.set_mask([BAND])
        found = [motion(picture) for picture in frames_with_a_square(8, y)]
        boxes = [box for step in found for box in step]
        if masked:
            assert boxes == [], f"motion inside the mask: {boxes}"
        else:
            assert len([step for step in found if step]) >= 5, "motion outside the mask is seen"
    # A mask cleared: seen again.
    motion = MotionDetector()
    motion.set_mask([BAND])
    motion.set_mask([])
    assert any(motion(picture) for picture in frames_with_a_square(8, 110))


def test_a_motion_gate_stays_shut_for_motion_under_the_mask():
    calls = []
    gate = MotionGate(lambda image: calls.append(1) or [])
    gate.motion.set_mask([BAND])
    for picture in frames_with_a_square(10, 110):
        gate(picture)
    assert calls == [] and gate.gated == 10
    # Built from its spec, the detector passes the mask to its gate (what the worker calls).
    detector = build_detector(parse_spec("motion+tests.detectors:find_squares"))
    detector.set_motion_mask([BAND])
    assert detector.detect.motion.mask == (BAND,)
    build_detector(parse_spec("tests.detectors:find_squares")).set_motion_mask([BAND])  # no motion: nothing to do


def test_the_cameras_motion_mask_reaches_its_workers_gate(serve_app):
    """A scene whose only motion is under the mask: the gate never opens, the model never runs; without the
    mask the same scene's square is found."""
    site = serve_app({"CAMERAS": {"masked": SceneCamera("masked")},
                      "DETECT": {"masked": "motion+tests.detectors:find_squares"},
                      "DETECT_FPS": 10, "MOTION_MASK": [[[0, 80], [320, 80], [320, 160], [0, 160]]]})
    status = lambda name: get_json(f"{site}/api/cameras/{name}")[1]["detection"]
    assert wait_until(lambda: status("masked")["gated"] >= 20, 30), status("masked")
    result = get_json(f"{site}/api/cameras/masked/detections")[1]
    assert result["detections"] == [] and status("masked")["results"] >= 20


def test_without_the_mask_the_gate_opens_for_the_square(serve_app):
    site = serve_app({"CAMERAS": {"open": SceneCamera("open")},
                      "DETECT": {"open": "motion+tests.detectors:find_squares"}, "DETECT_FPS": 10,
                      "MOTION_MASK": [[[0, 0], [320, 0], [320, 30], [0, 30]]]})  # a mask elsewhere
    assert wait_until(lambda: any(d["label"] == "square" for d in
                                  get_json(f"{site}/api/cameras/open/detections")[1].get("detections", [])), 30)


# -- an event's object goes with it ----------------------------------------------------------------------


def test_an_events_object_row_goes_with_its_event_by_retention_or_delete(tmp_path):
    storage = Storage(tmp_path / "store")
    index = storage.index
    try:
        first = index.add_event("door", 1.0, "yolo:m.onnx", 1.0, 1.0)
        second = index.add_event("door", 2.0, "yolo:m.onnx", 1.0, 1.0)
        eventinfo.save(index, first, 1, "person", ["drive"])
        eventinfo.save(index, second, 2, "car", [])
        # DELETE /api/events/<id> and retention both come down to delete_event.
        assert delete_event(storage, second)
        assert eventinfo.objects(index, [first, second]) == {first: {"track": 1, "label": "person",
                                                                     "zones": ["drive"]}}
        # SQLite gives the freed highest id to the next event: a motion event must not inherit the car.
        again = index.add_event("door", 3.0, "motion", 1.0, 1.0)
        assert again == second and eventinfo.objects(index, [again]) == {}
        Retention(storage, Limits(retain_days=None, min_free=0)).delete("event", first)
        assert eventinfo.objects(index, [first]) == {} and eventinfo.in_zone(index, "drive") == []
    finally:
        storage.close()


def test_rows_an_older_index_left_behind_are_cleared(tmp_path):
    storage = Storage(tmp_path / "store")
    kept = storage.index.add_event("door", 1.0, "yolo:m.onnx", 1.0, 1.0)
    storage.close()
    # An index from before the trigger: an object row whose event is gone.
    db = sqlite3.connect(storage.index.path)
    with db:
        db.execute("CREATE TABLE event_objects (event_id INTEGER PRIMARY KEY, track INTEGER NOT NULL, "
                   "label TEXT NOT NULL, zones TEXT NOT NULL DEFAULT '[]')")
        db.execute("INSERT INTO event_objects VALUES (?, 1, 'person', '[]'), (99, 2, 'car', '[]')", (kept,))
    db.close()
    storage = Storage(tmp_path / "store")
    try:
        assert eventinfo.objects(storage.index, [kept, 99]) == {kept: {"track": 1, "label": "person", "zones": []}}
        rows = storage.index._query("SELECT event_id FROM event_objects")
        assert [row["event_id"] for row in rows] == [kept]
    finally:
        storage.close()
