"""camstream.toml: settings globally and per camera, their precedence, errors with lines, --check-config."""

import base64
import json
import re
import sys
import textwrap
import urllib.request
from pathlib import Path

import pytest
from werkzeug.security import generate_password_hash

from tests.config.test_cli import ROOT, env, run_cli, running  # noqa: F401 (a fixture)
from tests.models import candidate, yolo_model
from webapp.config.layers import gather
from webapp.config.plan import make_plan

EXAMPLE = ROOT / "examples" / "camstream.toml"


def write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text))
    return path


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    for key in list(__import__("os").environ):
        if key.startswith("CAMSTREAM_"):
            monkeypatch.delenv(key)


@pytest.fixture
def two_cameras(tmp_path):
    return write(tmp_path / "camstream.toml", """\
        fps = 5
        quality = 60
        detect = "motion"

        [cameras.door]
        source = "pattern"
        fps = 7
        record = "events"

        [cameras.yard]
        source = "pattern"
        detect = "none"
        """)


def frame_options(plan, name):
    return dict(plan.cameras[name].options)


def test_camera_tables_override_the_top_level_which_overrides_the_defaults(two_cameras):
    plan = make_plan(gather({"CONFIG": str(two_cameras)}))
    assert list(plan.cameras) == ["door", "yard"]
    door, yard = frame_options(plan, "door"), frame_options(plan, "yard")
    assert (door["fps"], door["quality"], door["idle_timeout"]) == (7, 60, 10.0)
    assert (yard["fps"], yard["quality"]) == (5, 60)
    assert plan.cameras["door"].detector.spec == "motion" and plan.cameras["door"].record.mode == "events"
    assert plan.cameras["yard"].detector is None and plan.cameras["yard"].record is None


def test_a_variable_beats_the_file_and_a_given_setting_beats_both(two_cameras, monkeypatch):
    monkeypatch.setenv("CAMSTREAM_QUALITY", "90")
    monkeypatch.setenv("CAMSTREAM_FPS", "9")
    plan = make_plan(gather({"CONFIG": str(two_cameras)}))
    # A variable sets the value for every camera, over the tables too.
    assert [frame_options(plan, name)["fps"] for name in plan.cameras] == [9, 9]
    assert [frame_options(plan, name)["quality"] for name in plan.cameras] == [90, 90]
    plan = make_plan(gather({"CONFIG": str(two_cameras), "FPS": 11}))
    assert [frame_options(plan, name)["fps"] for name in plan.cameras] == [11, 11]
    assert frame_options(plan, "door")["quality"] == 90


def test_the_config_file_can_be_named_by_a_variable(two_cameras, monkeypatch):
    monkeypatch.setenv("CAMSTREAM_CONFIG", str(two_cameras))
    assert list(make_plan(gather({})).cameras) == ["door", "yard"]


def test_a_detector_or_recording_flag_for_one_camera_leaves_the_others_to_the_file(two_cameras):
    plan = make_plan(gather({"CONFIG": str(two_cameras), "DETECT": ["yard=motion", "door=none"],
                             "RECORD": ["yard=continuous", "door=none"]}))
    assert plan.cameras["door"].detector is None and plan.cameras["yard"].detector.spec == "motion"
    assert plan.cameras["yard"].record.mode == "continuous" and plan.cameras["door"].record is None
    # door records events in the file, and has no detector now: said, not started.
    with pytest.raises(ValueError, match="camera 'door' records events, but has no detector"):
        make_plan(gather({"CONFIG": str(two_cameras), "DETECT": ["door=none"]}))


def test_a_file_without_camera_tables_is_one_camera(tmp_path):
    path = write(tmp_path / "one.toml", 'source = "pattern"\nfps = 4\ndetect = "motion"\nrecord = "events"\n')
    plan = make_plan(gather({"CONFIG": str(path)}))
    assert list(plan.cameras) == ["default"]
    assert frame_options(plan, "default")["fps"] == 4 and plan.cameras["default"].record.mode == "events"


