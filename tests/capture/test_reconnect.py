"""Sources that fail, end, hang or never answer: cameras reconnect and viewers stay."""

import logging
import random
import socket
import threading
import time

import numpy as np
import pytest

from camera import RECONNECTING, STREAMING, BaseCamera, HttpCamera
from camera.backoff import Backoff
from camera.pacing import Pacer
from tests.helpers import MjpegReader, UpstreamServer, decode, free_port, get, get_json, make_jpeg, wait_until
from webapp import create_app
from webapp.runtime.registry import runtime_of

JPEGS = [make_jpeg(i) for i in range(6)]


def test_backoff_doubles_from_half_a_second_to_thirty_with_jitter():
    backoff = Backoff(rng=random.Random(1))
    bases = [0.5, 1, 2, 4, 8, 16, 30, 30, 30, 30]
    delays = [backoff.next_delay() for _ in bases]
    for delay, base in zip(delays, bases, strict=True):
        assert 0.8 * base <= delay <= 1.2 * base, (delays, bases)
    assert len({round(d / b, 4) for d, b in zip(delays, bases, strict=True)}) > 1, "delays must be jittered"
    backoff.reset()
    assert backoff.next_delay() <= 0.6


def test_an_upstream_that_drops_out_keeps_its_viewers_and_comes_back_to_them(serve):
    with UpstreamServer(JPEGS, fps=20) as upstream:
        app = create_app({"CAMERAS": {"cam": upstream.url}})
        base = serve(app)
        camera = runtime_of(app).cameras["cam"]
        with MjpegReader(f"{base}/video_feed/cam") as viewer:
            frames = viewer.frames()
            assert next(frames) in JPEGS
            upstream.down()
            lost_at = time.monotonic()
            frame = next(frames)
            for _ in range(100):
                if frame not in JPEGS:
                    break
                frame = next(frames)
            assert frame not in JPEGS, "viewers get a 'no signal' frame while the source is gone"
            assert time.monotonic() - lost_at < 5
            assert decode(frame).shape == (120, 160, 3), "the same size as the camera's pictures"
            status, body = get_json(f"{base}/api/cameras/cam")
            assert body["state"] == RECONNECTING
            assert "ended the stream" in body["last_error"] or "could not connect" in body["last_error"]
            assert body["offline_since"] is not None
            status, _, raw = get(f"{base}/snapshot/cam.jpg")
            assert status == 503 and b"no signal" in raw
            # About one "no signal" frame a second.
            before = time.monotonic()
            assert next(frames) not in JPEGS
            assert 0.4 < time.monotonic() - before < 2.5
            upstream.up()
            for _ in range(60):
                frame = next(frames)
                if frame in JPEGS:
                    break
            assert frame in JPEGS, "the same viewer gets live frames again without reconnecting"
            assert camera.state == STREAMING
            assert get(f"{base}/snapshot/cam.jpg")[0] == 200


@pytest.mark.slow
def test_an_upstream_that_stops_sending_is_noticed_within_5_s():
    with UpstreamServer(JPEGS, fps=20) as upstream:
        camera = HttpCamera("hung", upstream.url)
        with camera.subscribe() as viewer:
            assert viewer.next_frame(5).live
            upstream.hanging.set()
            assert wait_until(lambda: camera.state == RECONNECTING, 5)
            assert "sent nothing" in camera.status()["last_error"]
            frame = viewer.next_frame(3)
            assert frame is not None and not frame.live
            upstream.hanging.clear()
            assert wait_until(lambda: camera.state == STREAMING, 15)
            assert viewer.next_frame(3).live
        camera.stop()


@pytest.mark.slow
def test_a_server_that_accepts_but_never_answers_is_noticed_within_5_s():
    with socket.create_server(("127.0.0.1", 0)) as mute:
        camera = HttpCamera("mute", f"http://127.0.0.1:{mute.getsockname()[1]}/")
        with camera.subscribe() as viewer:
            frame = viewer.next_frame(5.5)
            assert frame is not None and not frame.live
            assert decode(frame.jpeg).shape == (480, 640, 3)
        assert "timed out" in camera.status()["last_error"]
        camera.stop()


class StuckCamera(BaseCamera):
    """The first run sends two frames, then blocks where no timeout reaches; later runs work."""

    def __init__(self) -> None:
        super().__init__("stuck", source="stuck", stall_timeout=1.0)
        self.unstick = threading.Event()
        self.second_run = threading.Event()
        self.runs = 0

    def frames(self):
        self.runs += 1
        run = self.runs
        if run > 1:
            self.second_run.wait(10)
        pacer = Pacer(20)
        for _ in range(2 if run == 1 else 10**9):
            pacer.wait()
            yield np.full((48, 64, 3), 50 * run, np.uint8)
        self.unstick.wait(30)


def capture_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "camera-stuck"]


def test_a_source_stuck_without_a_timeout_is_left_behind_and_reopened(caplog):
    caplog.set_level(logging.WARNING, logger="camstream.camera")
    camera = StuckCamera()
    try:
        with camera.subscribe() as viewer:
            assert viewer.next_frame(5).live
            assert wait_until(lambda: camera.state == RECONNECTING, 3)
            assert "no frame from the source for 1 s" in camera.status()["last_error"]
            frame = viewer.next_frame(3)
            if frame is not None and frame.live:
                frame = viewer.next_frame(3)  # the second frame, not yet taken
            assert frame is not None and not frame.live
            camera.second_run.set()
            kinds = []
            for _ in range(20):
                frame = viewer.next_frame(5)
                kinds.append(frame.live)
                if frame.live:
                    break
            assert kinds[-1] is True, kinds
            assert decode(frame.jpeg)[0, 0, 0] in range(95, 106), "the frame comes from the second run"
            assert camera.state == STREAMING and camera.runs == 2
            assert len(capture_threads()) == 2, "the stuck thread is left behind, not joined"
        assert "camera stuck: no frame from the source for 1 s; reconnecting" in caplog.text
    finally:
        camera.unstick.set()
        camera.stop()
    assert wait_until(lambda: not capture_threads(), 5), "the stuck thread ends once unblocked"


def test_cameras_that_cannot_open_or_never_work_do_not_stop_the_others(serve, caplog):
    caplog.set_level(logging.INFO, logger="camstream")
    app = create_app({"CAMERAS": f"good=pattern,door=http://127.0.0.1:{free_port()}/cam,gone=/no/such.mp4"})
    base = serve(app)
    with MjpegReader(f"{base}/video_feed/door") as door:
        frame = door.read(1)[0]
        decode(frame)
        assert wait_until(lambda: runtime_of(app).cameras["door"].state == RECONNECTING, 5)
        with MjpegReader(f"{base}/video_feed/good") as good:
            assert decode(good.read(1)[0]).shape == (480, 640, 3)
        status, body = get_json(f"{base}/api/cameras")
        states = {c["name"]: (c["state"], c["last_error"]) for c in body["cameras"]}
        assert states["good"] == ("streaming", None)
        assert states["door"][0] == "reconnecting" and "could not connect" in states["door"][1]
        assert states["gone"] == ("failed", "no such file: /no/such.mp4")
        status, _, page = get(f"{base}/")
        page = page.decode()
        assert status == 200 and "could not connect" in page and "no such file: /no/such.mp4" in page
    assert "camera door: source lost: could not connect" in caplog.text
    status, headers, raw = get(f"{base}/video_feed/gone")
    assert status == 503 and "no such file" in raw.decode() and "Retry-After" not in headers
    status, body = get_json(f"{base}/snapshot/gone.jpg")
    assert status == 503 and body["camera"]["state"] == "failed"
