import pytest

from camera import OpenCVCamera, PatternCamera, SourceError
from webapp import create_app
from webapp.config.values import ConfigError
from webapp.runtime.registry import runtime_of


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    for key in ("SOURCE", "CAMERAS", "FPS", "QUALITY", "WIDTH", "HEIGHT", "IDLE_TIMEOUT"):
        monkeypatch.delenv(f"CAMSTREAM_{key}", raising=False)


def test_environment_variables_configure_the_cameras(monkeypatch):
    monkeypatch.setenv("CAMSTREAM_CAMERAS", "door=pattern, yard=rtsp://cam/live?a=1%2C2,garage=0")
    monkeypatch.setenv("CAMSTREAM_FPS", "12.5")
    monkeypatch.setenv("CAMSTREAM_QUALITY", "70")
    monkeypatch.setenv("CAMSTREAM_WIDTH", "320")
    monkeypatch.setenv("CAMSTREAM_HEIGHT", "240")
    cameras = runtime_of(create_app()).cameras
    assert list(cameras) == ["door", "yard", "garage"]
    assert cameras["yard"].source == "rtsp://cam/live?a=1%2C2"
    assert isinstance(cameras["garage"], OpenCVCamera) and cameras["garage"].target == 0
    door = cameras["door"]
    assert (door.fps, door.quality, door.width, door.height) == (12.5, 70, 320, 240)


def test_one_source_is_the_default_camera(monkeypatch):
    monkeypatch.setenv("CAMSTREAM_SOURCE", "0")
    cameras = runtime_of(create_app()).cameras
    assert list(cameras) == ["default"] and cameras["default"].target == 0


def test_the_config_argument_overrides_the_environment(monkeypatch):
    monkeypatch.setenv("CAMSTREAM_SOURCE", "/does/not/exist.mp4")
    cameras = runtime_of(create_app({"SOURCE": "pattern", "IDLE_TIMEOUT": 2})).cameras
    assert isinstance(cameras["default"], PatternCamera) and cameras["default"].idle_timeout == 2


def test_the_stall_timeout_reaches_every_camera_and_a_cameras_table_beats_it(tmp_path):
    path = tmp_path / "camstream.toml"
    path.write_text('stall_timeout = 20\n[cameras.door]\nsource = "pattern"\n'
                    '[cameras.lapse]\nsource = "pattern"\nstall_timeout = 90\n')
    cameras = runtime_of(create_app({"CONFIG": str(path)})).cameras
    assert (cameras["door"].stall_timeout, cameras["lapse"].stall_timeout) == (20, 90)


@pytest.mark.parametrize(
    "config, error, message",
    [
        ({"SOURCE": "/does/not/exist.mp4", "STRICT_SOURCES": True}, SourceError, "no such file"),
        ({"CAMERAS": "a=pattern,a=pattern"}, ConfigError, "given twice"),
        ({"CAMERAS": ["a/b=pattern"]}, ConfigError, "must start with an ASCII letter or digit"),
        ({"CAMERAS": ["_x=pattern"]}, ConfigError, "camera name '_x' must start with an ASCII letter"),
        ({"CAMERAS": ["café=pattern"]}, ConfigError, "camera name 'café' must start with an ASCII letter"),
        ({"CAMERAS": [f"{'a' * 65}=pattern"]}, ConfigError, "up to 63"),
        ({"CAMERAS": {"cafe": PatternCamera("café")}}, ConfigError, "the camera given as 'cafe' is named 'café'"),
        ({"SOURCE": "pattern", "QUALITY": 85.5}, ConfigError, "QUALITY must be a whole number from 1 to 100"),
        ({"SOURCE": "pattern", "WIDTH": "wide"}, ConfigError, "WIDTH must be a whole number from 1 to 16384"),
        ({"SOURCE": "pattern", "WIDTH": 100000}, ConfigError, "WIDTH must be a whole number from 1 to 16384"),
        ({"SOURCE": "pattern", "FPS": float("nan")}, ConfigError, "FPS must be a number from 0.5 to 240, not nan"),
        ({"SOURCE": "pattern", "FPS": float("inf")}, ConfigError, "FPS must be a number from 0.5 to 240, not inf"),
        ({"SOURCE": "pattern", "FPS": True}, ConfigError, "FPS must be a number"),
        ({"SOURCE": "pattern", "IDLE_TIMEOUT": "nan"}, ConfigError, "IDLE_TIMEOUT must be a number from 0"),
        ({"SOURCE": "pattern", "SNAPSHOT_TIMEOUT": -1}, ConfigError, "SNAPSHOT_TIMEOUT must be a number from 0"),
        ({"SOURCE": "pattern", "MAX_VIEWERS": 0}, ConfigError, "MAX_VIEWERS must be a whole number from 1"),
    ],
)
def test_bad_config_is_refused_with_a_clear_message(config, error, message):
    with pytest.raises(error, match=message):
        create_app(config)


@pytest.mark.parametrize("variable, value", [("FPS", "nan"), ("FPS", "inf"), ("IDLE_TIMEOUT", "nan"),
                                             ("WIDTH", "100000"), ("QUALITY", "-Infinity")])
def test_a_bad_environment_variable_is_named_as_the_variable(monkeypatch, variable, value):
    monkeypatch.setenv(f"CAMSTREAM_{variable}", value)
    with pytest.raises(ConfigError, match=f"^CAMSTREAM_{variable} must be .* not '{value}'$"):
        create_app({"SOURCE": "pattern"})


def test_library_callers_get_the_same_checks():
    for options, message in (({"fps": float("nan")}, "fps must be"), ({"width": 100000}, "width must be"),
                             ({"idle_timeout": float("inf")}, "idle timeout must be")):
        with pytest.raises(ValueError, match=message):
            PatternCamera("p", **options)


def test_every_json_answer_is_strict_json():
    app = create_app({"SOURCE": "pattern"})
    with app.app_context(), pytest.raises(ValueError, match="Out of range float"):
        app.json.dumps({"fps": float("nan")})


def test_a_source_that_can_never_work_leaves_its_camera_failed_and_the_others_serve(caplog):
    app = create_app({"CAMERAS": "good=pattern,gone=/does/not/exist.mp4,odd=gopher://u:secret@h/x"})
    cameras = runtime_of(app).cameras
    assert cameras["good"].usable and cameras["good"].state == "idle"
    for name, reason in (("gone", "no such file: /does/not/exist.mp4"), ("odd", "unknown source scheme")):
        status = cameras[name].status()
        assert not cameras[name].usable
        assert status["state"] == "failed" and reason in status["last_error"]
        assert f"camera {name}: {status['last_error']}" in caplog.text
    assert "secret" not in caplog.text and "secret" not in str(cameras["odd"].status())
