"""A camera's detect stream (an IP camera's sub-stream), hardware decoding's fallback, and decoding only what
detection needs: H.264 files made by the tests, camstream on a real waitress."""

from __future__ import annotations

import json
import logging
import urllib.request

import pytest

from tests.helpers import decode, get_json, h264_square, wait_until

MAIN, SMALL = (640, 360), (320, 180)
SQUARE = (400, 200, 80, 60)  # in the main stream; the detect stream holds it at half that


@pytest.fixture(scope="module")
def streams(tmp_path_factory):
    folder = tmp_path_factory.mktemp("detect-source")
    main = h264_square(folder / "main.mp4", MAIN, SQUARE, fps=10, frames=40)
    small = h264_square(folder / "small.mp4", SMALL, tuple(side // 2 for side in SQUARE), fps=10, frames=40)
    return main, small


def status_of(site: str, name: str) -> dict:
    return get_json(f"{site}/api/cameras/{name}")[1]


def test_boxes_from_a_small_detect_stream_are_given_in_the_main_streams_pixels(streams, serve_app):
    main, small = streams
    site = serve_app({"CAMERAS": {"door": str(main)}, "DETECT": {"door": "tests.detectors:find_squares"},
                      "DETECT_SOURCE": {"door": str(small)}, "DETECT_FPS": 5})
    detections = lambda: get_json(f"{site}/api/cameras/door/detections")
    # Results before the main stream has opened are in the detect stream's pixels (their width says so);
    # from then on, in the main stream's.
    assert wait_until(lambda: detections()[0] == 200 and detections()[1]["width"] == MAIN[0], 30)
    result = detections()[1]
    assert (result["width"], result["height"]) == MAIN and (result["detect_width"], result["detect_height"]) == SMALL
    [found] = result["detections"]
    assert all(abs(got - want) <= 2 for got, want in zip(found["box"], SQUARE, strict=True)), found["box"]
    status = status_of(site, "door")
    stream = status["detection"]["stream"]
    assert stream["source"] == str(small) and stream["state"] == "streaming" and stream["width"] == SMALL[0]
    assert status["video"]["decoded"] == 0, "the main stream is not decoded for detection"
    # Run now, on the detect stream's newest frame: the same answer.
    request = urllib.request.Request(f"{site}/api/cameras/door/detect", method="POST")
    with urllib.request.urlopen(request, timeout=30) as response:
        now = json.load(response)
    assert now["width"] == MAIN[0] and len(now["detections"]) == 1
    # The overlay draws the boxes on the main stream's own frames, where the square is.
    with urllib.request.urlopen(f"{site}/snapshot/door.jpg?overlay=1", timeout=30) as response:
        drawn = decode(response.read())
    assert drawn.shape[:2] == SMALL[::-1], "the result's own frame is the detect stream's"


def test_a_detect_stream_that_fails_is_shown_and_the_main_stream_goes_on(streams, serve_app):
    main, _ = streams
    site = serve_app({"CAMERAS": {"door": str(main)}, "DETECT": {"door": "tests.detectors:find_squares"},
                      "DETECT_SOURCE": {"door": "rtsp://127.0.0.1:9/nothing"}})
    assert wait_until(lambda: status_of(site, "door")["detection"]["stream"]["last_error"], 30)
    stream = status_of(site, "door")["detection"]["stream"]
    assert stream["state"] != "streaming" and "127.0.0.1:9" in stream["source"]
    with urllib.request.urlopen(f"{site}/snapshot/door.jpg", timeout=30) as response:
        assert decode(response.read()).shape == (MAIN[1], MAIN[0], 3), "the main stream works all the same"
    assert status_of(site, "door")["state"] == "streaming"


def test_a_main_stream_that_fails_leaves_detection_on_its_detect_stream_working(streams, serve_app):
    _, small = streams
    site = serve_app({"CAMERAS": {"door": "rtsp://127.0.0.1:9/nothing"},
                      "DETECT": {"door": "tests.detectors:find_squares"}, "DETECT_SOURCE": {"door": str(small)}})
    assert wait_until(lambda: get_json(f"{site}/api/cameras/door/detections")[0] == 200, 30)
    result = get_json(f"{site}/api/cameras/door/detections")[1]
    # The main stream never opened, so its size is not known: the boxes stay in the detect stream's pixels,
    # as the result's width and height say.
    assert (result["width"], result["height"]) == SMALL and len(result["detections"]) == 1
    assert status_of(site, "door")["detection"]["stream"]["state"] == "streaming"


def test_detection_alone_at_the_keyframe_rate_decodes_only_keyframes(tmp_path, serve_app):
    clip = h264_square(tmp_path / "gop.mp4", (320, 180), (100, 50, 40, 30), fps=10, frames=60, keyframe_every=10)
    site = serve_app({"CAMERAS": {"gate": str(clip)}, "DETECT": {"gate": "tests.detectors:find_squares"},
                      "DETECT_FPS": 1})
    # Four results, and four seconds of the file read (a first result may come before a second has gone by).
    assert wait_until(lambda: status_of(site, "gate")["detection"]["results"] >= 4
                      and status_of(site, "gate")["video"]["packets"] >= 40, 40), status_of(site, "gate")
    video = status_of(site, "gate")["video"]
    # A keyframe a second, a detector once a second: one picture decoded in ten packets (and the first GOP).
    assert video["decoded"] <= video["packets"] // 5 + 10, video


def test_a_hardware_decoder_that_is_not_here_falls_back_to_software_saying_so_once(streams, serve_app, caplog):
    main, _ = streams
    with caplog.at_level(logging.INFO, logger="camstream.camera"):
        site = serve_app({"CAMERAS": {"door": str(main)}, "HWACCEL": "vaapi"})
        with urllib.request.urlopen(f"{site}/snapshot/door.jpg", timeout=30) as response:
            assert decode(response.read()).shape == (MAIN[1], MAIN[0], 3), "decoded in software"
    decoding = status_of(site, "door")["video"]["decoding"]
    assert decoding.startswith("software (vaapi is not available"), decoding
    said = [record.getMessage() for record in caplog.records if "decoding with" in record.getMessage()]
    assert len(said) == 1 and "vaapi" in said[0], said
