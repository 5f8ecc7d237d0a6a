"""A camera's detector in its worker process: plugins, rates, failures, hangs and crashes."""

import itertools
import logging

import pytest

from camera.detect import CameraDetection, DetectorError, FrameError, parse_spec
from camera.detect.detection import Detection, DetectionError, as_detection
from tests.detectors import MARKER, find_squares
from tests.helpers import decode, wait_until
from tests.sources import SceneCamera


@pytest.fixture
def running():
    """Start a CameraDetection on a camera; everything started is stopped afterwards."""
    started = []

    def start(spec: str, camera=None, **options) -> CameraDetection:
        camera = camera or SceneCamera()
        detection = CameraDetection(camera, parse_spec(spec), **options)
        started.append(detection)
        detection.start()
        reason = detection.wait_ready()
        assert reason is None, reason
        return detection

    yield start
    for detection in started:
        detection.stop()
        detection.camera.stop()


def results_of(detection: CameraDetection, count: int, timeout: float = 20.0) -> list:
    """The next ``count`` distinct results, in order."""
    seen = []

    def more() -> bool:
        latest = detection.latest
        if latest is not None and (not seen or latest.frame.seq > seen[-1].frame.seq):
            seen.append(latest)
        return len(seen) >= count

    assert wait_until(more, timeout, interval=0.01), f"only {len(seen)} results: {detection.status()}"
    return seen


def test_a_plugin_function_finds_the_square_in_the_frame_it_was_given(running):
    detection = running("tests.detectors:find_squares", fps=10)
    with detection.camera.subscribe():
        results = results_of(detection, 5)
    for result in results:
        truth = find_squares(decode(result.frame.jpeg))
        assert len(truth) == 1
        assert [d.box for d in result.detections] == [tuple(truth[0]["box"])]
        assert result.detections[0].label == "square" and result.detections[0].extra == truth[0]["extra"]
        assert result.camera == "scene" and result.detector == "tests.detectors:find_squares"
    assert detection.status()["state"] == "running"


def test_a_plugin_class_is_made_once_and_called_per_frame(running):
    detection = running("tests.detectors:SquareFinder", fps=10)
    with detection.camera.subscribe():
        results = results_of(detection, 4)
    counts = [result.detections[0].extra["frame"] for result in results]
    assert counts == sorted(counts) and len(set(counts)) == 4, counts


def test_the_detector_runs_at_most_at_the_detection_rate(running):
    detection = running("tests.detectors:find_squares", fps=5)
    with detection.camera.subscribe():
        results = results_of(detection, 6)
    # 5 detections a second, by the frames' capture times (a quarter interval of slack); counted in frames it
    # depends on how many a busy machine's camera managed, so it is not.
    gaps = [b.frame.seq - a.frame.seq for a, b in itertools.pairwise(results)]
    assert min(gaps) >= 1, gaps
    spacing = [b.frame.timestamp - a.frame.timestamp for a, b in itertools.pairwise(results)]
    assert min(spacing) >= 0.15, spacing


def test_frames_that_come_while_the_detector_is_busy_are_skipped_not_queued(running):
    detection = running("tests.detectors:slow_squares", fps=30)
    with detection.camera.subscribe():
        results = results_of(detection, 4)
    # Each run takes 0.3 s: nine or so frames go by, and the next run takes the newest.
    gaps = [b.frame.seq - a.frame.seq for a, b in itertools.pairwise(results)]
    assert min(gaps) >= 5, gaps


def test_a_detector_keeps_its_camera_running_without_viewers_until_it_stops(running):
    camera = SceneCamera(idle_timeout=0.3)
    detection = running("tests.detectors:find_squares", camera=camera, fps=10)
    results_of(detection, 3)
    assert camera.state == "streaming" and camera.status()["viewers"] == 0, "a detector is no viewer"
    with camera.subscribe():
        pass
    done = detection.status()["results"]
    assert wait_until(lambda: detection.status()["results"] >= done + 3, 10), "still detecting after the viewer left"
    assert camera.state == "streaming"
    detection.stop()
    assert wait_until(lambda: camera.state == "idle", 10), "a stopped detector lets its camera go idle"


def test_a_detector_that_raises_is_logged_once_and_the_camera_streams_on(running, caplog):
    caplog.set_level(logging.DEBUG, logger="camstream.detect")
    detection = running("tests.detectors:raising", fps=10)
    with detection.camera.subscribe() as viewer:
        assert wait_until(lambda: detection.status()["errors"] >= 4, 20), detection.status()
        status = detection.status()
        assert status["state"] == "error" and status["last_error"] == "RuntimeError: the model is on fire"
        assert status["results"] == 0
        frame = viewer.next_frame(5)
        assert frame is not None and frame.live
        with pytest.raises(FrameError, match="on fire"):
            detection.detect(frame, timeout=10)
        seqs = [viewer.next_frame(5).seq for _ in range(10)]
        assert seqs == sorted(seqs) and len(set(seqs)) == 10, "the camera keeps streaming"
    failures = [r for r in caplog.records if "failed on a frame:" in r.getMessage()]
    assert len(failures) == 1 and failures[0].levelno == logging.ERROR
    assert "Traceback" in failures[0].getMessage() and "raising" in failures[0].getMessage()


