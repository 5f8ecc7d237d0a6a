import logging
import threading

import pytest

from camera import FAILED, IDLE, RECONNECTING, STREAMING, BaseCamera, PatternCamera
from tests.helpers import decode, make_jpeg, wait_until
from tests.sources import CountingCamera


def test_capture_starts_with_the_first_viewer_and_releases_the_device_when_idle():
    camera = CountingCamera(idle_timeout=0.3)
    assert camera.state == IDLE and camera.opens == 0
    viewer = camera.subscribe()
    assert viewer.next_frame(5) is not None
    assert camera.state == STREAMING
    viewer.close()
    assert camera.released.wait(5)
    assert wait_until(lambda: camera.state == IDLE, 2)
    assert (camera.opens, camera.closes) == (1, 1)
    assert not camera.running


def test_a_stalled_viewer_keeps_the_camera_running():
    camera = CountingCamera(idle_timeout=0.2)
    with camera.subscribe() as viewer:
        assert viewer.next_frame(5) is not None
        # The viewer takes no frames for several idle timeouts.
        assert not camera.released.wait(0.8)
        assert camera.running and camera.closes == 0
        assert viewer.next_frame(5) is not None
    camera.stop()


def test_a_snapshot_starts_an_idle_camera_which_then_stops_again():
    camera = CountingCamera(idle_timeout=0.3)
    frame = camera.snapshot(timeout=5)
    assert frame is not None and (frame.width, frame.height) == (64, 48)
    assert camera.released.wait(5)
    assert camera.broadcaster.latest is None
    assert camera.opens == 1


def test_a_viewer_arriving_while_the_camera_stops_restarts_it():
    gate = threading.Event()
    camera = CountingCamera(idle_timeout=0.1, release_gate=gate)
    with camera.subscribe() as viewer:
        assert viewer.next_frame(5) is not None
    # The capture thread decides to stop and blocks while releasing.
    assert wait_until(lambda: not camera.running, 5)
    with camera.subscribe() as viewer:
        gate.set()
        assert viewer.next_frame(5) is not None
        assert camera.running
    assert camera.opens == 2
    assert camera.most_open_at_once == 1, "the new run must wait for the old release"
    camera.stop()


def test_a_failing_source_is_retried_while_its_viewer_stays_and_sees_no_signal(caplog):
    camera = CountingCamera(fail_after=3, idle_timeout=5)
    caplog.set_level(logging.INFO, logger="camstream.camera")
    seen = []
    status = None
    with camera.subscribe() as viewer:
        for _ in range(100):
            frame = viewer.next_frame(5)
            assert frame is not None, "the viewer must keep getting frames through the outage"
            seen.append(frame.live)
            if not frame.live:
                status = camera.status()
            if seen[-2:] == [False, True]:
                break
    camera.stop()
    assert seen[:3] == [True] * 3 and False in seen and seen[-1], seen
    assert status is not None and status["state"] == RECONNECTING and "sensor on fire" in status["last_error"]
    assert status["offline_since"] is not None
    assert camera.opens >= 2
    failures = [r for r in caplog.records if "capture failed" in r.getMessage()]
    assert failures and "counting" in failures[0].getMessage()
    assert "Traceback" in failures[0].getMessage() and "RuntimeError" in failures[0].getMessage()


def test_a_camera_that_never_works_is_failed_once_nobody_watches_and_the_next_viewer_retries():
    camera = CountingCamera(fail_after=0, idle_timeout=0.5)
    with camera.subscribe() as viewer:
        frame = viewer.next_frame(5)
        assert frame is not None and not frame.live
        assert decode(frame.jpeg).shape == (480, 640, 3)
    assert wait_until(lambda: camera.state == FAILED, 5)
    assert "sensor on fire" in camera.status()["last_error"]
    opens = camera.opens
    assert camera.released.wait(5)
    with camera.subscribe() as viewer:
        assert viewer.next_frame(5) is not None
        assert wait_until(lambda: camera.opens > opens, 5)
    camera.stop()
    assert camera.state == FAILED, "stopped while its source was gone"


