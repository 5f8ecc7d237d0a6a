"""MQTT against a real broker the tests start (Debian's mosquitto): retained status with a last will,
availability, detections, label sensors, events, Home Assistant discovery, a broker that goes away."""

import json
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

from tests.config.test_cli import env, running  # noqa: F401 - a fixture
from tests.conftest import Servers
from tests.helpers import MjpegReader, free_port, get_json, wait_until
from tests.sources import SceneCamera
from webapp import create_app
from webapp.config.values import ConfigError
from webapp.runtime.lineup import reload

pytestmark = [pytest.mark.slow, pytest.mark.mqtt]

mqtt = pytest.importorskip("paho.mqtt.client")
MOSQUITTO = shutil.which("mosquitto") or next((path for path in ("/usr/sbin/mosquitto",) if Path(path).exists()), None)
if MOSQUITTO is None:
    pytest.skip("mosquitto is not installed (.ci/run installs Debian's)", allow_module_level=True)


class Broker:
    """mosquitto on 127.0.0.1, no persistence: a restart forgets retained messages."""

    def __init__(self, folder: Path) -> None:
        self.port = free_port()
        self.config = folder / "mosquitto.conf"
        self.config.write_text(f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence false\n")
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen([MOSQUITTO, "-c", str(self.config)], stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL)
        assert wait_until(self._listening, 10), "mosquitto did not start"

    def _listening(self) -> bool:
        with socket.socket() as probe:
            return probe.connect_ex(("127.0.0.1", self.port)) == 0

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)


class Watcher:
    """A client subscribed to everything, keeping each message (topic, payload, retained) in order."""

    def __init__(self, port: int) -> None:
        self.messages: list[tuple[str, str, bool]] = []
        self.lock = threading.Lock()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        self.client.on_connect = lambda client, *args: client.subscribe("#", qos=1)
        self.client.on_message = self._message
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def _message(self, client, userdata, message) -> None:
        with self.lock:
            self.messages.append((message.topic, message.payload.decode(), bool(message.retain)))

    def payloads(self, topic: str) -> list[str]:
        with self.lock:
            return [payload for name, payload, _ in self.messages if name == topic]

    def sync(self, timeout: float = 15) -> None:
        """Wait until the broker has sent every retained message of the subscription: the broker sends them
        while it handles the subscribe, so they come before the echo of a message published after it."""
        assert wait_until(lambda: self.messages, timeout), "the subscription is not active yet"
        marker = f"test/barrier/{uuid.uuid4().hex}"
        self.client.publish(marker, "here", qos=1)
        assert self.wait_for(marker, "here", timeout)

    def wait_for(self, topic: str, payload: str | None = None, timeout: float = 15) -> bool:
        return wait_until(lambda: any(payload is None or seen == payload for seen in self.payloads(topic)), timeout)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


@pytest.fixture
def broker(tmp_path):
    server = Broker(tmp_path)
    server.start()
    yield server
    server.stop()


def test_status_availability_detections_sensors_events_and_discovery(broker, tmp_path):
    scene = SceneCamera(rate=15)
    scene.moving.clear()
    app = create_app({"CAMERAS": {"scene": scene}, "DETECT": {"scene": "motion"}, "DETECT_FPS": 10,
                      "RECORD": {"scene": "events"}, "STORAGE": str(tmp_path / "store"), "MIN_FREE": 0,
                      "EVENT_GAP": 1.0, "MQTT": f"mqtt://127.0.0.1:{broker.port}"})
    watcher = Watcher(broker.port)
    try:
        with Servers() as servers:
            url = servers.start(app)
            assert watcher.wait_for("camstream/status", "online")
            assert watcher.wait_for("camstream/scene/availability", "online")
            def announced() -> list[tuple[str, dict]]:
                return [(topic, json.loads(payload)) for topic, payload, retained in list(watcher.messages)
                        if topic.startswith("homeassistant/binary_sensor/") and topic.endswith("/config")]
            # The discovery config is announced after the camera's availability: wait for it too.
            assert wait_until(announced, 15)
            discovery = announced()
            assert len(discovery) == 1
            config = discovery[0][1]
            assert config["state_topic"] == "camstream/scene/motion" and config["device_class"] == "motion"
            assert {entry["topic"] for entry in config["availability"]} == {"camstream/status",
                                                                          "camstream/scene/availability"}
            assert config["unique_id"] and config["device"]["identifiers"]
            assert watcher.wait_for("camstream/scene/detection")
            assert wait_until(lambda: get_json(f"{url}/api/cameras/scene")[1]["detection"]["results"] >= 10, 20)
            scene.moving.set()
            assert watcher.wait_for("camstream/scene/motion", "ON")
            scene.moving.clear()
            assert watcher.wait_for("camstream/scene/motion", "OFF", 20)
            assert wait_until(lambda: len(watcher.payloads("camstream/scene/event")) >= 2, 20)
            kinds = [json.loads(payload)["type"] for payload in watcher.payloads("camstream/scene/event")]
            assert kinds[:2] == ["start", "end"]
            _, health = get_json(f"{url}/healthz")
            assert health["mqtt"]["connected"] is True and health["mqtt"]["published"] > 0
        # A clean stop says offline itself.
        assert watcher.payloads("camstream/status")[-1] == "offline"
    finally:
        watcher.close()
    # What Home Assistant would find on connecting: retained state.
    late = Watcher(broker.port)
    try:
        assert late.wait_for("camstream/status", "offline")
        assert all(retained for topic, _, retained in late.messages if topic.startswith("homeassistant/"))
    finally:
        late.close()


