"""A pose model's keypoints go where its boxes go: into the main stream's pixels when detection runs on a
smaller detect stream, and drawn as a skeleton over the page's live video (Chromium)."""

from __future__ import annotations

import numpy as np
import pytest

from camera import Frame, jpeg
from camera.detect import Detection, DetectionResult
from camera.track import TrackedDetection
from tests.detect.posers import grid_point
from tests.helpers import get_json, h264_square, wait_until
from tests.sources import SceneCamera

MAIN, SMALL = (640, 360), (320, 180)
SQUARE = (400, 200, 80, 60)  # in the main stream; the detect stream holds it at half that


def test_keypoints_are_scaled_with_their_box_and_a_track_keeps_its_id():
    frame = Frame(1, jpeg.encode(np.zeros((180, 320, 3), np.uint8), 80), 0.0, 320, 180)
    points = [[*grid_point((200, 100, 40, 30), i), 0.8] for i in range(17)]
    person = TrackedDetection("person", 0.9, (200, 100, 40, 30), {"keypoints": points, "note": "kept"}, track=7,
                              zones=("drive",))
    odd = Detection("thing", 0.5, (10, 10, 4, 4), {"keypoints": "not a list of points"})
    result = DetectionResult("door", "yolo:pose.onnx", frame, [person, odd], 1.0, 0.0).in_size(MAIN)
    scaled, other = result.detections
    assert scaled.box == (400, 200, 80, 60) and (scaled.track, scaled.zones) == (7, ("drive",))
    assert scaled.extra["note"] == "kept" and other.extra == odd.extra
    for index, (x, y, score) in enumerate(scaled.extra["keypoints"]):
        assert (x, y, score) == pytest.approx((*grid_point(SQUARE, index), 0.8)), index
    # Back to the detect stream's own frame (the overlay snapshot draws there): where they were.
    back = result.boxes_for(320, 180)[0].extra["keypoints"]
    assert [n for point in back for n in point[:2]] == pytest.approx([n for point in points for n in point[:2]])


def test_keypoints_from_a_small_detect_stream_are_in_the_main_streams_pixels(tmp_path, serve_app):
    main = h264_square(tmp_path / "main.mp4", MAIN, SQUARE, fps=10, frames=40)
    small = h264_square(tmp_path / "small.mp4", SMALL, tuple(side // 2 for side in SQUARE), fps=10, frames=40)
    site = serve_app({"CAMERAS": {"door": str(main)}, "DETECT": {"door": "tests.detect.posers:square_pose"},
                      "DETECT_SOURCE": {"door": str(small)}, "DETECT_FPS": 5})
    detections = lambda: get_json(f"{site}/api/cameras/door/detections")
    assert wait_until(lambda: detections()[0] == 200 and detections()[1]["width"] == MAIN[0], 30)
    [person] = detections()[1]["detections"]
    assert all(abs(got - want) <= 2 for got, want in zip(person["box"], SQUARE, strict=True)), person["box"]
    points = person["extra"]["keypoints"]
    assert len(points) == 17
    for index, (x, y, _) in enumerate(points):
        want = grid_point(SQUARE, index)
        assert abs(x - want[0]) <= 2 and abs(y - want[1]) <= 2, (index, (x, y), want)


def test_the_page_draws_the_skeleton_over_the_live_video(browser, serve_app):
    site = serve_app({"CAMERAS": {"scene": SceneCamera()}, "DETECT": {"scene": "tests.detect.posers:square_pose"},
                      "DETECT_FPS": 10})
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(site + "/", wait_until="domcontentloaded")
    canvas = '[data-camera="scene"] [data-field="boxes"]'
    # In one step: a drawing with its skeleton, and the canvas at the middle of the line joining the shoulders
    # (keypoints 5 and 6: on the box's second row, inside it, where no box edge is).
    look = f"""() => {{
        const canvas = document.querySelector('{canvas}');
        if (!canvas || canvas.hidden || canvas.dataset.skeletons !== '1') return null;
        const box = JSON.parse(canvas.dataset.boxes)[0], view = canvas.parentElement;
        const img = view.img.getBoundingClientRect(), outer = view.getBoundingClientRect();
        const scale = Math.min(img.width / 320, img.height / 240), ratio = canvas.width / outer.width;
        const x = (img.left - outer.left + (img.width - 320 * scale) / 2 + (box[0] + box[2] / 8) * scale) * ratio;
        const y = (img.top - outer.top + (img.height - 240 * scale) / 2 + (box[1] + box[3] / 3) * scale) * ratio;
        const pixel = canvas.getContext('2d').getImageData(Math.round(x), Math.round(y), 1, 1).data;
        return [...pixel];
    }}"""
    pixel = page.wait_for_function(look, timeout=20000, polling=50).json_value()
    assert pixel[3] > 100 and min(pixel[:3]) > 150, f"a white line of the skeleton: {pixel}"
    page.close()
