"""SIGHUP: the config file read again by a running server, with viewers watching."""

import http.client
import signal
import sys
import textwrap
import threading
from pathlib import Path

from tests.config.test_cli import env, fetch_json, running  # noqa: F401 (a fixture)
from tests.helpers import MjpegReader, decode, wait_until

BEFORE = """\
    port = 0
    fps = 10

    [cameras.keep]
    source = "pattern"

    [cameras.change]
    source = "pattern"

    [cameras.drop]
    source = "pattern"
    """

AFTER = """\
    port = 0
    fps = 10

    [cameras.keep]
    source = "pattern"

    [cameras.change]
    source = "pattern"
    fps = 5
    quality = 50

    [cameras.new]
    source = "pattern"
    """


class Watching:
    """A viewer reading frames in a thread, counting them until its stream ends."""

    def __init__(self, url: str, headers: dict[str, str] | None = None) -> None:
        self.reader = MjpegReader(url, timeout=30, headers=headers)
        self.frames = 0
        self.first = threading.Event()
        self.ended = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        try:
            for data in self.reader.frames():
                assert decode(data) is not None
                self.frames += 1
                self.first.set()
        except (OSError, ValueError, AttributeError, http.client.HTTPException):
            pass  # the stream was cut, or closed here (http.client then meets a closed file)
        finally:
            self.ended.set()


def start(tmp_path: Path, running):  # noqa: F811 (the fixture, passed on)
    config = tmp_path / "camstream.toml"
    config.write_text(textwrap.dedent(BEFORE))
    server = running([sys.executable, "-m", "webapp", "--config", str(config)], env(), cwd=tmp_path)
    port = int(server.wait_for_line(r"open http://localhost:(\d+)/")[1])
    return config, server, f"http://127.0.0.1:{port}"


def test_reload_touches_only_the_cameras_that_changed(tmp_path, running):  # noqa: F811
    config, server, base = start(tmp_path, running)
    viewers = {name: Watching(f"{base}/video_feed/{name}") for name in ("keep", "change", "drop")}
    assert all(viewer.first.wait(20) for viewer in viewers.values())

    config.write_text(textwrap.dedent(AFTER))
    server.process.send_signal(signal.SIGHUP)
    line = server.wait_for_line(r"reload: (.*)")[1]
    assert line == "added new; removed drop; changed change; 1 camera(s) unchanged"

    # The changed and the removed camera's viewers are ended; the unchanged camera's viewer goes on watching.
    assert viewers["drop"].ended.wait(20) and viewers["change"].ended.wait(20)
    seen = viewers["keep"].frames
    assert not viewers["keep"].ended.is_set()
    with MjpegReader(f"{base}/video_feed/new") as reader:
        assert decode(reader.read(1)[0]) is not None
    cameras = {camera["name"]: camera for camera in fetch_json(f"{base}/api/cameras")["cameras"]}
    assert list(cameras) == ["keep", "change", "new"]
    assert (cameras["change"]["fps"], cameras["change"]["quality"]) == (5, 50)
    assert cameras["keep"]["viewers"] == 1
    with MjpegReader(f"{base}/video_feed/drop") as reader:
        assert reader.status == 404
    wait_for_more(viewers["keep"], seen + 10)


def test_a_wrong_file_on_reload_changes_nothing(tmp_path, running):  # noqa: F811
    config, server, base = start(tmp_path, running)
    viewer = Watching(f"{base}/video_feed/keep")
    assert viewer.first.wait(20)
    text = textwrap.dedent(BEFORE) + "\n[cameras.broken]\nsource = \"pattern\"\nfps = \"fast\"\n"
    config.write_text(text)
    server.process.send_signal(signal.SIGHUP)
    line = server.wait_for_line(r"ERROR camstream: reload: (.*)")[1]
    number = text.splitlines().index('fps = "fast"') + 1
    assert line == f"nothing changed: {config}, line {number}: fps must be a number, not a string ('fast')"
    cameras = [camera["name"] for camera in fetch_json(f"{base}/api/cameras")["cameras"]]
    assert cameras == ["keep", "change", "drop"]
    seen = viewer.frames
    wait_for_more(viewer, seen + 10)
    # Nested past what the reader takes: one line too, and nothing changes.
    config.write_text(textwrap.dedent(BEFORE) + "\n[cameras.deep]\nsource = \"pattern\"\nfps = " + "[" * 5000 +
                      "]" * 5000 + "\n")
    server.process.send_signal(signal.SIGHUP)
    line = server.wait_for_line(r"ERROR camstream: reload: (.*)")[1]
    assert line == f"nothing changed: {config}: a value is nested too deeply (arrays or tables within each other)"
    wait_for_more(viewer, viewer.frames + 10)
    # Mended, it applies.
    config.write_text(textwrap.dedent(AFTER))
    server.process.send_signal(signal.SIGHUP)
    assert server.wait_for_line(r"reload: (.*)")[1].startswith("added new; removed drop; changed change")


def wait_for_more(viewer: Watching, count: int) -> None:
    assert wait_until(lambda: viewer.frames >= count or viewer.ended.is_set(), 20)
    assert not viewer.ended.is_set() and viewer.frames >= count
