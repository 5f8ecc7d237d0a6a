"""Detectors on other machines: a real nats-server (Debian's), real `camstream worker` processes, camstream on
a real waitress. Results come back by the paths a local detector's take; workers share the load, die and are
replaced; the broker goes away and comes back; slow and lying workers are counted, never believed."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

import camera.remote.detection as remote_detection
from tests.config.test_cli import env, run_cli, running  # noqa: F401 - a fixture
from tests.helpers import MjpegReader, free_port, get, get_json, wait_until
from tests.sources import SceneCamera

nats = pytest.importorskip("nats")
NATS_SERVER = shutil.which("nats-server") or next(
    (path for path in ("/usr/sbin/nats-server", "/usr/bin/nats-server") if Path(path).exists()), None)
if NATS_SERVER is None:
    if os.environ.get("CI"):
        raise RuntimeError("nats-server is missing; .ci/run should have installed it")
    pytest.skip("nats-server is not installed (.ci/run installs Debian's)", allow_module_level=True)

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "s3cret-nats-pass"


class NatsServer:
    """nats-server on 127.0.0.1 (with a user and password if ``secured``); stopped and started again on the
    same port."""

    def __init__(self, secured: bool = False, config: Path | None = None) -> None:
        self.port = free_port()
        self.secured = secured
        self.config = config
        self.process: subprocess.Popen | None = None
        self.start()

    @property
    def url(self) -> str:
        return f"nats://camstream:{PASSWORD}@127.0.0.1:{self.port}" if self.secured else f"nats://127.0.0.1:{self.port}"

    def start(self) -> None:
        extra = ["--user", "camstream", "--pass", PASSWORD] if self.secured else []
        extra += ["-c", str(self.config)] if self.config else []
        self.process = subprocess.Popen([NATS_SERVER, "-a", "127.0.0.1", "-p", str(self.port), *extra],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        assert wait_until(self._listening, 10), "nats-server did not start"

    def _listening(self) -> bool:
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
            return True
        except OSError:
            return False

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


class Worker:
    """A `camstream worker` process, ready once it says it answers its group."""

    def __init__(self, url: str, group: str, spec: str, *extra: str, env: dict | None = None) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "webapp", "worker", "--broker", url, "--group", group, "--detect", spec, *extra],
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
        self.lines: list[str] = []
        ready = threading.Event()

        def read() -> None:
            assert self.process.stderr is not None
            for line in self.process.stderr:
                self.lines.append(line)
                if "answers group" in line:
                    ready.set()

        threading.Thread(target=read, daemon=True).start()
        assert ready.wait(30), f"the worker never got ready: {self.lines}"

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)


@pytest.fixture
def broker():
    server = NatsServer()
    yield server
    server.stop()


@pytest.fixture
def workers():
    started: list[Worker] = []

    def start(url: str, group: str, spec: str = "tests.detectors:find_squares", *extra: str,
              env: dict | None = None) -> Worker:
        worker = Worker(url, group, spec, *extra, env=env)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.kill()


def detection_status(site: str, name: str = "scene") -> dict:
    return get_json(f"{site}/api/cameras/{name}")[1]["detection"]


def results(site: str) -> int:
    return detection_status(site)["results"]


def test_a_workers_results_reach_detections_and_events(broker, workers, serve_app, tmp_path):
    workers(broker.url, "squares")
    scene = SceneCamera(rate=15)
    site = serve_app({"CAMERAS": {"scene": scene}, "DETECT": {"scene": "remote:squares"}, "BROKER": broker.url,
                      "DETECT_FPS": 5, "RECORD": {"scene": "events"}, "STORAGE": str(tmp_path / "store"),
                      "MIN_FREE": 0})
    assert wait_until(lambda: get_json(f"{site}/api/cameras/scene/detections")[0] == 200, 30)
    result = get_json(f"{site}/api/cameras/scene/detections")[1]
    [found] = result["detections"]
    assert found["label"] == "square" and result["detector"] == "remote:squares"
    x, y, w, h = found["box"]
    assert (w, h) == (SceneCamera.SIZE, SceneCamera.SIZE) and 0 <= x < 320 and 0 <= y < 240
    assert wait_until(lambda: get_json(f"{site}/api/events")[1]["events"], 30), "an event from a worker's results"
    status = detection_status(site)
    remote = status["remote"]
    assert status["state"] == "running" and remote["broker"] == "connected" and remote["workers_seen"] == 1
    assert remote["group"] == "squares" and status["result_age_ms"] is not None
    assert get_json(f"{site}/healthz")[1]["broker"]["state"] == "connected"


def test_two_workers_share_the_frames_and_one_killed_mid_run_costs_only_its_frames_in_flight(
        broker, workers, serve_app):
    first = workers(broker.url, "slow", "tests.detectors:slow_squares")
    workers(broker.url, "slow", "tests.detectors:slow_squares")
    # 0.3 s a frame: one worker answers about 3 a second, two about 6 of the 8 asked for.
    site = serve_app({"CAMERAS": {"scene": SceneCamera(rate=15)}, "DETECT": {"scene": "remote:slow"},
                      "BROKER": broker.url, "DETECT_FPS": 8, "REMOTE_IN_FLIGHT": 2, "REMOTE_TIMEOUT": 3})
    assert wait_until(lambda: detection_status(site)["remote"]["workers_seen"] == 2, 30), \
        "both workers answered: NATS shared the requests between them"
    before = detection_status(site)["remote"]
    first.kill()
    later = results(site)
    # The frames the killed worker held time out after 3 s; results go on from the other one all the while.
    assert wait_until(lambda: results(site) >= later + 10, 30), "the other worker took over"
    after = detection_status(site)["remote"]
    lost = after["timeouts"] + after["refused"] - before["timeouts"] - before["refused"]
    assert lost <= 2, f"at most the frames in flight at the kill were lost, not {lost}"
    assert wait_until(lambda: detection_status(site)["state"] == "running", 10), "results after the losses"


def test_the_video_goes_on_without_the_broker_and_results_come_back_with_it(broker, workers, serve_app):
    workers(broker.url, "squares")
    site = serve_app({"CAMERAS": {"scene": SceneCamera(rate=15)}, "DETECT": {"scene": "remote:squares"},
                      "BROKER": broker.url, "DETECT_FPS": 5})
    assert wait_until(lambda: results(site) >= 3, 30)
    broker.stop()
    assert wait_until(lambda: detection_status(site)["remote"]["broker"] != "connected", 20)
    with MjpegReader(f"{site}/video_feed/scene") as reader:
        frames = reader.read(30)  # (each within the reader's timeout)
    assert len(frames) == 30, "the camera streams on with the broker gone"
    assert get_json(f"{site}/api/cameras/scene")[1]["state"] == "streaming"
    status = detection_status(site)
    assert status["state"] == "error" and status["last_error"], status
    stalled = results(site)
    broker.start()
    assert wait_until(lambda: detection_status(site)["remote"]["broker"] == "connected", 30)
    assert wait_until(lambda: results(site) >= stalled + 3, 30), "the worker came back too, and results with it"
    assert detection_status(site)["state"] == "running"


def test_a_worker_slower_than_the_deadline_gives_timeouts_never_stale_results(broker, workers, serve_app):
    workers(broker.url, "sleepy", "tests.detectors:slow_squares")
    site = serve_app({"CAMERAS": {"scene": SceneCamera(rate=15)}, "DETECT": {"scene": "remote:sleepy"},
                      "BROKER": broker.url, "DETECT_FPS": 5, "REMOTE_TIMEOUT": 0.1})
    assert wait_until(lambda: detection_status(site)["remote"]["timeouts"] >= 5, 30)
    status = detection_status(site)
    assert status["results"] == 0 and status["state"] == "error" and "within 0.1 s" in status["last_error"]
    assert get_json(f"{site}/api/cameras/scene/detections")[0] == 404, "no result ever came from a late reply"


def lying_worker(url: str, group: str, stop: threading.Event) -> threading.Thread:
    """A worker that answers every frame with something that is not its answer."""

    async def serve() -> None:
        client = await nats.connect(url)
        replies = [b"\xff not json", b"[]", json.dumps({"camera": "elsewhere", "seq": 1, "detections": []}).encode()]
        count = 0

        async def answer(message) -> None:
            nonlocal count
            headers = message.headers or {}
            wrong_seq = {"camera": headers.get("Camstream-Camera"), "seq": -1, "detections": []}
            bad_box = {"camera": headers.get("Camstream-Camera"), "seq": int(headers.get("Camstream-Seq", 0)),
                       "detections": [{"label": "x", "score": 2.0, "box": [0, 0, 1, 1]}]}
            # A well-formed answer, but from a worker of a new name each time: remembered within bounds.
            renamed = {"camera": headers.get("Camstream-Camera"), "seq": int(headers.get("Camstream-Seq", 0)),
                       "worker": f"made-up-{count}", "detections": []}
            choices = [*replies, json.dumps(wrong_seq).encode(), json.dumps(bad_box).encode(),
                       json.dumps(renamed).encode()]
            await message.respond(choices[count % len(choices)])
            count += 1

        await client.subscribe(f"camstream.detect.{group}", queue=group, cb=answer)
        while not stop.is_set():
            await asyncio.sleep(0.05)
        await client.close()

    thread = threading.Thread(target=asyncio.run, args=(serve(),), daemon=True)
    thread.start()
    return thread


def test_replies_that_are_garbage_or_for_another_frame_are_counted_not_believed(broker, serve_app, monkeypatch):
    monkeypatch.setattr(remote_detection, "MAX_WORKERS", 3)
    stop = threading.Event()
    thread = lying_worker(broker.url, "liars", stop)
    try:
        site = serve_app({"CAMERAS": {"scene": SceneCamera(rate=15)}, "DETECT": {"scene": "remote:liars"},
                          "BROKER": broker.url, "DETECT_FPS": 10})
        assert wait_until(lambda: detection_status(site)["remote"]["bad_replies"] >= 10, 30)
        status = detection_status(site)
        # Only the well-formed answers (one in six) were taken in; everything else was counted as bad.
        assert status["remote"]["bad_replies"] >= 4 * (status["results"] - 1), status
        assert wait_until(lambda: detection_status(site)["remote"]["bad_replies"] >= 25, 30)
        assert detection_status(site)["remote"]["workers_seen"] == 3, "a made-up name each time: three kept"
    finally:
        stop.set()
        thread.join(10)


def test_a_group_without_workers_says_so(broker, serve_app):
    site = serve_app({"CAMERAS": {"scene": SceneCamera(rate=15)}, "DETECT": {"scene": "remote:nobody"},
                      "BROKER": broker.url})
    assert wait_until(lambda: detection_status(site)["remote"]["refused"] >= 2, 20)
    assert "no worker of 'nobody' is up" in detection_status(site)["last_error"]
    assert get_json(f"{site}/api/cameras/scene")[1]["state"] == "streaming"


def test_a_frame_above_the_brokers_largest_message_is_refused_and_the_detector_goes_on(workers, serve_app,
                                                                                        tmp_path):
    config = tmp_path / "nats.conf"
    config.write_text("max_payload: 2000\n")  # a 320x240 JPEG is several times that
    small = NatsServer(config=config)
    try:
        workers(small.url, "squares")
        site = serve_app({"CAMERAS": {"scene": SceneCamera(rate=15)}, "DETECT": {"scene": "remote:squares"},
                          "BROKER": small.url, "DETECT_FPS": 5})
        assert wait_until(lambda: detection_status(site)["remote"]["refused"] >= 5, 30), detection_status(site)
        status = detection_status(site)
        assert status["state"] == "error" and "refused the frame" in status["last_error"], status
        assert status["remote"]["sent"] >= 5 and status["results"] == 0
        sent = status["remote"]["sent"]
        assert wait_until(lambda: detection_status(site)["remote"]["sent"] > sent + 3, 20), "it goes on trying"
    finally:
        small.stop()


def test_broker_credentials_never_show(workers, serve_app):
    secured = NatsServer(secured=True)
    try:
        workers(secured.url, "squares")
        site = serve_app({"CAMERAS": {"scene": SceneCamera(rate=15)}, "DETECT": {"scene": "remote:squares"},
                          "BROKER": secured.url})
        assert wait_until(lambda: results(site) >= 2, 30), "the password reached NATS"
        wrong = serve_app({"CAMERAS": {"scene": SceneCamera(rate=15)}, "DETECT": {"scene": "remote:squares"},
                           "BROKER": secured.url.replace(PASSWORD, "wrong-password-here")})
        assert wait_until(lambda: get_json(f"{wrong}/healthz")[1]["broker"]["last_error"], 20)
        for base in (site, wrong):
            for path in ("/healthz", "/api/cameras", "/api/cameras/scene", "/metrics"):
                text = get(base + path)[2].decode()
                assert PASSWORD not in text and "wrong-password-here" not in text, path
        assert "***" in get_json(f"{site}/healthz")[1]["broker"]["url"]
    finally:
        secured.stop()


def test_tls_to_a_broker_whose_certificate_the_machine_trusts(workers, running, tmp_path):  # noqa: F811
    """tls:// with a certificate of a CA made here, trusted through SSL_CERT_FILE (as a machine's own CA
    store would): the server and the worker both connect, and results come."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("no openssl to make a certificate with")

    def run(*args: str) -> None:
        subprocess.run([openssl, *args], cwd=tmp_path, capture_output=True, check=True, timeout=60)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "1",
        "-subj", "/CN=camstream test CA")
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1")
    (tmp_path / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    run("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out",
        "server.pem", "-days", "1", "-extfile", "san.ext")
    config = tmp_path / "tls.conf"
    config.write_text(f'tls {{\n  cert_file: "{tmp_path / "server.pem"}"\n  key_file: "{tmp_path / "server.key"}"\n}}\n')
    secure = NatsServer(config=config)
    url = f"tls://127.0.0.1:{secure.port}"
    trusting = env(SSL_CERT_FILE=str(tmp_path / "ca.pem"))
    try:
        workers(url, "tls", "motion", env=trusting)
        server = running([sys.executable, "-m", "webapp", "--port", "0", "--camera", "door=pattern",
                          "--detect", "door=remote:tls", "--broker", url], trusting, ROOT)
        base = "http://127.0.0.1:" + server.wait_for_line(r"open http://localhost:(\d+)/").group(1)
        assert wait_until(lambda: detection_status(base, "door")["results"] >= 2, 30), detection_status(base, "door")
        assert detection_status(base, "door")["remote"]["broker"] == "connected"
    finally:
        secure.stop()


@pytest.mark.parametrize("argv, says", [
    (["--port", "0", "--camera", "door=pattern", "--detect", "door=remote:coco"], "needs a broker"),
    (["--port", "0", "--camera", "door=pattern", "--detect", "door=remote:co.co", "--broker", "nats://127.0.0.1:1"],
     "worker group"),
    (["--port", "0", "--camera", "door=pattern", "--detect", "door=motion", "--broker", "http://127.0.0.1:1"],
     "BROKER must be"),
    (["worker", "--group", "g", "--detect", "motion"], "--broker"),
    (["worker", "--group", "a.b", "--detect", "motion", "--broker", "nats://127.0.0.1:1"], "--group"),
    (["worker", "--group", "g", "--detect", "remote:g", "--broker", "nats://127.0.0.1:1"], "runs a detector itself"),
    (["worker", "--group", "g", "--detect", "motoin", "--broker", "nats://127.0.0.1:1"], "did you mean"),
])
def test_wrong_remote_settings_exit_2_with_one_line(argv, says):
    done = run_cli(*argv)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and says in lines[0], lines