def test_each_frame_is_encoded_once_for_ten_viewers():
    camera = PatternCamera("ten", fps=30)
    viewers = [camera.subscribe() for _ in range(10)]
    received = [[viewer.next_frame(5) for _ in range(10)] for viewer in viewers]
    camera.stop()
    for frames in received:
        assert all(f is not None for f in frames)
        seqs = [f.seq for f in frames]
        assert seqs == sorted(set(seqs)), "no viewer may get a frame twice"
    status = camera.status()
    assert status["frames_encoded"] == status["frames_captured"] >= 10
    # Every viewer was handed the very same bytes object, not a copy.
    by_seq = {}
    for frames in received:
        for f in frames:
            assert by_seq.setdefault(f.seq, f.part) is f.part


def test_the_fps_cap_drops_frames_that_come_too_fast():
    camera = CountingCamera(rate=60, fps=15)
    with camera.subscribe() as viewer:
        for _ in range(15):
            assert viewer.next_frame(5) is not None
    camera.stop()
    status = camera.status()
    ratio = status["frames_encoded"] / status["frames_captured"]
    assert 0.15 < ratio < 0.45, status


def test_images_are_resized_once_in_the_capture_thread():
    camera = PatternCamera("small", width=320)
    frame = camera.snapshot(5)
    camera.stop()
    assert (frame.width, frame.height) == (320, 240)
    assert decode(frame.jpeg).shape == (240, 320, 3)


class JpegCamera(BaseCamera):
    def frames(self):
        while not self.stopping:
            yield make_jpeg(3, size=(200, 100))


def test_jpeg_sources_pass_through_unless_a_size_is_set():
    passthrough = JpegCamera("pass")
    frame = passthrough.snapshot(5)
    passthrough.stop()
    assert frame.jpeg == make_jpeg(3, size=(200, 100))
    assert (frame.width, frame.height) == (200, 100)
    assert passthrough.status()["frames_encoded"] == 0

    resized = JpegCamera("resized", height=50)
    frame = resized.snapshot(5)
    resized.stop()
    assert decode(frame.jpeg).shape == (50, 100, 3)
    assert resized.status()["frames_encoded"] >= 1


def test_two_cameras_run_side_by_side_independently():
    left, right = PatternCamera("left", fps=20), PatternCamera("right", fps=20)
    with left.subscribe() as lv, right.subscribe() as rv:
        assert lv.next_frame(5) is not None and rv.next_frame(5) is not None
        right.stop()
        assert not right.running
        assert lv.next_frame(5) is not None and left.running
    left.stop()
    assert left.status()["name"] == "left" and right.status()["name"] == "right"
    assert left.broadcaster is not right.broadcaster


def test_status_has_every_field():
    camera = PatternCamera("status", fps=25, source="pattern")
    with camera.subscribe() as viewer:
        for _ in range(20):
            viewer.next_frame(5)
        status = camera.status()
    camera.stop()
    assert status["state"] == STREAMING
    assert status["viewers"] == 1
    assert (status["width"], status["height"]) == (640, 480)
    assert status["fps"] == 25 and 15 < status["measured_fps"] < 35
    assert status["uptime"] > 0
    assert set(status) >= {"name", "source", "state", "fps", "measured_fps", "width", "height",
                           "viewers", "frames_captured", "frames_encoded", "last_error", "uptime"}


class SecretFailingCamera(BaseCamera):
    def frames(self):
        raise ConnectionError("login failed for rtsp://admin:hunter2@10.0.0.9/live")
        yield


def test_passwords_never_reach_status_or_logs(caplog):
    caplog.set_level(logging.INFO, logger="camstream")
    camera = SecretFailingCamera("door", source="rtsp://admin:hunter2@10.0.0.9/live")
    assert camera.snapshot(2) is None
    assert wait_until(lambda: camera.state == RECONNECTING, 2)
    status = camera.status()
    assert status["source"] == "rtsp://admin:***@10.0.0.9/live"
    assert "hunter2" not in str(status)
    assert "login failed" in status["last_error"]
    assert "hunter2" not in caplog.text and "login failed" in caplog.text


@pytest.mark.parametrize("options", [{"fps": 0}, {"quality": 0}, {"quality": 101}, {"width": -1},
                                     {"idle_timeout": -1}])
def test_bad_options_are_refused(options):
    with pytest.raises(ValueError):
        PatternCamera("bad", **options)
