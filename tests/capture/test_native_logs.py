"""FFmpeg's and OpenCV's own console lines stay out of camstream's log below --log-level debug."""

import sys

import pytest

from tests.config.test_cli import Running, env, running  # noqa: F401 - a fixture
from tests.helpers import free_port, get


@pytest.mark.parametrize("level, native_lines", [("info", False), ("debug", True)])
def test_ffmpeg_lines_only_at_debug(running, level, native_lines):  # noqa: F811
    # An RTMP camera nothing answers for: FFmpeg prints "[tcp @ 0x...] Connection ... failed" at each try. (An
    # RTSP camera is read by camstream's own client, over TCP.)
    server = running([sys.executable, "-m", "webapp", "--port", "0", "--log-level", level,
                      "--camera", f"door=rtmp://127.0.0.1:{free_port()}/stream"], env())
    port = server.wait_for_line(r"open http://localhost:(\d+)/").group(1)
    get(f"http://127.0.0.1:{port}/snapshot/door.jpg")
    seen: list[str] = []
    # camstream's own line about it comes after FFmpeg's, when FFmpeg prints one.
    server.wait_for_line("camera door: source lost", seen=seen)
    server.stop()
    # OpenCV's FFmpeg prints "[tcp @ 0x...]"; PyAV's goes to the log as "libav.tcp".
    assert any("[tcp @" in line or "libav.tcp" in line for line in seen) == native_lines, seen