def test_the_last_will_says_offline_when_camstream_is_killed(broker, running):  # noqa: F811
    watcher = Watcher(broker.port)
    try:
        server = running([sys.executable, "-m", "webapp", "--port", "0", "--camera", "door=pattern",
                          "--mqtt", f"mqtt://watcher:s3cret-pass@127.0.0.1:{broker.port}"], env())
        seen: list[str] = []
        port = server.wait_for_line(r"open http://localhost:(\d+)/", seen=seen).group(1)
        assert watcher.wait_for("camstream/status", "online")
        _, health = get_json(f"http://127.0.0.1:{port}/healthz")
        assert "s3cret-pass" not in json.dumps(health) and health["mqtt"]["broker"].startswith("mqtt://watcher:")
        if not any("connected to MQTT broker" in line for line in seen):
            server.wait_for_line("connected to MQTT broker", seen=seen)
        assert not any("s3cret-pass" in line for line in seen)
        server.process.send_signal(signal.SIGKILL)
        server.process.wait(10)
        assert wait_until(lambda: watcher.payloads("camstream/status")[-1:] == ["offline"], 15)
    finally:
        watcher.close()


def test_a_broker_that_goes_away_slows_nothing_and_is_reconnected(broker):
    app = create_app({"CAMERAS": {"door": SceneCamera("door", rate=20)},
                      "MQTT": f"mqtt://127.0.0.1:{broker.port}"})
    with Servers() as servers:
        url = servers.start(app)
        watcher = Watcher(broker.port)
        assert watcher.wait_for("camstream/status", "online")
        watcher.close()
        with MjpegReader(f"{url}/video_feed/door") as reader:
            reader.read(5)
            broker.stop()
            assert wait_until(lambda: get_json(f"{url}/healthz")[1]["mqtt"]["connected"] is False, 10)
            started = time.monotonic()
            frames = reader.read(40)
            # 40 frames of a 20 fps camera: streaming went on at its pace with the broker gone.
            assert len(frames) == 40 and time.monotonic() - started < 10
            broker.start()
            # A fresh broker has no retained messages: camstream publishes them again once reconnected.
            watcher = Watcher(broker.port)
            try:
                assert watcher.wait_for("camstream/status", "online", 40)
                assert watcher.wait_for("camstream/door/availability", "online")
            finally:
                watcher.close()


@pytest.mark.parametrize("url", ["http://127.0.0.1:1883", "mqtt://", "mqtt://host:99999", "mqtt://u:p@host/x"])
def test_a_wrong_broker_url_is_a_config_error_that_hides_the_password(url):
    with pytest.raises(ConfigError) as error:
        create_app({"SOURCE": "pattern", "MQTT": url})
    assert "MQTT must be" in str(error.value) and ":p@" not in str(error.value)


def test_reloading_announces_added_cameras_and_removes_the_removed_from_home_assistant(broker, tmp_path):
    config = tmp_path / "camstream.toml"
    camera = '[cameras.{}]\nsource = "pattern"\ndetect = "motion"\n'
    config.write_text(f'mqtt = "mqtt://127.0.0.1:{broker.port}"\n' + camera.format("porch"))
    app = create_app({"CONFIG": str(config)})
    watcher = Watcher(broker.port)
    try:
        with Servers() as servers:
            servers.start(app)
            # Announced (offline, or online already if its detector has started it by the time we subscribe).
            assert watcher.wait_for("camstream/porch/availability")
            # Announced after its availability: wait for it too.
            assert wait_until(lambda: any(topic.endswith("_porch_motion/config") for topic, _, _ in list(watcher.messages)),
                              15)
            porch = next(topic for topic, _, _ in list(watcher.messages) if topic.endswith("_porch_motion/config"))
            config.write_text(f'mqtt = "mqtt://127.0.0.1:{broker.port}"\n' + camera.format("shed"))
            change = reload(app)
            assert (change.added, change.removed) == (["shed"], ["porch"])
            shed = porch.replace("_porch_", "_shed_")
            assert watcher.wait_for(shed)
            assert json.loads(watcher.payloads(shed)[-1])["state_topic"] == "camstream/shed/motion"
            # An empty retained config is how Home Assistant is told an entity is gone.
            assert watcher.wait_for(porch, "")
            assert watcher.payloads("camstream/porch/availability")[-1] == "offline"
    finally:
        watcher.close()
    late = Watcher(broker.port)
    try:
        assert late.wait_for("camstream/status", "offline")
        late.sync()
        topics = {topic for topic, _, _ in late.messages}
        assert shed in topics and porch not in topics
    finally:
        late.close()
