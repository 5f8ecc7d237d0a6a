"""The broker locked down: Debian's nats-server started with the shipped examples/nats/nats-server.conf (TLS,
users and permissions; passwords made here and handed to it in its environment, as the file says), a real
`camstream worker`, camstream on a real waitress. Nobody but the worker sees a frame, nobody but the worker
puts a detection on the camera, a refused login says so, and no password is ever shown."""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from camera.remote.link import BrokerLink
from camera.remote.protocol import REPLY_PREFIX
from tests.config.test_cli import env
from tests.helpers import get, get_json, wait_until
from tests.remote.test_workers import ROOT, NatsServer, detection_status, results, workers  # noqa: F401 - a fixture
from tests.sources import SceneCamera

nats = pytest.importorskip("nats")
OPENSSL = shutil.which("openssl")
if OPENSSL is None:
    pytest.skip("no openssl to make the broker's certificate with", allow_module_level=True)

SHIPPED = ROOT / "examples" / "nats" / "nats-server.conf"
GROUP = "coco"  # the group the shipped file's worker user serves


@pytest.fixture(scope="module")
def certificates(tmp_path_factory) -> Path:
    """A CA made here and the broker's certificate for 127.0.0.1, signed by it (as the TLS test makes them)."""
    folder = tmp_path_factory.mktemp("nats-tls")

    def run(*args: str) -> None:
        subprocess.run([OPENSSL, *args], cwd=folder, capture_output=True, check=True, timeout=60)

    curve = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    run("req", "-x509", *curve, "-keyout", "ca.key", "-out", "ca.pem", "-days", "1", "-subj", "/CN=camstream test CA")
    run("req", *curve, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1")
    (folder / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    run("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out",
        "server.pem", "-days", "1", "-extfile", "san.ext")
    return folder


class LockedBroker:
    """nats-server with the shipped config: its certificate paths pointed at ``certificates``, the two
    passwords (made here) in its environment."""

    def __init__(self, certificates: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        # Beginning with a letter: nats-server reads a variable as a config value ("-x" or "123" is not a string).
        self.server_password = "p" + secrets.token_urlsafe(18)
        self.worker_password = "p" + secrets.token_urlsafe(18)
        text = getattr(self, "shipped", None) or SHIPPED.read_text()
        assert '"/etc/nats/tls/server.pem"' in text and "$NATS_CAMSTREAM_PASSWORD" in text
        config = tmp_path / "nats-server.conf"
        config.write_text(text.replace("/etc/nats/tls/", f"{certificates}/"))
        # nats-server reads the passwords from its environment (it inherits this one); camstream, in this
        # process, and the workers trust the test CA through SSL_CERT_FILE.
        monkeypatch.setenv("NATS_CAMSTREAM_PASSWORD", self.server_password)
        monkeypatch.setenv("NATS_COCO_WORKER_PASSWORD", self.worker_password)
        monkeypatch.setenv("SSL_CERT_FILE", str(certificates / "ca.pem"))
        self.server = NatsServer(config=config)
        self.trusting = env(SSL_CERT_FILE=str(certificates / "ca.pem"))

    def url(self, user: str | None = None, password: str | None = None) -> str:
        login = f"{user}:{password}@" if user else ""
        return f"tls://{login}127.0.0.1:{self.server.port}"

    @property
    def as_server(self) -> str:
        return self.url("camstream", self.server_password)

    @property
    def as_worker(self) -> str:
        return self.url("coco-worker", self.worker_password)

    def secrets(self) -> list[str]:
        return [self.server_password, self.worker_password]


@pytest.fixture
def locked(certificates, tmp_path, monkeypatch):
    broker = LockedBroker(certificates, tmp_path, monkeypatch)
    yield broker
    broker.server.stop()


class Intruder:
    """A plain nats-py client that, with ``url``'s credentials (or none), subscribes to ``watch`` (subject,
    queue group) and keeps publishing a reply that puts a ``person`` on the camera to each of ``forge``."""

    def __init__(self, url: str, watch: list[tuple[str, str | None]] = (), forge: list[str] = ()) -> None:
        self.url, self.watch, self.forge = url, list(watch), list(forge)
        self.seen: list[str] = []
        self.errors: list[str] = []
        self.refused: str | None = None
        self.forged = 0
        self.ready = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=asyncio.run, args=(self._run(),), daemon=True)
        self._thread.start()
        assert self.ready.wait(20), "the intruder never got going"

    async def _run(self) -> None:
        async def error(exc: Exception) -> None:
            self.errors.append(str(exc))

        async def received(message) -> None:
            self.seen.append(message.subject)

        try:
            client = await nats.connect(self.url, allow_reconnect=False, connect_timeout=5, error_cb=error)
        except Exception as exc:  # noqa: BLE001 - whatever nats-py says for a refused login
            self.refused = str(exc)
            self.ready.set()
            return
        for subject, queue in self.watch:
            await client.subscribe(subject, queue=queue or "", cb=received)
        await client.flush()
        self.ready.set()
        forged = json.dumps({"camera": "scene", "seq": 1, "worker": "forger", "detections": [
            {"label": "person", "score": 0.99, "box": [10, 10, 50, 100]}]}).encode()
        while not self._stop.is_set():
            for subject in self.forge:
                await client.publish(subject, forged)
                self.forged += 1
            await client.flush()
            await asyncio.sleep(0.1)
        await client.close()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(20)

    def denials(self) -> list[str]:
        return [error for error in self.errors if "permissions violation" in error]


def linked(monkeypatch: pytest.MonkeyPatch) -> list[BrokerLink]:
    """The BrokerLinks started from now on (to learn the server's reply subjects, as an attacker could guess)."""
    started: list[BrokerLink] = []
    original = BrokerLink.start

    def start(link: BrokerLink) -> None:
        started.append(link)
        original(link)

    monkeypatch.setattr(BrokerLink, "start", start)
    return started


def camera(site_config: dict, broker_url: str) -> dict:
    return {"CAMERAS": {"scene": SceneCamera(rate=15)}, "DETECT": {"scene": f"remote:{GROUP}"},
            "BROKER": broker_url, "DETECT_FPS": 5, **site_config}


def test_with_the_shipped_config_only_the_worker_sees_frames_and_only_its_results_reach_the_camera(
        locked, workers, serve_app, monkeypatch, caplog):  # noqa: F811
    caplog.set_level(logging.DEBUG)
    links = linked(monkeypatch)
    worker = workers(locked.as_worker, GROUP, "tests.detectors:find_squares", env=locked.trusting)
    site = serve_app(camera({}, locked.as_server))
    assert wait_until(lambda: results(site) >= 2, 30), detection_status(site)
    assert wait_until(lambda: links[0]._client._resp_sub_prefix is not None, 10)
    inbox = links[0]._client._resp_sub_prefix.decode()
    assert inbox.startswith(REPLY_PREFIX + "."), inbox

    # Every reply that reaches the server's inbox, as another camstream server (the one user allowed to) sees it.
    replies: list[dict] = []

    async def watch_replies(message) -> None:
        replies.append(json.loads(message.data))

    anonymous = Intruder(locked.url())
    as_worker = Intruder(locked.as_worker, watch=[("camstream.detect.>", None), (f"camstream.detect.{GROUP}", "spy"),
                                                  (f"{REPLY_PREFIX}.>", None)],
                         forge=[inbox + "forged", f"{REPLY_PREFIX}.anything"])
    as_server = Intruder(locked.as_server, watch=[("camstream.detect.>", None), (f"camstream.detect.{GROUP}", GROUP)],
                         forge=[inbox + "forged"])
    wrong = Intruder(locked.url("coco-worker", "not-the-password"), watch=[("camstream.detect.>", None)])
    stop = threading.Event()

    async def listen() -> None:
        client = await nats.connect(locked.as_server)
        await client.subscribe(f"{REPLY_PREFIX}.>", cb=watch_replies)
        while not stop.is_set():
            await asyncio.sleep(0.05)
        await client.close()

    listener = threading.Thread(target=asyncio.run, args=(listen(),), daemon=True)
    listener.start()
    try:
        start = results(site)
        assert wait_until(lambda: results(site) >= start + 15 and len(replies) >= 10, 30), detection_status(site)
        assert wait_until(lambda: as_worker.forged >= 20 and as_server.forged >= 10, 10)
    finally:
        stop.set()
        for intruder in (anonymous, as_worker, as_server, wrong):
            intruder.stop()
        listener.join(20)

    assert anonymous.refused and "authorization violation" in anonymous.refused.lower(), "no anonymous access"
    assert wrong.refused and "authorization violation" in wrong.refused.lower()
    assert as_worker.seen == [] and as_server.seen == [], "nobody but the worker in its queue group saw a frame"
    # Each subscription and each forged reply was refused by the broker itself, not merely unanswered.
    said = " | ".join(as_worker.denials())
    assert 'subscription to "camstream.detect.>"' in said and 'using queue "spy"' in said, said
    assert f'subscription to "{REPLY_PREFIX}.>"' in said and f'publish to "{inbox.lower()}forged"' in said.lower()
    said = " | ".join(as_server.denials())
    assert 'subscription to "camstream.detect.>"' in said and f'publish to "{inbox.lower()}forged"' in said.lower()
    # What reached the server's inbox was the worker's answers, and nothing else.
    assert replies and {reply.get("worker") for reply in replies} == {worker_name(worker)}, replies[:3]
    assert all(item["label"] == "square" for reply in replies for item in reply["detections"])
    found = get_json(f"{site}/api/cameras/scene/detections")[1]["detections"]
    assert [item["label"] for item in found] == ["square"]
    status = detection_status(site)
    assert status["remote"]["bad_replies"] == 0 and status["remote"]["workers_seen"] == 1, status
    shown_nowhere(site, locked.secrets(), caplog.text, worker.lines)


def worker_name(worker) -> str:
    """The name a worker gives itself in replies, host:pid."""
    import socket

    return f"{socket.gethostname()}:{worker.process.pid}"


def test_a_wrong_password_shows_as_refused_and_no_password_shows_anywhere(locked, serve_app, caplog):
    caplog.set_level(logging.DEBUG)
    wrong_password = "wrong-" + secrets.token_urlsafe(12)
    site = serve_app(camera({}, locked.url("camstream", wrong_password)))
    nobody = serve_app(camera({}, locked.url()))  # no credentials at all
    for base in (site, nobody):
        assert wait_until(lambda base=base: "the broker refused the credentials" in str(
            detection_status(base)["last_error"]), 10), detection_status(base)
        status = detection_status(base)
        assert status["state"] == "error" and status["remote"]["broker"] == "refused", status
        assert get_json(f"{base}/healthz")[1]["broker"]["state"] == "refused"
        assert get_json(f"{base}/healthz")[1]["broker"]["last_error"] == "the broker refused the credentials"
        assert get_json(f"{base}/api/cameras/scene")[1]["state"] == "streaming", "the video goes on"
    # The log says it too, once, and not as a connection reset.
    refusals = [record for record in caplog.records if record.name == "camstream.broker"
                and "the broker refused the credentials" in record.getMessage()]
    assert len(refusals) == 2 and all(record.levelno == logging.ERROR for record in refusals), caplog.text
    assert "reset by peer" not in caplog.text.lower() and "eof_received" not in caplog.text, caplog.text

    # A worker with a wrong password says the same, and keeps trying.
    worker = subprocess.Popen([sys.executable, "-m", "webapp", "worker", "--broker",
                               locked.url("coco-worker", wrong_password), "--group", GROUP, "--detect", "motion"],
                              cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                              env=locked.trusting)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(worker.stderr), daemon=True)
    reader.start()
    try:
        assert wait_until(lambda: any("refused" in line for line in list(lines)), 30), lines
        assert worker.poll() is None, "it keeps trying"
    finally:
        worker.kill()
        worker.wait(10)
        reader.join(10)
    assert any("the broker refused the credentials" in line for line in lines), lines
    assert not any("Traceback" in line for line in lines), lines
    shown_nowhere(site, [*locked.secrets(), wrong_password], caplog.text, lines)
    shown_nowhere(nobody, [*locked.secrets(), wrong_password], caplog.text, lines)


def test_a_worker_the_broker_does_not_let_take_a_groups_frames_stops_and_says_why(locked):
    done = subprocess.run([sys.executable, "-m", "webapp", "worker", "--broker", locked.as_worker, "--group", "other",
                           "--detect", "motion"], cwd=ROOT, capture_output=True, text=True, timeout=60,
                          env=locked.trusting, check=False)
    assert done.returncode == 1, done.stderr
    assert "does not let this worker take the frames of group 'other'" in done.stderr, done.stderr
    assert 'permissions violation for subscription to "camstream.detect.other" using queue "other"' in done.stderr
    assert locked.worker_password not in done.stderr


def test_a_server_whose_user_may_not_send_frames_says_the_broker_refused_them(locked, workers, serve_app):  # noqa: F811
    workers(locked.as_worker, GROUP, "tests.detectors:find_squares", env=locked.trusting)
    site = serve_app(camera({"REMOTE_TIMEOUT": 0.5}, locked.as_worker))  # a worker's login cannot publish frames
    assert wait_until(lambda: "permissions violation for publish" in str(detection_status(site)["last_error"]), 20), \
        detection_status(site)
    assert detection_status(site)["results"] == 0


def test_the_same_intruder_sees_frames_on_an_open_broker(workers, serve_app):  # noqa: F811
    """What the shipped config stops: on a broker without it, a plain client sees every frame."""
    open_broker = NatsServer()
    try:
        workers(open_broker.url, GROUP, "tests.detectors:find_squares")
        site = serve_app(camera({}, open_broker.url))
        intruder = Intruder(open_broker.url, watch=[("camstream.detect.>", None)])
        try:
            assert wait_until(lambda: len(intruder.seen) >= 3, 30), detection_status(site)
        finally:
            intruder.stop()
        assert intruder.denials() == []
    finally:
        open_broker.stop()


def shown_nowhere(site: str, hidden: list[str], log_text: str, *more: list[str]) -> None:
    for path in ("/healthz", "/api/cameras", "/api/cameras/scene", "/metrics"):
        text = get(site + path)[2].decode()
        for secret in hidden:
            assert secret not in text, path
    for secret in hidden:
        assert secret not in log_text, "a password in the server's log"
        for lines in more:
            assert not any(secret in line for line in lines), "a password in a worker's log"


def test_the_docs_show_the_shipped_file_as_it_is():
    """docs/detection.md has the file whole, docs/scaling.md its users: both as shipped, read as they are on a
    Git host (no build step puts them there)."""
    shipped = SHIPPED.read_text().rstrip()
    detection = (ROOT / "docs" / "detection.md").read_text()
    assert f"```conf\n{shipped}\n```" in detection, "docs/detection.md's copy of examples/nats/nats-server.conf"
    scaling = (ROOT / "docs" / "scaling.md").read_text()
    start = scaling.index("```conf\nauthorization {") + len("```conf\n")
    excerpt = scaling[start:scaling.index("\n```", start)]
    assert shipped.endswith(excerpt), "docs/scaling.md's users are the shipped file's"


def test_a_worker_that_logs_in_with_an_nkey(certificates, tmp_path, monkeypatch, workers, serve_app, caplog):  # noqa: F811
    """The shipped file with the worker's password swapped for an NKey: the worker answers with its seed file
    (?nkey=PATH), and a camstream with a seed the broker does not know is refused."""
    nkeys = pytest.importorskip("nkeys")

    def seed_file(name: str) -> tuple[Path, str]:
        seed = nkeys.encode_seed(secrets.token_bytes(32), nkeys.PREFIX_BYTE_USER)
        path = tmp_path / f"{name}.nk"
        path.write_bytes(seed + b"\n")
        path.chmod(0o600)
        return path, nkeys.from_seed(bytearray(seed)).public_key.decode()

    worker_seed, worker_key = seed_file("worker")
    stranger_seed, _ = seed_file("stranger")
    text = SHIPPED.read_text()
    login = "user: coco-worker\n      password: $NATS_COCO_WORKER_PASSWORD"
    assert login in text
    monkeypatch.setattr(LockedBroker, "shipped", text.replace(login, f"nkey: {worker_key}"), raising=False)
    locked = LockedBroker(certificates, tmp_path, monkeypatch)
    try:
        caplog.set_level(logging.DEBUG)
        workers(f"{locked.url()}?nkey={worker_seed}", GROUP, "tests.detectors:find_squares", env=locked.trusting)
        site = serve_app(camera({}, locked.as_server))
        assert wait_until(lambda: results(site) >= 2, 30), detection_status(site)
        stranger = serve_app(camera({}, f"{locked.url()}?nkey={stranger_seed}"))
        assert wait_until(lambda: "the broker refused the credentials" in str(
            detection_status(stranger)["last_error"]), 10), detection_status(stranger)
        assert detection_status(stranger)["remote"]["broker"] == "refused"
        seeds = [path.read_text().strip() for path in (worker_seed, stranger_seed)]
        shown_nowhere(stranger, seeds, caplog.text)
    finally:
        locked.server.stop()
