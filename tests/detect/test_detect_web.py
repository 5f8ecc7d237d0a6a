"""Detection over real HTTP: run now, the newest result, the overlay picture, status, errors, settings."""

import json
import re
import sys

import numpy as np
import pytest

import camera.detect.result
from camera import PatternCamera
from camera.detect.overlay import colour_of
from tests.config.test_cli import Running, env, run_cli
from tests.helpers import decode, free_port, get, get_json, wait_until
from tests.models import classifier_model
from tests.sources import SceneCamera, SilentCamera
from webapp import create_app
from webapp.config.values import ConfigError

RESULT_KEYS = {"camera", "detector", "seq", "timestamp", "finished", "width", "height", "inference_ms", "detections"}


@pytest.fixture
def site(serve_app):
    cameras = {"scene": SceneCamera(), "plain": PatternCamera("plain", fps=10, width=320),
               "silent": SilentCamera()}
    return serve_app({"CAMERAS": cameras, "DETECT": {"scene": "tests.detectors:find_squares",
                                                     "silent": "tests.detectors:find_squares"}})


def post(url: str):
    status, headers, body = get(url, method="POST")
    assert headers["Content-Type"] == "application/json"
    return status, json.loads(body)


def assert_square(detection: dict) -> None:
    _x, y, w, h = detection["box"]
    assert detection["label"] == "square" and abs(y - 100) <= 2 and abs(w - 40) <= 2 and abs(h - 40) <= 2


def test_post_detect_starts_an_idle_camera_and_answers_the_result(site):
    status, body = post(f"{site}/api/cameras/scene/detect")
    assert status == 200, body
    assert set(body) == RESULT_KEYS
    assert body["camera"] == "scene" and body["detector"] == "tests.detectors:find_squares"
    assert (body["width"], body["height"]) == (320, 240) and body["seq"] >= 1
    assert body["finished"] >= body["timestamp"] and body["inference_ms"] >= 0
    assert len(body["detections"]) == 1
    assert_square(body["detections"][0])
    assert set(body["detections"][0]) == {"label", "score", "box", "extra", "track", "zones", "stationary"}
    status, newest = get_json(f"{site}/api/cameras/scene/detections")
    assert status == 200 and set(newest) == RESULT_KEYS and newest["seq"] >= body["seq"]


