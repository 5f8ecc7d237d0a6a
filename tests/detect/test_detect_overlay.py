"""Streams with the boxes drawn: /video_feed/<name>?overlay=1 and /streams?overlay=1, on both stream paths."""

import threading

import numpy as np
import pytest

from camera import Frame, PatternCamera, jpeg
from camera.detect import Detection, DetectionResult, OverlayStream
from camera.detect.overlay import colour_of
from camera.detect.overlay_stream import MAX_RESULT_AGE
from tests.helpers import MjpegReader, decode, get, get_json, wait_until
from tests.sources import SceneCamera
from tests.viewers.test_multiplex import tagged_parts
from webapp import create_app
from webapp.runtime.registry import runtime_of


@pytest.fixture
def site(serve):
    app = create_app({"CAMERAS": {"scene": SceneCamera(), "plain": PatternCamera("plain", fps=10, width=320)},
                      "DETECT": {"scene": "tests.detectors:find_squares"}, "DETECT_FPS": 10})
    assert wait_until(lambda: runtime_of(app).detections["scene"].latest is not None, 20), "the detector is always on"
    return app, serve(app, threads=80)


def boxed(image: np.ndarray) -> bool:
    """Whether a box in the colour of "square" is drawn around the red square."""
    red = (image[:, :, 2] > 150) & (image[:, :, 1] < 80) & (image[:, :, 0] < 80)
    ys, xs = np.nonzero(red)
    if not len(ys):
        return False
    # Just above the square's top edge, in the middle: the box line (drawn at most 1.5 s from this frame).
    top, middle = ys.min(), (xs.min() + xs.max()) // 2
    line = image[max(0, top - 3):top, middle].astype(int)
    return bool((np.abs(line - colour_of("square")).max(axis=1) < 70).any())


def test_the_overlay_stream_shows_the_boxes_on_the_cameras_own_frames(site):
    _, base = site
    with MjpegReader(f"{base}/video_feed/scene?overlay=1") as viewer:
        # From the first frame with a box on (the overlay starts drawing with its first result), 30 frames.
        frames = viewer.frames()
        assert any(boxed(decode(next(frames))) for _ in range(300)), "no frame of 300 shows the box"
        drawn = sum(boxed(decode(next(frames))) for _ in range(30))
    # Most of them: on a busy machine the detector (10 a second) may fall more than MAX_RESULT_AGE behind for a
    # moment, and frames then go out without boxes rather than with stale ones (22 of 30 seen under load).
    assert drawn >= 15, f"only {drawn} of 30 frames show the box"
    with MjpegReader(f"{base}/video_feed/scene") as viewer:
        assert not any(boxed(decode(data)) for data in viewer.read(10)), "the plain stream has no boxes"


def test_fifty_overlay_viewers_share_one_drawing_per_frame(site):
    app, base = site
    camera, overlay = runtime_of(app).cameras["scene"], runtime_of(app).overlays["scene"]
    ready = threading.Barrier(50, timeout=30)
    received = [0] * 50
    before = {}

    def watch(slot: int) -> None:
        with MjpegReader(f"{base}/video_feed/scene?overlay=1", timeout=30) as viewer:
            viewer.read(1)
            if ready.wait() == 0:
                before.update(drawn=overlay.frames_drawn, captured=camera.status()["frames_captured"])
            received[slot] = len(viewer.read(20))

    threads = [threading.Thread(target=watch, args=(slot,)) for slot in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert received == [20] * 50
    drawn = overlay.frames_drawn - before["drawn"]
    captured = camera.status()["frames_captured"] - before["captured"]
    # 1000 frames reached the viewers; each frame was drawn once at most, for all of them.
    assert 10 <= drawn <= captured + 2, f"{drawn} drawings for {captured} frames and 50 viewers"


def test_overlay_viewers_count_and_the_drawing_stops_when_they_leave(site):
    app, base = site
    overlay = runtime_of(app).overlays["scene"]
    with MjpegReader(f"{base}/video_feed/scene?overlay=1") as viewer:
        viewer.read(2)
        assert wait_until(lambda: get_json(f"{base}/api/cameras/scene")[1]["viewers"] == 1, 10)
    assert wait_until(lambda: overlay.viewers == 0, 10)
    drawn = overlay.frames_drawn
    assert wait_until(lambda: overlay._thread is None, 10), "the drawing thread ends after its last viewer"
    assert overlay.frames_drawn - drawn <= 90


def test_streams_with_overlay_draw_the_cameras_that_have_a_detector(site):
    _, base = site
    parts = tagged_parts(f"{base}/streams?cameras=scene,plain&overlay=1", 30)
    scene = [decode(data) for camera, data in parts if camera == "scene"]
    plain = [decode(data) for camera, data in parts if camera == "plain"]
    assert len(scene) >= 10 and plain, [camera for camera, _ in parts]
    # Drawn on the camera with a detector: frames come with its boxes (not every one on a busy machine, where
    # the detector's newest result can be older than the 1.5 s a box is drawn for).
    assert any(boxed(image) for image in scene)
    assert all(image.shape == (240, 320, 3) for image in plain)


def test_overlay_for_a_camera_without_a_detector_is_a_404(site):
    _, base = site
    status, _headers, body = get(f"{base}/video_feed/plain?overlay=1")
    assert status == 404 and b"has no detector" in body
    status, _, body = get(f"{base}/video_feed/scene?overlay=sometimes")
    assert status == 400 and b"overlay must be 1 or 0" in body


def test_boxes_far_from_the_frame_in_time_are_not_drawn():
    camera = SceneCamera()
    image = np.full((240, 320, 3), 90, np.uint8)
    data = jpeg.encode(image, 80)

    class Latest:
        latest = None

    overlay = OverlayStream(camera, Latest())
    result_frame = Frame(1, data, 1000.0, 320, 240)
    Latest.latest = DetectionResult("scene", "test", result_frame, [Detection("square", 0.9, (100, 100, 40, 40))],
                                    1.0, 1000.01)
    near, far = Frame(2, data, 1001.0, 320, 240), Frame(3, data, 1000.0 + MAX_RESULT_AGE + 0.5, 320, 240)
    assert overlay._drawn(near).jpeg != data and overlay.frames_drawn == 1, "boxes from 1 s before are drawn"
    assert overlay._drawn(far) is far and overlay.frames_drawn == 1, "boxes from 2 s before are not"
    assert overlay._drawn(Frame(4, data, 1000.5, 320, 240, live=False)).live is False, "no boxes on no signal"
