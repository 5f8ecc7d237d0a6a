"""The motion detector on a scene the test makes: a still background and one moving square."""

import numpy as np
import pytest

from camera.detect.build import MotionGate
from camera.detect.motion import MotionDetector

WIDTH, HEIGHT, SIZE = 640, 480, 48


def scene(x: int | None, light: int = 0) -> np.ndarray:
    """A still background with texture, and a red square at column ``x`` (none for None)."""
    gradient = np.linspace(50, 170, WIDTH, dtype=np.float32)
    image = np.repeat(np.broadcast_to(gradient, (HEIGHT, WIDTH))[:, :, None], 3, axis=2)
    image[100:120, 80:400] = 20
    image[300:420, 500:600] = 200
    image = np.clip(image + light, 0, 255).astype(np.uint8)
    if x is not None:
        image[216:216 + SIZE, x:x + SIZE] = (0, 0, 230)
    return image


def covers(box, x: int, slack: int = 4) -> bool:
    """Whether ``box`` covers the square at ``x``, to within the detector's grain: it looks at the frame shrunk
    to half, blurred, so an edge is placed to within a couple of pixels."""
    bx, by, bw, bh = box
    return bx <= x + slack and by <= 216 + slack and bx + bw >= x + SIZE - slack and by + bh >= 216 + SIZE - slack


def on_square_path(box, x: int, step: int) -> bool:
    """Whether ``box`` lies where the square is or was in the last few frames (it fades behind it)."""
    bx, by, bw, bh = box
    left, right = x - 10 * step - 8, x + SIZE + 8
    return left <= bx and bx + bw <= right and 216 - 8 <= by and by + bh <= 216 + SIZE + 8


def test_boxes_cover_the_moving_square_and_nothing_else_then_stop_when_it_stops():
    detector = MotionDetector()
    assert detector(scene(None)) == [], "the first frame has nothing to compare with"
    for _ in range(3):
        assert detector(scene(None)) == [], "a still scene"
    step = 12
    for x in range(100, 400, step):
        detections = detector(scene(x))
        assert all(d.label == "motion" and 0 < d.score <= 1 for d in detections)
        assert any(covers(d.box, x) for d in detections), f"no box covers the square at {x}: {detections}"
        assert all(on_square_path(d.box, x, step) for d in detections), f"a box on the still part: {detections}"
    still = [bool(detector(scene(x))) for _ in range(30)]
    assert still.index(False) <= 12, f"the square stopped, but motion went on: {still}"
    assert not any(still[still.index(False):]), "once gone, the motion stays gone"


def test_boxes_follow_the_square_not_the_trail_the_background_still_remembers():
    detector = MotionDetector()
    for _ in range(4):
        detector(scene(None))
    step = 12
    for x in range(100, 400, step):
        for detection in detector(scene(x)):
            bx, _, bw, _ = detection.box
            # On the square, and at most a couple of steps behind it: never on the trail further back.
            assert x - 2 * step - 8 <= bx and bx + bw <= x + SIZE + 8, f"a box on the trail at {x}: {detection}"
    # It jumps away: nothing is reported where it was, however fresh the background's memory of it.
    for detection in detector(scene(500 - SIZE)):
        assert detection.box[0] >= 500 - SIZE - 8, f"a box where the square no longer is: {detection}"


def test_a_lighting_jump_over_the_whole_frame_is_not_motion_for_long():
    detector = MotionDetector()
    detector(scene(200))
    assert detector(scene(200)) == []
    assert detector(scene(200, light=70)) == [], "the lights went on: no box over the whole frame"
    for _ in range(10):
        assert detector(scene(200, light=70)) == [], "nor after it"
    moved = detector(scene(260, light=70))
    assert moved and any(covers(d.box, 260) for d in moved), "motion is seen again in the new light"


def test_min_area_and_sensitivity():
    small = np.full((HEIGHT, WIDTH, 3), 100, np.uint8)
    dot = small.copy()
    dot[200:220, 200:220] = 255
    assert MotionDetector(min_area=0.05)(small) == []
    detector = MotionDetector(min_area=0.05)
    detector(small)
    assert len(detector(dot)) == 1, "a 20-pixel square (0.13 % of the frame) passes a 0.05 % minimum"
    detector = MotionDetector(min_area=2.0)
    detector(small)
    assert detector(dot) == [], "not a 2 % one"
    faint = small.copy()
    faint[200:260, 200:260] = 120
    for sensitivity, seen in ((0.2, False), (0.9, True)):
        detector = MotionDetector(sensitivity=sensitivity)
        detector(small)
        assert bool(detector(faint)) is seen, f"a change of 20 grey levels at sensitivity {sensitivity}"


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="sensitivity"):
        MotionDetector(sensitivity=1.5)
    with pytest.raises(ValueError, match="min_area"):
        MotionDetector(min_area=-1)


def test_a_motion_gate_runs_its_detector_only_on_frames_with_motion():
    seen = []
    gate = MotionGate(lambda image: seen.append(image) or ["something"], holdover=0)
    assert gate(scene(None)) == [] and gate.gated == 1, "the first frame only starts the background"
    for _ in range(5):
        assert gate(scene(None)) == []
    assert gate.gated == 6 and seen == [], "a still scene never reaches the detector"
    assert gate(scene(200)) == ["something"] and len(seen) == 1, "motion: the detector runs on that frame"
    assert gate(scene(240)) == ["something"] and gate.gated == 6


def test_a_motion_gate_holds_over_after_the_last_motion():
    seen = []
    gate = MotionGate(lambda image: seen.append(1) or [], holdover=3600)
    gate(scene(None))
    gate(scene(200))
    for _ in range(5):
        gate(scene(200))
    assert len(seen) == 6 and gate.gated == 1, "within the hold-over the detector runs on still frames too"