def test_a_detector_returning_nonsense_is_an_error_on_that_frame(running):
    detection = running("tests.detectors:broken_output", fps=10)
    with detection.camera.subscribe():
        assert wait_until(lambda: detection.status()["errors"] >= 1, 20), detection.status()
    assert "score must be from 0 to 1" in detection.status()["last_error"]


@pytest.mark.parametrize("spec, what", [
    ("tests.detectors:hang_once", "the detector took longer than 1 s"),
    ("tests.detectors:crash_once", "the detector process died (exit status 3)"),
])
def test_a_worker_that_hangs_or_dies_is_restarted_while_the_camera_streams(running, tmp_path, monkeypatch,
                                                                             spec, what):
    monkeypatch.setenv(MARKER, str(tmp_path / "marker"))
    detection = running(spec, fps=10, timeout=1.0)
    with detection.camera.subscribe() as viewer:
        assert wait_until(lambda: (tmp_path / "marker").exists(), 20), "the detector never got a frame"
        first = viewer.next_frame(5).seq
        assert wait_until(lambda: detection.status()["restarts"] == 1, 20), detection.status()
        assert detection.status()["last_error"] == what
        results = results_of(detection, 2)
        assert results[0].detections and results[0].detections[0].label == "square"
        assert detection.status()["state"] == "running" and detection.status()["restarts"] == 1
        # The camera never waited for the detector: frames went on through the hang or crash.
        assert viewer.next_frame(5).seq - first >= 20


@pytest.mark.parametrize("spec, reason", [
    ("tests.detectors:NOT_CALLABLE", "tests.detectors:NOT_CALLABLE is not callable"),
    ("tests.detectors:FailsToLoad", "tests.detectors:FailsToLoad() failed: OSError: no such camera model"),
    ("tests.detectors:nothing_here", "module tests.detectors has no nothing_here"),
    ("tests.no_such_module:detect", "cannot import tests.no_such_module: ModuleNotFoundError"),
])
def test_a_plugin_that_cannot_load_says_why(spec, reason):
    detection = CameraDetection(SceneCamera(), parse_spec(spec))
    detection.start()
    try:
        assert reason in (detection.wait_ready() or "")
    finally:
        detection.stop()


def test_a_failed_detector_refuses_requests_with_its_reason():
    camera = SceneCamera()
    detection = CameraDetection(camera, parse_spec("yolo:/no/such/model.onnx"))
    detection.start()
    reason = detection.wait_ready()
    assert reason == "no model file /no/such/model.onnx"
    detection.fail(reason)
    assert detection.status()["state"] == "failed" and detection.status()["last_error"] == reason
    try:
        with pytest.raises(DetectorError, match="no model file"):
            detection.detect(camera.snapshot(5), timeout=5)
    finally:
        detection.stop()
        camera.stop()


def test_plugin_output_is_checked_and_clipped():
    assert as_detection({"label": "cat", "score": 0.5, "box": [-5.4, 10.6, 20, 20]}, 100, 100) == \
        Detection("cat", 0.5, (0, 11, 15, 20))
    assert as_detection(Detection("dog", 1, (90, 90, 50, 50)), 100, 100).box == (90, 90, 10, 10)
    for item, message in (
        ({"label": "x", "box": [0, 0, 1, 1]}, "needs score"),
        ({"label": "x", "score": float("nan"), "box": [0, 0, 1, 1]}, "from 0 to 1"),
        ({"label": "x", "score": 0.5, "box": [0, 0, 1]}, r"must be \[x, y, w, h\]"),
        ({"label": "x", "score": 0.5, "box": [0, 0, -1, 1]}, "w, h >= 0"),
        ({"label": "x", "score": 0.5, "box": [0, 0, 1, 1], "extra": [1]}, "extra must be a mapping"),
        ("person", "not str"),
    ):
        with pytest.raises(DetectionError, match=message):
            as_detection(item, 100, 100)


def test_motion_gated_detection_runs_only_while_something_moves(running):
    camera = SceneCamera()
    detection = running("motion+tests.detectors:find_squares", camera=camera, fps=10)
    results = results_of(detection, 3)
    assert results[-1].detections and results[-1].detections[0].label == "square"
    assert detection.status()["gated"] <= 1
    camera.moving.clear()
    # Two seconds of hold-over after the square stops, then the gate shuts.
    assert wait_until(lambda: detection.status()["gated"] >= 5, 20), detection.status()
    assert detection.latest.detections == [], "gated frames report nothing"
    camera.moving.set()
    gated = detection.status()["gated"]
    assert wait_until(lambda: bool(detection.latest.detections), 20), "moving again opens the gate"
    assert detection.status()["gated"] - gated <= 2
