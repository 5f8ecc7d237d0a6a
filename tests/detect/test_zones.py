"""Zones, masks and object filters in camstream.toml: read as the issue writes them, turned into a camera's
tracking rules, and a wrong one is one line naming the file, the line, the camera or the key (exit 2)."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from camera.detect import Detection
from camera.track import ObjectFilter, Zone
from camera.track.geometry import MaskCover, bottom_centre, contains, in_pixels
from tests.config.test_cli import run_cli
from webapp.config import tomlfile
from webapp.config.layers import gather
from webapp.config.plan import camera_settings
from webapp.config.values import ConfigError
from webapp.config.zones import rules_for

GOOD = """
    [cameras.door]
    source = "pattern"
    object_mask = [[[500, 0], [640, 0], [640, 100], [500, 100]]]
    motion_mask = [[[0, 0], [200, 0], [200, 30], [0, 30]]]
    required_zones = ["drive"]
    stationary_seconds = 20

    [cameras.door.zones.drive]
    coordinates = [[300, 250], [640, 250], [640, 480], [300, 480]]
    objects = ["person", "car"]
    min_seconds = 1

    [cameras.door.zones.porch]
    coordinates = [[0, 0.5], [0.3, 0.5], [0.3, 1], [0, 1]]

    [cameras.door.objects.person]
    min_score = 0.6
    min_area = 1500
    max_area = 200000

    [cameras.yard]
    source = "pattern"
"""


def write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text))
    return path


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    for key in list(__import__("os").environ):
        if key.startswith("CAMSTREAM_"):
            monkeypatch.delenv(key)


def test_the_issues_example_becomes_the_cameras_rules(tmp_path):
    path = write(tmp_path / "camstream.toml", GOOD)
    settings = gather({"CONFIG": str(path)})
    rules = rules_for(camera_settings(settings, "door"), "door", str(path))
    assert rules.zones == (Zone("drive", ((300, 250), (640, 250), (640, 480), (300, 480)), frozenset({"person", "car"}), 1.0),
                           Zone("porch", ((0, 0.5), (0.3, 0.5), (0.3, 1), (0, 1))))
    assert rules.object_mask == (((500, 0), (640, 0), (640, 100), (500, 100)),)
    assert rules.motion_mask == (((0, 0), (200, 0), (200, 30), (0, 30)),)
    assert rules.required_zones == {"drive"}
    assert rules.objects == {"person": ObjectFilter(0.6, 1500, 200000)}
    assert (rules.min_frames, rules.lost_seconds, rules.stationary_seconds) == (3, 3.0, 20.0)
    # A camera without any: tracking with the defaults, nothing filtered.
    plain = rules_for(camera_settings(settings, "yard"), "yard", str(path))
    assert plain.zones == () and plain.objects == {} and plain.stationary_seconds == 10.0


@pytest.mark.parametrize(("text", "message"), [
    ("[cameras.a]\nsource = \"pattern\"\n[cameras.a.zones.drive]\nobjects = [\"car\"]\n",
     "zones.drive has no coordinates"),
    ("[cameras.a]\nsource = \"pattern\"\n[cameras.a.zones.drive]\ncoordinates = [[0, 0], [1, 1]]\n",
     "zones.drive.coordinates must be a list of 3 to 100 [x, y] corners"),
    ("[cameras.a]\nsource = \"pattern\"\n[cameras.a.zones.drive]\ncoordinates = [[0, 0], [1, 1], [-1, 4]]\n",
     "[-1, 4] is not one"),
    ("[cameras.a]\nsource = \"pattern\"\n[cameras.a.zones.drive]\ncoordinates = [[0, 0], [1, 0], [1, 1]]\nmin_secs = 2\n",
     "unknown key 'min_secs' in zones.drive (did you mean 'min_seconds'?)"),
    ("[cameras.a]\nsource = \"pattern\"\nobject_mask = \"top\"\n", "object_mask must be a list of polygons"),
    ("[cameras.a]\nsource = \"pattern\"\n[cameras.a.objects.person]\nmin_score = 2\n",
     "objects.person.min_score must be a number from 0 to 1, not 2"),
    ("[cameras.a]\nsource = \"pattern\"\n[cameras.a.objects.person]\nmin_area = 500\nmax_area = 100\n",
     "objects.person: min_area (500) is more than max_area (100)"),
    ("[cameras.a]\nsource = \"pattern\"\nstationary_seconds = -1\n", "stationary_seconds"),
])
def test_a_wrong_zone_mask_or_filter_is_one_line_naming_the_file_the_line_and_the_key(tmp_path, text, message):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        tomlfile.load(path)
    assert str(caught.value).startswith(f"{path}, line ") and message in str(caught.value), str(caught.value)


@pytest.mark.slow
def test_check_config_exits_2_with_one_line(tmp_path):
    path = write(tmp_path / "bad.toml", "[cameras.a]\nsource = \"pattern\"\n[cameras.a.zones.drive]\n"
                                        "coordinates = [[0, 0], [1, 1]]\n")
    result = run_cli("--config", str(path), "--check-config")
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1 and lines[0].startswith(f"camstream: error: {path}, line ")
    assert "zones.drive.coordinates" in lines[0]


def test_a_required_zone_the_camera_does_not_have_names_the_camera(tmp_path):
    path = write(tmp_path / "camstream.toml", GOOD.replace('required_zones = ["drive"]', 'required_zones = ["drvie"]'))
    settings = gather({"CONFIG": str(path)})
    with pytest.raises(ConfigError) as caught:
        rules_for(camera_settings(settings, "door"), "door", str(path))
    assert str(caught.value) == (f"{path}: camera 'door': required_zones names zone 'drvie', which it does not have "
                                 "(did you mean 'drive'?)")


def test_zones_from_a_variable_are_json(monkeypatch):
    view = {"ZONES": '{"drive": {"coordinates": [[0, 0], [1, 0], [1, 1]]}}', "REQUIRED_ZONES": "drive"}
    assert [zone.name for zone in rules_for(view, "a").zones] == ["drive"]
    with pytest.raises(ConfigError, match="camera 'a': zones must be TOML tables or JSON"):
        rules_for({"ZONES": "drive"}, "a")


def test_geometry_fractions_points_and_mask_shares():
    square = ((0.25, 0.25), (0.75, 0.25), (0.75, 0.75), (0.25, 0.75))
    placed = in_pixels(square, 400, 200)
    assert placed == ((100, 50), (300, 50), (300, 150), (100, 150))
    assert in_pixels(((0, 0), (640, 0), (640, 2)), 320, 240) == ((0, 0), (640, 0), (640, 2))
    assert contains(placed, 200, 100) and contains(placed, 100, 100) and not contains(placed, 99, 100)
    # Where an object stands: a box reaching into the zone from above counts by its bottom centre.
    assert bottom_centre((180, 0, 40, 60)) == (200, 60) and contains(placed, *bottom_centre((180, 0, 40, 60)))
    cover = MaskCover([placed], 400, 200)
    assert cover.share((100, 50, 200, 100)) == 1.0
    assert cover.share((0, 0, 10, 10)) == 0.0
    assert abs(cover.share((0, 50, 200, 100)) - 0.5) < 0.02


class _Detection:
    """A camera's detection as MQTT sees it: results to listen to, and its tracking."""

    def __init__(self, tracking) -> None:
        self.tracking = tracking
        self.listeners = []

    def add_result_listener(self, listener) -> None:
        self.listeners.append(listener)

    def publish(self, result) -> None:
        for listener in self.listeners:
            listener(result)