@pytest.mark.parametrize("text, message", [
    ("fsp = 5\n", "line 1: unknown setting 'fsp' at the top level"),
    ("fps = 5\n\n[cameras.a]\nsource = \"pattern\"\nmax_viewers = 3\n", "line 5: unknown setting 'max_viewers' in a camera table"),
    ("quality = \"high\"\n", "line 1: quality must be a number, not a string ('high')"),
    ("port = true\n", "line 1: port must be a number, not a boolean (true)"),
    ("# fps\n\nfps = 1000\n", "line 3: fps must be a number from 0.5 to 240, not 1000"),
    ("width = 640.5\n", "line 1: width must be a whole number from 1 to 16384, not 640.5"),
    ("socket_handoff = \"yes\"\n", "line 1: socket_handoff must be true or false, not a string ('yes')"),
    ("[cameras.a]\nsource = \"pattern\"\ndetect_classes = 3\n",
     "line 3: detect_classes must be a list of strings such as [\"person\", \"car\"], not a number (3)"),
    ("record_format = \"gif\"\n", "line 1: record_format must be one of jpeg, h264, not a string ('gif')"),
    ("log_level = \"loud\"\n", "line 1: log_level must be one of debug, info, warning, error, not a string ('loud')"),
    ("max_storage = \"lots\"\n", "line 1: max_storage must be a size such as 500MB or 20GB, not 'lots'"),
    ("[cameras.a]\nfps = 3\n", "line 1: camera 'a' has no source"),
    ("[cameras.a]\nsource = [1]\n", "line 2: source must be a string such as \"/dev/video0\""),
    ("[cameras.\"two words\"]\nsource = \"pattern\"\n", "line 1: camera name 'two words' must start with"),
    ("cameras = 3\n", "line 1: cameras must be tables, one per camera: [cameras.NAME]"),
    ("[users.ann]\npassword_hash = \"x\"\nrole = 3\n", "line 3: role must be a string, not a number (3)"),
    ("[users.ann]\nrole = \"admin\"\n", "line 1: user 'ann' has no password_hash"),
    ("[users.ann]\npassword_hash = \"x\"\nroles = \"admin\"\n", "line 3: unknown setting 'roles' in a user table"),
    ("source = \"pattern\"\n[cameras.a]\nsource = \"pattern\"\n", "line 1: source at the top level is for a file"),
    ("fps = 5\n[cameras.a\n", "Expected ']' at the end of a table declaration (at line 2, column 11)"),
    ("fps = " + "[" * 5000 + "]" * 5000 + "\n", "a value is nested too deeply"),
    ("[cameras.a]\nsource = \"pattern\"\nfps = " + "{a=" * 3000 + "1" + "}" * 3000 + "\n",
     "a value is nested too deeply"),
])
def test_a_wrong_file_is_one_line_naming_the_file_the_line_and_the_key(tmp_path, text, message):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    result = run_cli("--config", str(path), "--check-config")
    assert result.returncode == 2 and result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"camstream: error: {path}"), result.stderr
    assert message in lines[0], lines[0]


def test_a_missing_or_unreadable_file_is_named(tmp_path):
    result = run_cli("--config", str(tmp_path / "nope.toml"), "--check-config")
    assert result.returncode == 2
    assert result.stderr == f"camstream: error: config file '{tmp_path / 'nope.toml'}' cannot be read: No such file or directory\n"
    (tmp_path / "binary.toml").write_bytes(b"fps = \xff\n")
    result = run_cli("--config", str(tmp_path / "binary.toml"), "--check-config")
    assert result.returncode == 2 and "is not UTF-8 text" in result.stderr


@pytest.mark.slow
def test_check_config_checks_what_starting_would_and_starts_nothing(tmp_path, two_cameras):
    result = run_cli("--config", str(two_cameras), "--check-config", "--port", "1")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        f"{two_cameras}: good, 2 camera(s)",
        "  door: pattern, 7 fps, detect motion, record events (jpeg)",
        "  yard: pattern, 5 fps",
        "  sign-in: none (anyone who reaches the port watches)",
    ]
    # What only shows once the file is combined with the rest: a source that cannot be, a missing model.
    path = write(tmp_path / "missing.toml", """\
        [cameras.a]
        source = "/no/such/clip.mp4"
        """)
    result = run_cli("--config", str(path), "--check-config")
    assert (result.returncode, result.stderr) == (2, "camstream: error: camera 'a': no such file: /no/such/clip.mp4\n")
    path = write(tmp_path / "model.toml", """\
        [cameras.a]
        source = "pattern"
        detect = "motion+yolo:/no/model.onnx"
        """)
    result = run_cli("--config", str(path), "--check-config")
    assert result.returncode == 2
    assert result.stderr == ("camstream: error: camera 'a': detector 'motion+yolo:/no/model.onnx': "
                             "no such model file: /no/model.onnx\n")
    result = run_cli("--config", str(two_cameras), "--check-config", CAMSTREAM_FPS="fast")
    assert result.returncode == 2 and "CAMSTREAM_FPS must be a number" in result.stderr


