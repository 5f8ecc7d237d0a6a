"""The settings table is the one place a setting is declared: flags, variables, TOML keys and docs follow it."""

import re
from pathlib import Path

import pytest

from webapp.cli import build_parser, config_from_args
from webapp.config.docs import MARKER, markdown_table
from webapp.config.layers import gather
from webapp.config.table import BY_KEY, CAMERA_KEYS, DEFAULTS, GLOBAL_KEYS, RESTART_KEYS, SETTINGS
from webapp.config.tomlfile import load
from webapp.config.values import ConfigError

ROOT = Path(__file__).resolve().parents[2]
# Flask's own keys, which camstream sets for Flask and never reads as a setting.
FLASK_KEYS = {"SESSION_COOKIE_NAME"}


def test_every_setting_the_code_reads_is_declared():
    read = set()
    for path in (ROOT / "webapp").rglob("*.py"):
        read |= set(re.findall(r"config(?:\.get)?[\[(]\"([A-Z_]+)\"", path.read_text()))
    assert read, "the pattern finds the reads"
    assert sorted(read - set(BY_KEY) - FLASK_KEYS) == []


def test_every_flag_comes_from_a_setting_and_says_its_default():
    parser = build_parser()
    flags = {action.option_strings[0]: action for action in parser._actions if action.option_strings}
    declared = {setting.flag: setting for setting in SETTINGS if setting.flag}
    assert set(flags) - set(declared) == {"-h", "--check-config", "--print-systemd-unit"}
    for flag, setting in declared.items():
        assert flags[flag].dest == setting.key
        if setting.shown is not None and not setting.repeat and setting.kind != "bool":
            assert f"(default: {setting.shown})" in flags[flag].help, flag


def test_a_flag_sets_its_setting_under_its_key():
    for setting in SETTINGS:
        if setting.flag is None:
            continue
        if setting.kind == "bool":
            argv = [setting.flag]
            wanted = setting.flag_value
        elif setting.numeric:
            argv, wanted = [setting.flag, f"{setting.high:g}"], setting.parse(setting.high)
        elif setting.choices:
            argv, wanted = [setting.flag, setting.choices[-1]], setting.choices[-1]
        elif setting.kind == "size":
            argv, wanted = [setting.flag, "2GB"], "2GB"
        else:
            argv, wanted = [setting.flag, "x=y"], ["x=y"] if setting.repeat else "x=y"
        assert config_from_args(build_parser().parse_args(argv))[setting.key] == wanted, setting.flag


def test_every_declared_variable_is_read(monkeypatch):
    # A number's variable is checked under its own name: proof that the layers read each one.
    for setting in SETTINGS:
        if setting.numeric:
            monkeypatch.setenv(setting.variable, "nan")
            with pytest.raises(ConfigError, match=re.escape(setting.variable)):
                gather({})
            monkeypatch.delenv(setting.variable)


def test_toml_keys_are_the_settings_lower_case(tmp_path):
    assert set(CAMERA_KEYS) <= set(GLOBAL_KEYS) | {"source"}
    assert {"config", "cameras", "users", "strict_sources"}.isdisjoint(GLOBAL_KEYS)
    lines = [f"{key} = {value}" for key, value in (("fps", 12), ("max_viewers", 3), ("detect_classes", '"person"'))]
    (tmp_path / "camstream.toml").write_text("\n".join(lines) + "\n")
    assert load(tmp_path / "camstream.toml").settings == {"FPS": 12.0, "MAX_VIEWERS": 3, "DETECT_CLASSES": ["person"]}
    (tmp_path / "camstream.toml").write_text("strict_sources = true\n")
    with pytest.raises(ConfigError, match="line 1: unknown setting 'strict_sources' at the top level"):
        load(tmp_path / "camstream.toml")


def test_restart_only_settings_are_the_server_storage_broker_and_sign_in_ones():
    assert {"HOST", "PORT", "THREADS", "STORAGE", "MQTT", "SECRET_KEY", "LOCKOUT_SECONDS"} <= set(RESTART_KEYS)
    assert {"CAMERAS", "FPS", "DETECT", "RECORD", "USERS", "SNAPSHOT_TIMEOUT"}.isdisjoint(RESTART_KEYS)


def test_the_docs_table_lists_every_setting_once_and_the_page_asks_for_it():
    table = markdown_table()
    for setting in SETTINGS:
        assert table.count(f"`{setting.variable}`") == 1, setting.key
    assert len(table.splitlines()) == len(SETTINGS) + 2
    assert MARKER in (ROOT / "docs" / "operations.md").read_text()
    assert set(DEFAULTS) == set(BY_KEY)
