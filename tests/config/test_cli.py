import http.client
import json
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path

import pytest

from tests.helpers import CliForks, MjpegReader, decode, free_port, wait_until
from webapp.cli.parser import build_parser, config_from_args
from webapp.config.values import NAME_RULE, command

ROOT = Path(__file__).resolve().parents[2]


def env(**extra: str) -> dict[str, str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("CAMSTREAM_")}
    environment["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), environment.get("PYTHONPATH")]))
    environment.update(extra)
    return environment


def run_cli(*args: str, stdin: str | None = None, **extra_env: str) -> subprocess.CompletedProcess:
    """``python -m webapp ARGS`` in a process of its own, forked from one that imported camstream once
    (tests.helpers.CliForks); ``stdin`` is its input, else it reads /dev/null."""
    return CliForks.shared(env()).run(args, env(**extra_env), timeout=60, stdin=stdin)


class Running:
    """A server process; collects its stderr lines as they come."""

    def __init__(self, command: list[str], environment: dict[str, str], cwd: Path | None = None) -> None:
        if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
            # A suite started in the background (nohup ... &) ignores SIGINT, and a child would
            # inherit that: waitress-serve would never stop. Handled signals are reset on exec.
            signal.signal(signal.SIGINT, signal.default_int_handler)
        self.process = subprocess.Popen(command, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, cwd=cwd,
                                        text=True, env=environment)
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._collect, daemon=True).start()

    def _collect(self) -> None:
        for line in self.process.stderr:
            self.lines.put(line)

    def wait_for_line(self, pattern: str, timeout: float = 30, seen: list[str] | None = None) -> re.Match:
        """The first line from here on that matches; ``seen`` collects the lines read up to it."""
        seen = [] if seen is None else seen
        try:
            while True:
                line = self.lines.get(timeout=timeout)
                seen.append(line)
                match = re.search(pattern, line)
                if match:
                    return match
        except queue.Empty:
            raise AssertionError(f"no line matching {pattern!r} in {seen}") from None

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        try:
            return self.process.wait(timeout=10)
        finally:
            if self.process.poll() is None:
                self.process.kill()


