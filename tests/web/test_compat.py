"""mjpg-streamer's and ustreamer's URLs, read by real clients: an HTTP MJPEG reader and OpenCV."""

import json

import cv2
import pytest

from camera import PatternCamera
from tests.helpers import MjpegReader, decode, get, get_json

CAMERAS = {"front": (320, 240), "back": (160, 120)}


@pytest.fixture
def site(serve_app):
    return serve_app({"CAMERAS": {name: PatternCamera(name, fps=10, width=width, height=height)
                                  for name, (width, height) in CAMERAS.items()}})


@pytest.mark.parametrize("path, size", [
    ("/?action=stream", CAMERAS["front"]),
    ("/?action=stream_0", CAMERAS["front"]),
    ("/?action=stream_1", CAMERAS["back"]),
    ("/?action=stream&camera=back", CAMERAS["back"]),
    ("/webcam/?action=stream", CAMERAS["front"]),
    ("/stream", CAMERAS["front"]),
    ("/stream?camera=back&fps=5", CAMERAS["back"]),
])
def test_stream_urls_are_mjpeg_streams(site, path, size):
    with MjpegReader(site + path) as reader:
        assert reader.status == 200 and reader.headers["Content-Type"].startswith("multipart/x-mixed-replace")
        frames = reader.read(3)
    assert all(decode(frame).shape == (size[1], size[0], 3) for frame in frames)


@pytest.mark.parametrize("path, size", [
    ("/?action=snapshot", CAMERAS["front"]),
    ("/?action=snapshot_1", CAMERAS["back"]),
    ("/webcam/?action=snapshot", CAMERAS["front"]),
    ("/snapshot", CAMERAS["front"]),
    ("/snapshot?camera=back", CAMERAS["back"]),
])
def test_snapshot_urls_are_jpegs(site, path, size):
    status, headers, body = get(site + path)
    assert status == 200 and headers["Content-Type"] == "image/jpeg"
    assert decode(body).shape == (size[1], size[0], 3)


def test_opencv_reads_the_mjpg_streamer_url(site):
    capture = cv2.VideoCapture(site + "/?action=stream", cv2.CAP_FFMPEG)
    try:
        frames = [capture.read() for _ in range(3)]
    finally:
        capture.release()
    assert all(ok and image.shape == (240, 320, 3) for ok, image in frames)


def test_the_ustreamer_state(site):
    get(site + "/snapshot")
    status, body = get_json(site + "/state")
    assert status == 200 and body["ok"] is True
    result = body["result"]
    assert result["source"]["resolution"] == {"width": 320, "height": 240}
    assert result["source"]["online"] is True and result["encoder"]["quality"] == 80
    assert {"queued_fps", "clients"} <= set(result["stream"])


def test_without_an_action_the_root_is_the_page(site):
    status, headers, body = get(site + "/")
    assert status == 200 and headers["Content-Type"].startswith("text/html") and b"<camstream-view" in body
    status, headers, _ = get(site + "/webcam/")
    assert status == 200 and headers["Content-Type"].startswith("text/html")


@pytest.mark.parametrize("path, status", [
    ("/?action=command&id=1", 400),
    ("/?action=", 400),
    ("/?action=stream_99", 404),
    ("/?action=snapshot_2", 404),
    ("/?action=stream&camera=nope", 404),
    ("/stream?fps=fast", 400),
    ("/state?camera=nope", 404),
])
def test_what_camstream_does_not_answer_is_a_json_error(site, path, status):
    code, headers, body = get(site + path)
    assert code == status and headers["Content-Type"] == "application/json" and "error" in json.loads(body)
