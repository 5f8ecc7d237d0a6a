"""Recording settings: a wrong one is one line naming it, exit status 2, before anything starts."""

import pytest

from tests.config.test_cli import run_cli
from webapp.config.values import ConfigError, parse_size


@pytest.mark.parametrize("args, message", [
    (["--record", "sometimes"], "camera 'default': recording must be 'events', 'continuous' or 'none', not 'sometimes'"),
    (["--record", "events"], ("camera 'default' records events, but has no detector to find them; give it one "
                             "(--detect default=motion) or record continuous")),
    (["--record", "yard=continuous"], ("a recording mode is given for camera 'yard', but there is no camera of "
                                      "that name")),
    (["--record", "continuous", "--record", "default=events"], "camera 'default' is given two recording modes"),
    (["--record-format", "gif"], "argument --record-format: invalid choice: 'gif'"),
    (["--max-storage", "lots"], "argument --max-storage: must be a size such as 500MB or 20GB, not 'lots'"),
    (["--min-free=-1GB"], "argument --min-free: must be a size such as 500MB or 20GB, not '-1GB'"),
    (["--retain-days", "-1"], "argument --retain-days: must be a number from 0 to 36500"),
    (["--pre-capture", "nan"], "argument --pre-capture: must be a number from 0 to 60"),
    (["--event-gap", "0"], "argument --event-gap: must be a number from 0.1 to 3600"),
    (["--segment-seconds", "1e9"], "argument --segment-seconds: must be a number from 1 to 3600"),
    (["--record", "continuous", "--storage", "/proc/camstream"], "STORAGE '/proc/camstream' cannot be used"),
])
def test_wrong_recording_settings_exit_2_with_one_line(args, message):
    result = run_cli("--source", "pattern", "--port", "0", *args)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr


def test_variables_are_checked_by_their_names():
    result = run_cli("--source", "pattern", "--port", "0", CAMSTREAM_RECORD="continuous",
                     CAMSTREAM_MAX_STORAGE="twenty")
    assert result.returncode == 2
    assert result.stderr.strip() == "camstream: error: MAX_STORAGE must be a size such as 500MB or 20GB, not 'twenty'"


@pytest.mark.parametrize("text, size", [("20GB", 20 * 10**9), ("500 mb", 500 * 10**6), ("1.5TiB", int(1.5 * 2**40)),
                                        ("1000", 1000), (2048, 2048), ("64KiB", 65536)])
def test_sizes(text, size):
    assert parse_size("X", text) == size


@pytest.mark.parametrize("text", ["", None])
def test_no_size_is_none(text):
    assert parse_size("X", text) is None


@pytest.mark.parametrize("text", ["GB", "1e3", "inf", "20 XB", True, "-5"])
def test_bad_sizes(text):
    with pytest.raises(ConfigError):
        parse_size("X", text)