@pytest.fixture
def running():
    started: list[Running] = []

    def start(command: list[str], environment: dict[str, str], cwd: Path | None = None) -> Running:
        server = Running(command, environment, cwd)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def fetch_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.load(response)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--source", "/no/such/clip.mp4"], "camstream: error: no such file: /no/such/clip.mp4"),
        (["--source", "ftp://me:pass123@host/cam"], "camstream: error: unknown source scheme 'ftp' in ftp://me:***@host/cam"),
        (["--camera", "no-equals-sign"], "camstream: error: camera 'no-equals-sign' is not NAME=SOURCE"),
        (["--camera", "bad name=pattern"], f"camstream: error: camera name 'bad name' {NAME_RULE}"),
        (["--camera", "_x=pattern"], f"camstream: error: camera name '_x' {NAME_RULE}"),
        (["--source", "pattern", "--quality", "0"],
         "camstream: error: argument --quality: must be a whole number from 1 to 100, not '0'"),
        (["--source", "pattern", "--fps", "nan"],
         "camstream: error: argument --fps: must be a number from 0.5 to 240, not 'nan'"),
        (["--source", "pattern", "--fps", "inf"],
         "camstream: error: argument --fps: must be a number from 0.5 to 240, not 'inf'"),
        (["--source", "pattern", "--idle-timeout", "nan"],
         "camstream: error: argument --idle-timeout: must be a number from 0 to 86400, not 'nan'"),
        (["--source", "pattern", "--width", "100000"],
         "camstream: error: argument --width: must be a whole number from 1 to 16384, not '100000'"),
        (["--source", "pattern", "--port", "99999"],
         "camstream: error: argument --port: must be a whole number from 0 to 65535, not '99999'"),
        (["--source", "pattern", "--port", "-1"],
         "camstream: error: argument --port: must be a whole number from 0 to 65535, not '-1'"),
        (["--source", "pattern", "--threads", "0"],
         "camstream: error: argument --threads: must be a whole number from 1 to 1024, not '0'"),
        (["--source", "pattern", "--no-such-flag"],
         "camstream: error: unrecognized arguments: --no-such-flag; camstream --help lists them all"),
        # The usual slips get the flag, source or detector they meant.
        (["--cameras", "door=pattern"], ("camstream: error: unrecognized arguments: --cameras door=pattern "
                                        "(did you mean --camera?); camstream --help lists them all")),
        (["--src", "pattern"], ("camstream: error: unrecognized arguments: --src pattern (did you mean --source?); "
                               "camstream --help lists them all")),
        (["--source", "pattern", "--detection", "motion"], ("camstream: error: unrecognized arguments: --detection "
                                                          "motion (did you mean --detect?); camstream --help lists them all")),
        (["-p", "8080"], ("camstream: error: unrecognized arguments: -p 8080 (did you mean --port?); camstream --help "
                         "lists them all")),
        (["--source", "patern"], "camstream: error: no such file: patern (did you mean 'pattern'?)"),
        (["--source", "rstp://cam/live"], ("camstream: error: unknown source scheme 'rstp' in rstp://cam/live "
                                          "(did you mean 'rtsp'?)")),
        (["--source", "pattern", "--detect", "motoin"], ("camstream: error: camera 'default': unknown detector "
         "'motoin' (did you mean 'motion'?): use motion, yolo:PATH.onnx or MODULE:ATTR (with ?name=value options), "
         "motion+ one of the last two, or remote:GROUP")),
        (["--source", "pattern", "--user", "ada:scrypt:32768:8:1"], ("camstream: error: user 'ada': the hash lost its "
         "$ parts (a shell replaces $... inside double quotes): put NAME:HASH in single quotes, "
         "--user 'ada:scrypt:...$...$...'")),
    ],
)
def test_bad_input_exits_non_zero_with_one_readable_line(args, message):
    result = run_cli("--port", "0", *args)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [message]
    assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_bad_environment_is_one_line_too():
    for value in ("fast", "nan", "inf", "1e9"):
        result = run_cli("--port", "0", CAMSTREAM_FPS=value)
        assert result.returncode == 2
        assert result.stderr.strip().splitlines() == [
            f"camstream: error: CAMSTREAM_FPS must be a number from 0.5 to 240, not '{value}'"]


def test_a_busy_port_is_one_line():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cli("--source", "pattern", "--port", str(port))
    assert result.returncode != 0
    assert result.stderr.strip().splitlines()[-1].startswith(f"camstream: error: cannot listen on 127.0.0.1:{port}")
    assert "Traceback" not in result.stderr


def test_command_line_options_become_config():
    args = build_parser().parse_args(
        ["--source", "pattern", "--camera", "yard=rtsp://x/y", "--fps", "12", "--width", "320", "--idle-timeout", "3",
         "--threads", "100"]
    )
    assert config_from_args(args) == {
        "CAMERAS": ["default=pattern", "yard=rtsp://x/y"], "FPS": 12.0, "WIDTH": 320, "IDLE_TIMEOUT": 3.0,
        "THREADS": 100, "STRICT_SOURCES": True,
    }
    args = build_parser().parse_args(["--max-viewers", "7"])
    assert config_from_args(args) == {"MAX_VIEWERS": 7, "STRICT_SOURCES": True}
    args = build_parser().parse_args(["--no-handoff", "--threads", "100"])
    assert config_from_args(args) == {"SOCKET_HANDOFF": False, "THREADS": 100, "STRICT_SOURCES": True}
    args = build_parser().parse_args(["--detect", "door=motion", "--detect", "yard=yolo:m.onnx?nms=0.4",
                                      "--detect-confidence", "0.3", "--detect-classes", "person,car",
                                      "--detect-fps", "2", "--detect-timeout", "4"])
    assert config_from_args(args) == {
        "DETECT": ["door=motion", "yard=yolo:m.onnx?nms=0.4"], "DETECT_CONFIDENCE": 0.3,
        "DETECT_CLASSES": "person,car", "DETECT_FPS": 2.0, "DETECT_TIMEOUT": 4.0, "STRICT_SOURCES": True,
    }