def example_with_model(tmp_path: Path) -> str:
    """The example file with its model lines taken in, as its comment says, and a real (small) model there."""
    model = yolo_model(tmp_path / "yolov8n.onnx", [candidate(320, 240, 100, 100, {0: 0.9}, 80)], 80)
    text = re.sub(r"(?m)^#((detect|detect_classes|detect_confidence|event_labels) = )", r"\1", EXAMPLE.read_text())
    return text.replace("/var/lib/camstream/models/yolov8n.onnx", str(model))


def test_the_example_file_passes_its_own_check_as_shipped_and_says_what_is_left_to_do():
    result = run_cli("--config", str(EXAMPLE), "--check-config")
    assert result.returncode == 0, result.stderr
    todo = [line for line in result.stdout.splitlines() if line.startswith("  to do:")]
    assert [line.split("'")[1] for line in todo] == ["admin", "kitchen-tablet"]
    assert all("hash-password in place of CHANGE-ME" in line for line in todo)
    assert "scrypt:" not in EXAMPLE.read_text(), "the example holds no real password hash"
    # It passes on the README's install too, which has no extras (MQTT needs paho-mqtt, the mqtt extra).
    assert not re.search(r"(?m)^mqtt\s*=", EXAMPLE.read_text())


def test_the_example_file_is_good_and_shows_no_password(tmp_path):
    path = tmp_path / "camstream.toml"
    path.write_text(example_with_model(tmp_path))
    result = run_cli("--config", str(path), "--check-config")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"{path}: good, 8 camera(s)"
    assert [line.split(":")[0].strip() for line in lines[1:] if not line.startswith("  to do:")] == [
        "front-door", "driveway", "garden", "garage", "nursery", "workshop", "printer", "street", "sign-in"]
    assert "  sign-in: 2 user(s), 1 admin(s)" in lines
    assert "  front-door: rtsp://viewer:***@192.168.1.21:554/stream1, 15 fps, detect yolo:" in result.stdout
    assert "secret" not in result.stdout and "rtsp://viewer:***@192.168.1.21:554/stream1" in result.stdout
    assert ("  garage: http://192.168.1.24:8080/?action=stream, 10 fps, detect motion, record continuous "
            "(copy if it sends H.264 or H.265, else h264)") in lines


@pytest.mark.slow
def test_the_example_file_serves_eight_cameras_with_their_own_settings(tmp_path, running):  # noqa: F811
    # Every source the test pattern, the broker and the storage local: the rest as written.
    text = re.sub(r'(?m)^source = ".*"$', 'source = "pattern"', example_with_model(tmp_path))
    text = re.sub(r'(?m)^#?mqtt = .*$', "", text)
    text = text.replace('"/var/lib/camstream/recordings"', repr(str(tmp_path / "recordings")))
    # The admin's password, known to this test.
    text = re.sub(r'(?m)^password_hash = ".*"$', f'password_hash = "{generate_password_hash("example pass")}"', text,
                  count=1)
    (tmp_path / "camstream.toml").write_text(text)
    server = running([sys.executable, "-m", "webapp", "--config", "camstream.toml", "--port", "0", "--host", "127.0.0.1"],
                     env(), cwd=tmp_path)
    port = int(server.wait_for_line(r"open http://localhost:(\d+)/")[1])
    request = urllib.request.Request(f"http://127.0.0.1:{port}/api/cameras",
                                     headers={"Authorization": "Basic " + base64.b64encode(b"admin:example pass").decode()})
    with urllib.request.urlopen(request, timeout=10) as response:
        cameras = {camera["name"]: camera for camera in json.load(response)["cameras"]}
    assert list(cameras) == ["front-door", "driveway", "garden", "garage", "nursery", "workshop", "printer", "street"]
    assert {name: camera["fps"] for name, camera in cameras.items()} == {
        "front-door": 15, "driveway": 15, "garden": 15, "garage": 10, "nursery": 15, "workshop": 5, "printer": 5,
        "street": 10}
    assert (cameras["street"]["quality"], cameras["nursery"]["quality"], cameras["garden"]["quality"]) == (60, 70, 80)
    assert (cameras["garden"]["width"], cameras["garden"]["height"]) == (1280, 720)
    detectors = {name: camera["detection"] and camera["detection"]["detector"] for name, camera in cameras.items()}
    assert detectors["workshop"] is None and detectors["printer"] is None
    assert detectors["nursery"] == "motion?sensitivity=0.8" and detectors["garden"] == "motion"
    assert detectors["driveway"].startswith("motion+yolo:")
    recording = {name: camera["recording"] and camera["recording"]["mode"] for name, camera in cameras.items()}
    assert recording == {"front-door": "events", "driveway": "events", "garden": "events", "garage": "continuous",
                         "nursery": "events", "workshop": "continuous", "printer": None, "street": "continuous"}
    assert all(camera["state"] != "failed" for camera in cameras.values())