@pytest.mark.slow
def test_mqtt_publishes_each_zones_occupancy_per_label_with_discovery(tmp_path):
    test_mqtt = pytest.importorskip("tests.web.test_mqtt")
    from camera.track.tracking import Tracking
    from tests.detect.test_tracking import DRIVE, result_at
    from tests.helpers import wait_until
    from tests.sources import SceneCamera
    from webapp.integrations.mqtt import MqttPublisher, parse_broker

    broker = test_mqtt.Broker(tmp_path)
    broker.start()
    publisher = MqttPublisher(parse_broker(f"mqtt://127.0.0.1:{broker.port}"))
    watcher = None
    try:
        tracking = Tracking(RulesWith(DRIVE), rate=10)
        detection = _Detection(tracking)
        publisher.add(SceneCamera("scene"), ["person", "car"], detection)
        publisher.start()
        watcher = test_mqtt.Watcher(broker.port)
        assert wait_until(lambda: watcher.payloads("camstream/scene/drive/person") == ["0"], 15), watcher.messages
        config = [json.loads(p) for t, p, _ in watcher.messages if t.startswith("homeassistant/sensor/")]
        assert sorted(c["state_topic"] for c in config) == ["camstream/scene/drive/car", "camstream/scene/drive/person"]
        assert all(c["state_class"] == "measurement" for c in config)
        # Two people walk into the drive: once their tracks count, the drive has 2 people, then 0 when they go.
        for step in range(4):
            boxes = [Detection("person", 0.9, (200 + step, 150, 30, 60)), Detection("person", 0.9, (260, 150, 30, 60))]
            detection.publish(tracking.apply(result_at(step, boxes)))
        assert wait_until(lambda: watcher.payloads("camstream/scene/drive/person")[-1:] == ["2"], 15)
        detection.publish(tracking.apply(result_at(10, [])))
        assert wait_until(lambda: watcher.payloads("camstream/scene/drive/person")[-1:] == ["0"], 15)
        assert watcher.payloads("camstream/scene/drive/person") == ["0", "2", "0"]
        assert watcher.payloads("camstream/scene/drive/car") == ["0"]
    finally:
        publisher.stop()
        if watcher is not None:
            watcher.client.loop_stop()
        broker.stop()


def RulesWith(*zones: Zone):
    from camera.track import Rules
    return Rules(zones=zones, min_frames=2)