def test_the_overlay_is_the_result_frame_with_its_boxes_drawn_once(site, monkeypatch):
    drawn = []
    original = camera.detect.result.draw_detections
    monkeypatch.setattr(camera.detect.result, "draw_detections",
                        lambda image, detections: drawn.append(1) or original(image, detections))
    _, body = post(f"{site}/api/cameras/scene/detect")
    url = f"{site}/snapshot/scene.jpg?overlay=1&seq={body['seq']}"
    answers = [get(url) for _ in range(3)]
    assert all(status == 200 and headers["Content-Type"] == "image/jpeg" for status, headers, _ in answers)
    assert answers[0][1]["X-Seq"] == str(body["seq"])
    assert len({data for _, _, data in answers}) == 1 and len(drawn) == 1, "drawn once per result"
    image = decode(answers[0][2])
    x, y, w, h = body["detections"][0]["box"]
    edge = image[y, x + w // 2].astype(int)
    assert np.abs(edge - colour_of("square")).max() < 60, f"no box edge at the top of the square: {edge}"
    inside = image[y + h // 2, x + w // 2].astype(int)
    assert inside[2] > 150 and inside[1] < 80, "the square itself is still red inside its box"
    status, headers, _newest = get(f"{site}/snapshot/scene.jpg?overlay=1")
    assert status == 200 and int(headers["X-Seq"]) >= body["seq"]


def test_status_has_a_detection_block(site):
    post(f"{site}/api/cameras/scene/detect")
    _, body = get_json(f"{site}/api/cameras")
    blocks = {camera["name"]: camera["detection"] for camera in body["cameras"]}
    assert blocks["plain"] is None
    scene = blocks["scene"]
    assert scene["detector"] == "tests.detectors:find_squares" and scene["state"] == "running"
    assert scene["results"] >= 1 and scene["inference_ms"] is not None and scene["last_error"] is None
    assert set(scene) >= {"detector", "state", "results_per_second", "inference_ms", "last_error"}
    _, one = get_json(f"{site}/api/cameras/scene")
    assert one["detection"]["detector"] == "tests.detectors:find_squares"


@pytest.mark.parametrize("method, path, status, message", [
    ("POST", "/api/cameras/plain/detect", 404, "camera 'plain' has no detector; start camstream with --detect"),
    ("GET", "/api/cameras/plain/detections", 404, "has no detector"),
    ("GET", "/snapshot/plain.jpg?overlay=1", 404, "has no detector"),
    ("POST", "/api/cameras/nope/detect", 404, "no camera named 'nope'"),
    ("GET", "/api/cameras/scene/detect", 405, ""),
    ("GET", "/snapshot/scene.jpg?overlay=maybe", 400, "overlay must be 1 or 0, not 'maybe'"),
    ("GET", "/snapshot/scene.jpg?overlay=1&seq=abc", 400, "seq must be a frame number"),
    ("GET", "/snapshot/scene.jpg?overlay=1&seq=99999999", 404, "is kept any more"),
    ("GET", "/api/cameras/silent/detections", 404, "has no detection result yet"),
    ("POST", "/api/cameras/scene/detect?timeout=forever", 400, "timeout must be a number"),
])
def test_bad_detection_requests_get_json_errors(site, method, path, status, message):
    got, headers, body = get(site + path, method=method)
    assert got == status and headers["Content-Type"] == "application/json"
    assert message in body.decode()


def test_no_live_frame_is_a_503_never_a_stale_result(site, serve_app):
    status, body = post(f"{site}/api/cameras/silent/detect?timeout=0.5")
    # Held by its detector, the silent camera may already count as lost (after 5 s without a frame).
    assert status == 503 and re.match(r"camera 'silent' (gave no frame within 0.5 s|has no signal)", body["error"])
    gone = serve_app({"CAMERAS": {"door": f"http://127.0.0.1:{free_port()}/cam"},
                      "DETECT": "door=tests.detectors:find_squares"})
    status, body = post(f"{gone}/api/cameras/door/detect?timeout=2")
    assert status == 503 and body["error"].startswith("camera 'door' ")


def test_a_detector_that_cannot_load_shows_failed_and_the_camera_serves(serve_app, tmp_path):
    model = classifier_model(tmp_path / "classifier.onnx")
    base = serve_app({"CAMERAS": {"cam": PatternCamera("cam", fps=10, width=320)}, "DETECT": f"yolo:{model}"})
    _, status = get_json(f"{base}/api/cameras/cam")
    assert status["detection"]["state"] == "failed"
    assert "is not a YOLO detection model" in status["detection"]["last_error"]
    code, body = post(f"{base}/api/cameras/cam/detect")
    assert code == 503 and "cannot run" in body["error"] and "not a YOLO detection model" in body["error"]
    code, _, data = get(f"{base}/snapshot/cam.jpg")
    assert code == 200 and decode(data).shape == (240, 320, 3)


def test_a_detector_that_raises_answers_503_with_the_reason(serve_app):
    base = serve_app({"CAMERAS": {"cam": SceneCamera("cam")}, "DETECT": "cam=tests.detectors:raising"})
    code, body = post(f"{base}/api/cameras/cam/detect")
    assert code == 503 and "RuntimeError: the model is on fire" in body["error"]
    _, status = get_json(f"{base}/api/cameras/cam")
    assert status["detection"]["state"] == "error" and status["state"] == "streaming"


def test_the_environment_and_the_class_filter(serve_app, monkeypatch):
    monkeypatch.setenv("CAMSTREAM_DETECT", "scene=tests.detectors:find_squares")
    monkeypatch.setenv("CAMSTREAM_DETECT_CLASSES", "cat,dog")
    base = serve_app({"CAMERAS": {"scene": SceneCamera()}})
    code, body = post(f"{base}/api/cameras/scene/detect")
    assert code == 200 and body["detections"] == [], "squares are not cats or dogs"
    monkeypatch.setenv("CAMSTREAM_DETECT_CLASSES", "square")
    base = serve_app({"CAMERAS": {"scene": SceneCamera()}})
    code, body = post(f"{base}/api/cameras/scene/detect")
    assert code == 200 and [d["label"] for d in body["detections"]] == ["square"]


@pytest.mark.parametrize("config, message", [
    ({"DETECT": "motion"}, "detector 'motion' names no camera; with several cameras write NAME=SPEC"),
    ({"DETECT": "yard=motion"}, "a detector is given for camera 'yard', but there is no camera of that name"),
    ({"DETECT": ["a=motion", "a=motion"]}, "camera 'a' is given two detectors"),
    ({"DETECT": "a=haar"}, ("camera 'a': unknown detector 'haar': use motion, yolo:PATH.onnx or MODULE:ATTR "
                              "(with ?name=value options), motion+ one of the last two, or remote:GROUP")),
    ({"DETECT": "a=motion", "DETECT_CONFIDENCE": 2}, "DETECT_CONFIDENCE must be a number from 0 to 1, not 2"),
    ({"DETECT": "a=motion", "DETECT_FPS": 0}, "DETECT_FPS must be a number from 0.1 to 240, not 0"),
])
def test_wrong_detection_settings_are_one_clear_error(config, message):
    with pytest.raises(ConfigError) as caught:
        create_app({"CAMERAS": {"a": PatternCamera("a"), "b": PatternCamera("b")}, **config})
    assert str(caught.value) == message


def test_the_command_line_refuses_a_missing_or_wrong_model_with_one_line(tmp_path):
    result = run_cli("--port", "0", "--source", "pattern", "--detect", "yolo:/no/such/model.onnx")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "camstream: error: detector 'yolo:/no/such/model.onnx' of camera 'default': no model file /no/such/model.onnx"]
    model = classifier_model(tmp_path / "classifier.onnx")
    result = run_cli("--port", "0", "--source", "pattern", "--detect", f"default=yolo:{model}")
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1
    assert "is not a YOLO detection model: its output is (1, 1000)" in result.stderr


def test_the_command_line_runs_motion_detection():
    server = Running([sys.executable, "-m", "webapp", "--port", "0", "--source", "pattern",
                      "--detect", "motion", "--detect-fps", "10"], env())
    try:
        base = "http://127.0.0.1:" + server.wait_for_line(r"open http://localhost:(\d+)/").group(1)
        code, body = post(f"{base}/api/cameras/default/detect")
        assert code == 200 and body["detector"] == "motion"
        # The pattern's ball moves: once motion has a background to compare with (its first run
        # only makes one), the results show it.
        assert wait_until(lambda: any(d["label"] == "motion" for d in
                                      get_json(f"{base}/api/cameras/default/detections")[1]["detections"]), 20)
    finally:
        assert server.stop() == 0
