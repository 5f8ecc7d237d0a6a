"""What a newcomer's run found in the config checks: ``--check-config`` shows each camera's recording as it
will be (by copy for a camera that passes its video through) and its detect stream; ``[camera.porch]`` in
a file names ``[cameras.porch]``."""

from __future__ import annotations

import textwrap

import pytest

from tests.config.test_cli import run_cli
from tests.helpers import free_port
from webapp.config.tomlfile import load
from webapp.config.values import ConfigError


def test_check_config_shows_the_recording_as_it_will_be_and_the_detect_stream(tmp_path):
    port = free_port()  # nothing listens there: a check opens no camera
    config = tmp_path / "camstream.toml"
    config.write_text(textwrap.dedent(f"""\
        [cameras.porch]
        source = "rtsp://viewer:s3cret@127.0.0.1:{port}/main"
        detect = "motion"
        detect_source = "rtsp://viewer:s3cret@127.0.0.1:{port}/sub"
        record = "continuous"

        [cameras.gate]
        source = "http://127.0.0.1:{port}/video"
        record = "events"
        detect = "motion"

        [cameras.yard]
        source = "rtsp://127.0.0.1:{port}/main"
        record = "continuous"
        record_copy = false
        record_format = "h264"
        """))
    result = run_cli("--config", str(config), "--check-config")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[1] == (f"  porch: rtsp://viewer:***@127.0.0.1:{port}/main, source's fps, detect motion on "
                        f"rtsp://viewer:***@127.0.0.1:{port}/sub, record continuous (copy)")
    assert lines[2] == (f"  gate: http://127.0.0.1:{port}/video, source's fps, detect motion, record events "
                        "(copy if it sends H.264 or H.265, else jpeg)")
    assert lines[3] == f"  yard: rtsp://127.0.0.1:{port}/main, source's fps, record continuous (h264)"
    assert "s3cret" not in result.stdout + result.stderr


@pytest.mark.parametrize("table, meant", [("[camera.porch]", "[cameras.porch]"), ("[user.ada]", "[users.ada]"),
                                          ("[Cameras.porch]", "[cameras.porch]")])
def test_a_table_named_almost_right_names_the_right_one(tmp_path, table, meant):
    path = tmp_path / "camstream.toml"
    path.write_text(f"fps = 5\n\n{table}\nsource = \"pattern\"\n")
    with pytest.raises(ConfigError) as error:
        load(path)
    assert str(error.value) == f"{path}, line 3: unknown table {table} (did you mean {meant}?)"
