"""--max-picture-pixels: the biggest picture a camera's stream may claim is a setting, checked, and a stream
beyond it is refused with its size in one line of the camera's status (issue 36)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from camera import create_camera
from camera.limits import MAX_PIXELS
from tests.helpers import h264_clip, wait_until
from tests.passthrough.test_rtsp import RtspServer
from webapp import create_app
from webapp.app import shutdown
from webapp.config.values import ConfigError
from webapp.runtime.registry import runtime_of


def test_a_camera_gets_the_setting_and_the_default_is_the_old_limit(tmp_path: Path) -> None:
    clip = h264_clip(tmp_path / "clip.mp4", 10, 20)
    app = create_app({"CAMERAS": {"cam": str(clip)}})
    try:
        assert runtime_of(app).cameras["cam"].max_pixels == MAX_PIXELS
    finally:
        shutdown(app)
    app = create_app({"CAMERAS": {"cam": str(clip)}, "MAX_PICTURE_PIXELS": "10000"})
    try:
        assert runtime_of(app).cameras["cam"].max_pixels == 10_000
    finally:
        shutdown(app)
    assert create_camera("small", str(clip), max_picture_pixels=20_000).max_pixels == 20_000
    assert not hasattr(create_camera("p", "pattern", max_picture_pixels=20_000), "max_pixels")


@pytest.mark.parametrize("value", [0, 4095, 200_000_001, "lots", 1.5, float("nan")])
def test_a_value_out_of_range_is_one_line_naming_the_setting(value: object) -> None:
    with pytest.raises(ConfigError) as error:
        create_app({"SOURCE": "pattern", "MAX_PICTURE_PIXELS": value})
    message = str(error.value)
    assert "MAX_PICTURE_PIXELS" in message and "4096" in message and "\n" not in message, message


def test_a_stream_bigger_than_the_setting_is_refused_with_its_size_in_the_status(tmp_path: Path) -> None:
    clip = h264_clip(tmp_path / "clip.mp4", 10, 20)  # 160x120: 19,200 pixels
    assert_refused({"CAMERAS": {"cam": str(clip)}, "MAX_PICTURE_PIXELS": 10_000}, "160x120")


@pytest.fixture
def rtsp() -> Iterator[RtspServer]:
    server = RtspServer()
    yield server
    server.stop()


def test_an_rtsp_camera_bigger_than_the_setting_is_refused_with_its_size_in_the_status(rtsp: RtspServer) -> None:
    # The case: a camera's H.264 (its SPS) claiming more than allowed, read by camstream's own RTSP reader.
    assert_refused({"CAMERAS": {"cam": rtsp.url("live")}, "MAX_PICTURE_PIXELS": 10_000}, "320x240")


def assert_refused(config: dict, size: str) -> None:
    """The camera ``cam`` of an app made with ``config`` never sends a picture, and its status says ``size``."""
    app = create_app(config)
    camera = runtime_of(app).cameras["cam"]
    try:
        with camera.subscribe() as viewer:
            assert wait_until(lambda: camera.status()["last_error"], 20)
            frame = viewer.next_frame(10)
            assert frame is not None and not frame.live, "viewers see 'no signal', never a picture of the stream"
        status = camera.status()
        assert status["state"] in ("reconnecting", "failed") and status["frames_captured"] == 0
        reason = status["last_error"]
        assert size in reason and "10,000" in reason and "\n" not in reason, reason
    finally:
        shutdown(app)
