"""camstream --print-systemd-unit: a unit file systemd accepts, running camstream with the flags given."""

import configparser
import shutil
import subprocess
import sys

import pytest

from tests.config.test_cli import env, run_cli


def unit(*flags: str) -> str:
    result = run_cli("--print-systemd-unit", *flags)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_the_unit_runs_camstream_with_the_flags_as_a_restarting_service():
    text = unit("--host", "0.0.0.0", "--camera", "door=/dev/video0", "--fps", "15")
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str
    parser.read_string(text)
    service = parser["Service"]
    assert service["ExecStart"].endswith("--host 0.0.0.0 --camera door=/dev/video0 --fps 15")
    assert "--print-systemd-unit" not in service["ExecStart"]
    assert service["Restart"] == "on-failure" and service["DynamicUser"] == "yes"
    assert service["SupplementaryGroups"] == "video"
    assert parser["Install"]["WantedBy"] == "multi-user.target"


def test_a_wrong_flag_is_refused_before_any_unit_is_printed():
    result = run_cli("--print-systemd-unit", "--fps", "fast")
    assert result.returncode == 2 and result.stdout == "" and "--fps" in result.stderr


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_systemd_accepts_the_unit(tmp_path):
    path = tmp_path / "camstream.service"
    path.write_text(unit("--camera", "door=pattern"))
    result = subprocess.run(["systemd-analyze", "verify", str(path)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr


def test_the_unit_reads_the_config_file_and_reloads_it_on_systemctl_reload(tmp_path):
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str
    parser.read_string(unit("--fps", "15"))
    service = parser["Service"]
    assert "--config /etc/camstream/camstream.toml --fps 15" in service["ExecStart"]
    assert service["ExecReload"] == "/bin/kill -HUP $MAINPID"
    # A relative path is made absolute: the service runs in its own folder.
    result = subprocess.run([sys.executable, "-m", "webapp", "--print-systemd-unit", "--config", "box.toml"],
                            cwd=tmp_path, capture_output=True, text=True, check=True, env=env())
    assert f"--config {tmp_path / 'box.toml'}" in result.stdout
    assert "/etc/camstream/camstream.toml" not in result.stdout.split("[Service]")[1]


def test_paths_the_service_cannot_see_are_warned_of_and_the_config_path_is_made_clean(tmp_path):
    (tmp_path / "sub").mkdir()
    result = subprocess.run([sys.executable, "-m", "webapp", "--print-systemd-unit", "--config", "sub/../box.toml"],
                            cwd=tmp_path, capture_output=True, text=True, check=True, env=env())
    assert f"--config {tmp_path / 'box.toml'}\n" in result.stdout
    # pytest's tmp_path is under /tmp, which PrivateTmp hides from the service: said on stderr, the unit printed.
    warnings = [line for line in result.stderr.splitlines() if line.startswith("camstream: warning:")]
    assert any(f"{tmp_path / 'box.toml'} is under /tmp, and PrivateTmp=yes" in line for line in warnings), warnings
    assert result.stdout.startswith("# camstream as a systemd service")
