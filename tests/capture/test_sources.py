import itertools
import logging
import os

import cv2
import numpy as np
import pytest

from camera import (
    HttpCamera,
    OpenCVCamera,
    PacketCamera,
    PatternCamera,
    SourceError,
    VideoFileCamera,
    create_camera,
    redact_url,
)
from tests.helpers import wait_until

FILE_FPS = 25.0
FILE_FRAMES = 12


@pytest.fixture
def video_file(tmp_path):
    """A 12-frame MJPG AVI at 25 fps; frame i is a flat grey of level 10 + 20 i."""
    path = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), FILE_FPS, (160, 120))
    assert writer.isOpened()
    for index in range(FILE_FRAMES):
        writer.write(np.full((120, 160, 3), 10 + 20 * index, np.uint8))
    writer.release()
    return path


def frame_index(image: np.ndarray) -> int:
    return round((float(image.mean()) - 10) / 20)


@pytest.mark.parametrize(
    "source, kind",
    [
        ("pattern", PatternCamera),
        ("0", OpenCVCamera),
        ("/dev/video3", OpenCVCamera),
        ("rtsp://user:pw@127.0.0.1:8554/cam", PacketCamera),
        ("http://127.0.0.1:9/video", HttpCamera),
        ("https://127.0.0.1:9/video", HttpCamera),
    ],
)
def test_source_strings_pick_the_right_camera(source, kind):
    camera = create_camera("cam", source)
    assert type(camera) is kind
    assert camera.state == "idle", "nothing may be opened before someone watches"


def test_files_and_file_urls_become_file_cameras(video_file):
    assert type(create_camera("a", str(video_file))) is VideoFileCamera
    assert type(create_camera("b", video_file.as_uri())) is VideoFileCamera


@pytest.mark.parametrize(
    "source, message",
    [
        ("/no/such/movie.mp4", "no such file: /no/such/movie.mp4"),
        ("gopher://user:secret@host/cam", "unknown source scheme 'gopher' in gopher://user:***@host/cam"),
        ("", "empty source"),
    ],
)
def test_sources_that_cannot_work_are_refused_with_one_clear_line(source, message):
    with pytest.raises(SourceError) as raised:
        create_camera("cam", source)
    assert str(raised.value) == message


def test_a_directory_is_not_a_video(tmp_path):
    with pytest.raises(SourceError, match="not a video file"):
        create_camera("cam", str(tmp_path))


@pytest.mark.skipif(os.path.exists("/dev/video0"), reason="this machine has a camera")
def test_auto_falls_back_to_the_pattern_and_says_so(caplog):
    caplog.set_level(logging.INFO, logger="camstream")
    camera = create_camera("cam", "auto")
    assert type(camera) is PatternCamera
    assert "no capture device 0, using the test pattern" in caplog.text


def test_a_video_file_plays_at_its_own_rate_and_loops(video_file):
    camera = create_camera("clip", str(video_file))
    wanted = 2 * FILE_FRAMES + 6
    with camera.subscribe() as viewer:
        frames = [viewer.next_frame(5) for _ in range(wanted)]
    camera.stop()
    assert all(f is not None for f in frames)
    indices = [frame_index(cv2.imdecode(np.frombuffer(f.jpeg, np.uint8), 1)) for f in frames]
    # In order and looping: each frame is the file's next one, or (for a viewer busy for a moment, handed the
    # newest) the one the camera's own count says.
    assert all(after.seq > before.seq for before, after in itertools.pairwise(frames))
    assert indices == [(indices[0] + frame.seq - frames[0].seq) % FILE_FRAMES for frame in frames], \
        "plays in order and loops"
    assert frames[-1].seq - frames[0].seq < wanted + 10, "a viewer misses a frame only now and then"
    rate = (frames[-1].seq - frames[0].seq) / (frames[-1].timestamp - frames[0].timestamp)
    # Paced at the file's own rate, never faster; slower only on a machine too busy to keep up.
    assert 0.6 * FILE_FPS <= rate <= 1.1 * FILE_FPS, f"played at {rate:.1f} fps, not {FILE_FPS}"


def test_a_file_without_loop_ends_and_the_camera_goes_idle(video_file):
    camera = VideoFileCamera("once", str(video_file), loop=False)
    frames = []
    with camera.subscribe() as viewer:
        while (frame := viewer.next_frame(5)) is not None:
            frames.append(frame)
    indices = [frame_index(cv2.imdecode(np.frombuffer(f.jpeg, np.uint8), 1)) for f in frames]
    # Every frame of the file once, in order, then the end (a viewer busy for a moment is handed the newest, so
    # the camera's own count says what it published).
    assert indices[-1] == FILE_FRAMES - 1 and indices[0] <= 2, indices
    assert [index - indices[0] for index in indices] == [frame.seq - frames[0].seq for frame in frames]
    assert wait_until(lambda: camera.state == "idle", 2)


def test_a_device_that_does_not_open_fails_with_a_reason():
    camera = create_camera("usb", "/dev/video63")
    assert camera.snapshot(5) is None
    assert camera.state == "reconnecting"
    camera.stop()
    assert camera.state == "failed"
    assert camera.status()["last_error"] == "could not open /dev/video63"


@pytest.mark.parametrize(
    "url, shown",
    [
        ("rtsp://admin:hunter2@cam.local:554/live", "rtsp://admin:***@cam.local:554/live"),
        ("http://u:p%40ss@host/x?y=1", "http://u:***@host/x?y=1"),
        ("http://user@host/x", "http://***@host/x"),  # a user alone may be a token
        ("pattern", "pattern"),
    ],
)
def test_redact_url(url, shown):
    assert redact_url(url) == shown
