"""What one request may wake: a /streams request carries a bounded number of cameras, cameras open a few at a
time, and a token whose camera a reload removed gets a 4xx, never a 500."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator

import numpy as np

from camera import IDLE, STREAMING, BaseCamera
from camera.base import MAX_OPENING
from camera.pacing import Pacer
from tests.auth_helpers import HASHES, PASSWORDS, Client, Recorder, basic
from tests.config.test_cli import env, running  # noqa: F401 - a fixture
from tests.config.test_config_reload import Watching
from tests.helpers import get_json, wait_until
from webapp.api.streams import MAX_STREAM_CAMERAS


class SlowToOpen(BaseCamera):
    """Takes a while to open (a connection, a demuxer probing), and counts how many open at once."""

    lock = threading.Lock()
    opening = 0
    most_at_once = 0

    def __init__(self, name: str) -> None:
        super().__init__(name, source="slow")

    def frames(self) -> Iterator[np.ndarray]:
        cls = type(self)
        with cls.lock:
            cls.opening += 1
            cls.most_at_once = max(cls.most_at_once, cls.opening)
        try:
            time.sleep(0.3)  # the source's own opening time, what is being simulated
        finally:
            with cls.lock:
                cls.opening -= 1
        pacer = Pacer(5)
        while True:
            pacer.wait()
            yield np.zeros((16, 16, 3), np.uint8)


def test_one_stream_carries_a_bounded_number_of_cameras_and_says_so(serve_app):
    names = [f"cam{n}" for n in range(MAX_STREAM_CAMERAS + 1)]
    base = serve_app({"CAMERAS": dict.fromkeys(names, "pattern")})
    for path in ("/streams", "/streams?cameras=" + ",".join(names)):
        status, body = get_json(base + path)
        assert status == 400 and f"at most {MAX_STREAM_CAMERAS} cameras" in body["error"], body
    _, cameras = get_json(base + "/api/cameras")
    assert {camera["state"] for camera in cameras["cameras"]} == {IDLE}, "a refused request started nothing"


def test_cameras_open_a_few_at_a_time(serve_app):
    cameras = {f"slow{n}": SlowToOpen(f"slow{n}") for n in range(3 * MAX_OPENING)}
    base = serve_app({"CAMERAS": cameras})
    viewer = Watching(base + "/streams?cameras=" + ",".join(cameras))
    try:
        assert wait_until(lambda: all(camera.state == STREAMING for camera in cameras.values()), 30)
    finally:
        viewer.reader.close()
    assert 1 <= SlowToOpen.most_at_once <= MAX_OPENING, SlowToOpen.most_at_once


CONFIG = """\
    port = 0

    [cameras.door]
    source = "pattern"

    [cameras.{second}]
    source = "pattern"

    [users.ada]
    password_hash = "{hash}"
    role = "admin"
    """


def test_a_token_for_a_camera_a_reload_removed_gets_a_4xx_never_a_500(tmp_path, running):  # noqa: F811
    config = tmp_path / "camstream.toml"
    config.write_text(textwrap.dedent(CONFIG).format(second="yard", hash=HASHES["ada"]))
    server = running([sys.executable, "-m", "webapp", "--config", str(config)], env(), cwd=tmp_path)
    port = int(server.wait_for_line(r"open http://localhost:(\d+)/")[1])
    base = f"http://127.0.0.1:{port}"
    made = subprocess.run([sys.executable, "-m", "webapp", "token", "create", "yard", "--config", str(config)],
                          capture_output=True, text=True, timeout=60, env=env(), cwd=tmp_path, check=False)
    assert made.returncode == 0, made.stderr
    token = next(word for word in made.stdout.split() if word.startswith("cst_"))
    anyone = Client(base, Recorder())
    assert anyone.get(f"/snapshot.jpg?token={token}").status == 200

    config.write_text(textwrap.dedent(CONFIG).format(second="porch", hash=HASHES["ada"]))
    server.process.send_signal(signal.SIGHUP)
    server.wait_for_line(r"reload: ")
    admin = Client(base, Recorder(), basic("ada", PASSWORDS["ada"]))
    assert wait_until(lambda: "porch" in admin.get("/api/cameras").body.decode(), 20)
    for path in ("/video_feed", "/video_feed/yard", "/snapshot.jpg", "/snapshot/yard.jpg", "/streams",
                 "/streams?cameras=yard", "/?action=stream", "/?action=snapshot", "/events"):
        answer = anyone.get(f"{path}{'&' if '?' in path else '?'}token={token}")
        assert answer.status in (401, 404) and answer.json()["error"], (path, answer.status, answer.body[:200])