def test_the_cli_serves_and_stops_cleanly_on_sigint(running):
    server = running(
        [sys.executable, "-m", "webapp", "--camera", "one=pattern", "--camera", "two=pattern",
         "--port", "0", "--width", "320"],
        env(),
    )
    port = server.wait_for_line(r"open http://localhost:(\d+)/").group(1)
    base = f"http://127.0.0.1:{port}"
    with urllib.request.urlopen(f"{base}/", timeout=10) as response:
        page = response.read().decode()
    assert "/video_feed/one" in page and "/video_feed/two" in page and "/static/camstream.css" in page
    with urllib.request.urlopen(f"{base}/snapshot/two.jpg", timeout=10) as response:
        assert decode(response.read()).shape == (240, 320, 3)
    assert [c["name"] for c in fetch_json(f"{base}/api/cameras")["cameras"]] == ["one", "two"]
    assert server.stop() == 0


@pytest.mark.parametrize("handoff", [[], ["--no-handoff"]], ids=["sender", "wsgi"])
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_ends_every_stream_and_exits_0_without_waiting_out_the_cameras(running, sig, handoff):
    gone = free_port()
    server = running(
        [sys.executable, "-m", "webapp", "--camera", "one=pattern", "--camera", f"door=http://127.0.0.1:{gone}/",
         "--port", "0", *handoff],
        env(),
    )
    base = "http://127.0.0.1:" + server.wait_for_line(r"open http://localhost:(\d+)/").group(1)
    viewers = [MjpegReader(f"{base}/video_feed/one") for _ in range(3)] + [MjpegReader(f"{base}/video_feed/door")]
    try:
        for viewer in viewers:
            viewer.read(1)
        assert fetch_json(f"{base}/api/cameras/door")["state"] == "reconnecting"
        server.process.send_signal(sig)
        # About a second here. A shutdown that waited for its viewers' streams to end would never end; 20 s is
        # room for a loaded machine, not a measure of speed.
        assert server.process.wait(timeout=20) == 0
        for viewer in viewers:
            # Each stream ends: the rest of it arrives, then the connection closes (a part cut short by the
            # process's exit is http.client's IncompleteRead).
            with pytest.raises((StopIteration, OSError, ValueError, http.client.HTTPException)):
                for _ in range(1000):
                    next(viewer.frames())
    finally:
        for viewer in viewers:
            viewer.close()
    server.wait_for_line("camera one: capture stopped")


def test_waitress_serve_with_environment_variables(running):
    port = free_port()
    running(
        # The flags README gives for waitress-serve.
        [sys.executable, "-m", "waitress", "--listen", f"127.0.0.1:{port}", "--threads", "16",
         "--connection-limit", "116", "--send-bytes", "1", "--channel-request-lookahead", "1",
         "--asyncore-use-poll", "--call", "webapp:create_app"],
        env(CAMSTREAM_CAMERAS="a=pattern,b=pattern", CAMSTREAM_WIDTH="160", CAMSTREAM_QUALITY="60"),
    )

    def answers() -> bool:
        try:
            fetch_json(f"http://127.0.0.1:{port}/healthz")
            return True
        except OSError:
            return False

    assert wait_until(answers, 30)
    cameras = fetch_json(f"http://127.0.0.1:{port}/api/cameras")["cameras"]
    assert [(c["name"], c["quality"]) for c in cameras] == [("a", 60), ("b", 60)]
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/snapshot/b.jpg", timeout=10) as response:
        assert decode(response.read()).shape == (120, 160, 3)


def test_the_installed_package_serves_its_page(running, tmp_path):
    """Run from outside the checkout, so templates and static files must come from the install."""
    clean = {k: v for k, v in os.environ.items() if k != "PYTHONPATH" and not k.startswith("CAMSTREAM_")}
    where = subprocess.run(
        [sys.executable, "-c", "import importlib.util as u; s = u.find_spec('webapp'); print(s.origin if s else '')"],
        check=False, capture_output=True, text=True, cwd=tmp_path, env=clean, timeout=60,
    ).stdout.strip()
    if not where:
        pytest.skip("camstream is not installed in this environment")
    assert not where.startswith(str(ROOT) + os.sep + "webapp"), "expected an installed copy"
    server = running([sys.executable, "-m", "webapp", "--source", "pattern", "--port", "0"], clean, tmp_path)
    port = server.wait_for_line(r"open http://localhost:(\d+)/").group(1)
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as response:
        assert "/video_feed/default" in response.read().decode()
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/static/camstream.js", timeout=10) as response:
        assert response.status == 200


