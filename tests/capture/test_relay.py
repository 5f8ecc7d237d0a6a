import itertools
import logging

import cv2
import numpy as np
import pytest

from camera import FAILED, RECONNECTING, HttpCamera, create_camera
from tests.helpers import MjpegReader, UpstreamServer, make_jpeg
from webapp import create_app

JPEGS = [make_jpeg(i, size=(320, 240)) for i in range(6)]


def relayed(camera, count):
    with camera.subscribe() as viewer:
        frames = [viewer.next_frame(5) for _ in range(count)]
    camera.stop()
    assert all(f is not None for f in frames)
    return frames


def assert_in_upstream_order(jpegs):
    """Each frame is one of the upstream's JPEGs to the byte, each a step on from the one before (a busy viewer
    may be handed the newest frame past one it had no time for, never an older one)."""
    positions = []
    for offset, data in enumerate(jpegs):
        assert data in JPEGS, f"frame {offset} is not the upstream's bytes"
        positions.append(JPEGS.index(data))
    steps = [(after - before) % len(JPEGS) for before, after in itertools.pairwise(positions)]
    assert all(step != 0 for step in steps), f"not in the upstream's order: {positions}"


@pytest.mark.parametrize("content_length", [True, False])
def test_relayed_jpegs_are_the_upstreams_bytes(content_length):
    with UpstreamServer(JPEGS, fps=30, content_length=content_length) as upstream:
        camera = create_camera("relay", upstream.url)
        frames = relayed(camera, 10)
    assert_in_upstream_order([f.jpeg for f in frames])
    status = camera.status()
    assert status["frames_encoded"] == 0, "a relay never re-encodes"
    assert (status["width"], status["height"]) == (320, 240)


def test_a_relay_through_camstream_serves_the_upstreams_bytes(serve):
    with UpstreamServer(JPEGS, fps=30) as upstream:
        base = serve(create_app({"CAMERAS": {"ipcam": upstream.url}}))
        with MjpegReader(f"{base}/video_feed/ipcam") as viewer:
            assert_in_upstream_order(viewer.read(8))


def test_a_relay_of_a_relay_is_still_lossless(serve):
    with UpstreamServer(JPEGS, fps=30) as upstream:
        first = serve(create_app({"CAMERAS": {"hop1": upstream.url}}))
        second = serve(create_app({"CAMERAS": {"hop2": f"{first}/video_feed/hop1"}}))
        with MjpegReader(f"{second}/video_feed/hop2") as viewer:
            assert_in_upstream_order(viewer.read(8))


def test_credentials_in_the_url_log_in_and_stay_secret(caplog):
    caplog.set_level(logging.DEBUG, logger="camstream")
    with UpstreamServer(JPEGS, fps=30, credentials=("admin", "s3cr3t")) as upstream:
        url = upstream.url.replace("http://", "http://admin:s3cr3t@")
        camera = create_camera("private", url)
        frames = relayed(camera, 3)
    assert_in_upstream_order([f.jpeg for f in frames])
    assert "s3cr3t" not in str(camera.status()) and "s3cr3t" not in caplog.text
    assert "admin:***@" in camera.status()["source"]


def test_a_refused_login_fails_with_the_http_status():
    with UpstreamServer(JPEGS, credentials=("admin", "right")) as upstream:
        camera = create_camera("private", upstream.url.replace("http://", "http://admin:wrong@"))
        assert camera.snapshot(5) is None
        assert camera.state == RECONNECTING
        error = camera.status()["last_error"]
        camera.stop()
    assert "HTTP 401" in error and "wrong" not in error


def test_an_upstream_that_is_gone_fails_with_a_reason():
    with UpstreamServer(JPEGS) as upstream:
        url = upstream.url
    camera = HttpCamera("gone", url)
    assert camera.snapshot(5) is None
    assert camera.state == RECONNECTING
    camera.stop()
    assert camera.state == FAILED
    assert "could not connect" in camera.status()["last_error"]


def test_http_that_is_not_mjpeg_is_read_as_packets_and_decoded(tmp_path):
    path = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25.0, (160, 120))
    for index in range(10):
        writer.write(np.full((120, 160, 3), 20 * index, np.uint8))
    writer.release()
    with UpstreamServer(body=path.read_bytes(), content_type="video/x-msvideo") as upstream:
        camera = create_camera("file-over-http", upstream.url)
        frame = camera.snapshot(10)
        camera.stop()
    assert frame is not None and (frame.width, frame.height) == (160, 120)
    assert camera.status()["frames_encoded"] >= 1, "decoded frames are encoded, unlike relayed ones"