@pytest.mark.parametrize("how", ["flags", "file"])
def test_without_handoff_the_streams_leave_workers_free(running, tmp_path, how):
    (tmp_path / "camstream.toml").write_text("socket_handoff = false\nthreads = 20\nport = 0\nsource = \"pattern\"\n")
    flags = ["--no-handoff", "--threads", "20", "--port", "0"] if how == "flags" else ["--config", "camstream.toml"]
    server = running([sys.executable, "-m", "webapp", *flags], env(), cwd=tmp_path)
    base = "http://127.0.0.1:" + server.wait_for_line(r"open http://localhost:(\d+)/").group(1)
    assert fetch_json(f"{base}/healthz")["max_viewers"] == 12


@pytest.mark.slow
def test_a_second_instance_stops_at_once_on_the_port_or_the_storage_it_would_share(tmp_path, running):
    storage = tmp_path / "store"
    first = running([sys.executable, "-m", "webapp", "--source", "pattern", "--port", "0", "--record",
                     "continuous", "--storage", str(storage), "--min-free", "0"], env())
    port = first.wait_for_line(r"open http://localhost:(\d+)/").group(1)
    # The same port, with workers and recording: refused before either starts.
    same_port = run_cli("--source", "pattern", "--port", port, "--detect", "motion", "--record", "continuous",
                        "--storage", str(tmp_path / "other"), "--min-free", "0")
    assert same_port.returncode == 2
    lines = same_port.stderr.strip().splitlines()
    assert lines == [(f"camstream: error: cannot listen on 127.0.0.1:{port}: Address already in use "
                      "(is camstream running already?)")], same_port.stderr
    assert not (tmp_path / "other").exists(), "no storage was touched"
    # Another port, the same storage: refused, naming the process that records there.
    same_storage = run_cli("--source", "pattern", "--port", "0", "--record", "continuous", "--storage",
                           str(storage), "--min-free", "0")
    assert same_storage.returncode == 2
    lines = same_storage.stderr.strip().splitlines()
    assert len(lines) == 1 and f"another camstream (pid {first.process.pid}) records into it" in lines[0], lines
    assert fetch_json(f"http://127.0.0.1:{port}/api/cameras/default")["recording"]["state"] == "recording"


def test_commands_named_in_messages_are_the_ones_this_camstream_was_run_as(tmp_path, monkeypatch):
    # After the README's install only .venv/bin/camstream exists: a bare "camstream" would be "command not found".
    script = tmp_path / ".venv" / "bin" / "camstream"
    script.parent.mkdir(parents=True)
    script.write_text("#!/bin/sh\n")
    script.chmod(0o755)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", [str(script)])
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    assert command("hash-password") == ".venv/bin/camstream hash-password"
    monkeypatch.setenv("PATH", f"{script.parent}:/usr/bin:/bin")
    assert command("hash-password") == "camstream hash-password", "on the PATH (an activated environment)"
    monkeypatch.setattr(sys, "argv", ["-m"])
    assert command("token list") == f"{sys.executable} -m webapp token list"


def test_tokens_listed_from_another_folder_say_where_they_were_looked_for(tmp_path):
    result = run_cli("token", "list", "--storage", str(tmp_path / "elsewhere"))
    assert result.returncode == 0 and result.stdout == ""
    assert f"no tokens file at {tmp_path / 'elsewhere' / 'tokens.json'}" in result.stderr


@pytest.mark.skipif(os.path.exists("/dev/video7"), reason="this machine has a /dev/video7")
def test_a_capture_device_that_is_not_there_is_said_at_start():
    result = run_cli("--source", "7", "--check-config")
    assert result.returncode == 0, result.stderr
    assert "camera default: there is no /dev/video7 on this machine (yet); it is tried whenever someone watches" \
        in result.stderr


def test_help_lists_the_commands_too():
    result = run_cli("--help")
    assert "camstream hash-password" in result.stdout and "camstream token create|list|revoke" in result.stdout
