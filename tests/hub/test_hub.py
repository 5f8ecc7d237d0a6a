"""Three camstream processes on 127.0.0.1: peers ``a`` and ``b`` with a pattern camera each, and a hub.

The hub reaches its peers as a user of theirs (HTTP Basic in the peer URL);
that password must never show at the hub.
"""

from __future__ import annotations

import base64
import json
import signal
import sys
import threading
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.auth_helpers import generate_password_hash
from tests.config.test_cli import Running, env
from tests.helpers import MjpegReader, decode, free_port, wait_until
from webapp.config.values import ConfigError
from webapp.runtime.peers import PeerLink, PeerSpec, parse_peers

PASSWORD = "peer-secret-pw-7f3a9c"
HUB_USER = f"hub:{generate_password_hash(PASSWORD)}:viewer"
AUTH = {"Authorization": "Basic " + base64.b64encode(f"hub:{PASSWORD}".encode()).decode()}


def get(url: str, headers: dict[str, str] | None = None) -> bytes:
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=10) as response:
        return response.read()


def cameras(base: str, headers: dict[str, str] | None = None) -> dict[str, dict]:
    return {camera["name"]: camera for camera in json.loads(get(base + "/api/cameras", headers))["cameras"]}


@dataclass
class Boxes:
    start: object
    ports: dict[str, int]
    peers: dict[str, Running] = field(default_factory=dict)
    hub: Running | None = None
    hub_url: str = ""
    hub_log: list[str] = field(default_factory=list)

    def peer_url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}"

    def peer_entry(self, name: str) -> str:
        """``NAME=URL`` of a peer as the hub is given it, with the peer's password."""
        return f"{name}=http://hub:{PASSWORD}@127.0.0.1:{self.ports[name]}"

    def start_peer(self, name: str) -> None:
        server = self.start([sys.executable, "-m", "webapp", "--camera", "pattern=pattern", "--port", str(self.ports[name]),
                             "--user", HUB_USER, "--idle-timeout", "1"], env())
        server.wait_for_line(r"open http://localhost:\d+/")
        self.peers[name] = server

    def hub_lines(self) -> str:
        """Every line the hub has logged so far."""
        while not self.hub.lines.empty():
            self.hub_log.append(self.hub.lines.get())
        return "".join(self.hub_log)


@pytest.fixture(scope="module")
def boxes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Boxes]:
    started: list[Running] = []
    folder = tmp_path_factory.mktemp("hub")  # each server's storage (its secret key) goes here, not the checkout

    def start(command: list[str], environment: dict[str, str]) -> Running:
        started.append(Running(command, environment, cwd=folder))
        return started[-1]

    found = Boxes(start, {"a": free_port(), "b": free_port()})
    try:
        for name in found.ports:
            found.start_peer(name)
        peers = [f"--peer={found.peer_entry(name)}" for name in found.ports]
        found.hub = start([sys.executable, "-m", "webapp", "--source", "pattern", "--port", "0", "--idle-timeout", "1",
                           *peers], env())
        port = found.hub.wait_for_line(r"open http://localhost:(\d+)/", seen=found.hub_log).group(1)
        found.hub_url = f"http://127.0.0.1:{port}"
        assert wait_until(lambda: {"a.pattern", "b.pattern"} <= set(cameras(found.hub_url)), timeout=30)
        yield found
    finally:
        for server in started:
            server.stop()


@pytest.mark.slow
def test_the_hub_lists_every_peer_camera_in_its_api_and_page(boxes: Boxes) -> None:
    listed = cameras(boxes.hub_url)
    assert list(listed) == ["default", "a.pattern", "b.pattern"]
    assert listed["a.pattern"]["peer"] == {**listed["a.pattern"]["peer"], "name": "a", "up": True, "camera": "pattern"}
    page = get(boxes.hub_url + "/").decode()
    assert 'data-camera="a.pattern"' in page and 'data-camera="b.pattern"' in page
    with MjpegReader(boxes.hub_url + "/video_feed/b.pattern") as viewer:
        assert viewer.status == 200
        picture = decode(viewer.read(1)[0])
    assert picture.shape[0] > 0 and picture.shape[1] > 0


@pytest.mark.slow
def test_twenty_viewers_at_the_hub_cost_the_peer_one_connection(boxes: Boxes) -> None:
    viewers = [MjpegReader(boxes.hub_url + "/video_feed/a.pattern") for _ in range(20)]
    try:
        for viewer in viewers:
            assert viewer.status == 200
            viewer.read(2)
        assert cameras(boxes.hub_url)["a.pattern"]["viewers"] == 20
        assert cameras(boxes.peer_url("a"), AUTH)["pattern"]["viewers"] == 1
    finally:
        for viewer in viewers:
            viewer.close()
    # Nobody watches: the hub lets go of the peer's stream.
    assert wait_until(lambda: cameras(boxes.peer_url("a"), AUTH)["pattern"]["viewers"] == 0, timeout=15)


@pytest.mark.slow
def test_the_peers_password_shows_nowhere_at_the_hub(boxes: Boxes) -> None:
    with MjpegReader(boxes.hub_url + "/video_feed/a.pattern") as viewer:
        viewer.read(1)
    texts = [get(boxes.hub_url + "/api/cameras").decode(), get(boxes.hub_url + "/").decode(),
             get(boxes.hub_url + "/api/cameras/a.pattern").decode(), get(boxes.hub_url + "/healthz").decode()]
    assert "hub:***@127.0.0.1" in cameras(boxes.hub_url)["a.pattern"]["source"]
    assert not [text for text in texts if PASSWORD in text]
    assert "peer a" in boxes.hub_lines() and PASSWORD not in boxes.hub_lines()


@pytest.mark.slow
def test_a_peer_killed_shows_down_while_the_other_streams_on_and_comes_back(boxes: Boxes) -> None:
    boxes.peers["b"].process.send_signal(signal.SIGKILL)
    boxes.peers["b"].process.wait(timeout=10)
    with MjpegReader(boxes.hub_url + "/video_feed/a.pattern") as viewer:
        assert wait_until(lambda: cameras(boxes.hub_url)["b.pattern"]["peer"]["up"] is False, timeout=15)
        down = cameras(boxes.hub_url)["b.pattern"]
        assert down["state"] == "failed" and down["last_error"].startswith("peer b is down: could not reach it")
        assert PASSWORD not in json.dumps(down)
        assert len(viewer.read(5)) == 5  # the other peer's camera streams on through the hub
    assert cameras(boxes.hub_url)["a.pattern"]["peer"]["up"] is True
    boxes.start_peer("b")
    assert wait_until(lambda: cameras(boxes.hub_url)["b.pattern"]["peer"]["up"] is True, timeout=15)
    with MjpegReader(boxes.hub_url + "/video_feed/b.pattern") as viewer:
        assert len(viewer.read(2)) == 2
    assert "peer b" in boxes.hub_lines() and PASSWORD not in boxes.hub_lines()


@pytest.mark.slow
def test_sighup_applies_a_change_of_peers(boxes: Boxes, tmp_path: Path) -> None:
    config = tmp_path / "camstream.toml"
    config.write_text(f'port = 0\nsource = "pattern"\npeers = "{boxes.peer_entry("a")}"\n')
    hub = boxes.start([sys.executable, "-m", "webapp", "--config", str(config)], env())
    url = "http://127.0.0.1:" + hub.wait_for_line(r"open http://localhost:(\d+)/").group(1)
    assert wait_until(lambda: "a.pattern" in cameras(url), timeout=15)
    config.write_text(f'port = 0\nsource = "pattern"\npeers = "{boxes.peer_entry("b")}"\n')
    hub.process.send_signal(signal.SIGHUP)
    assert wait_until(lambda: list(cameras(url)) == ["default", "b.pattern"], timeout=15)
    hub.stop()


@pytest.mark.parametrize("value, expected", [
    ("a=http://127.0.0.1:1,b=https://box:8443/", {"a": "http://127.0.0.1:1", "b": "https://box:8443/"}),
    (["garden=http://u:p@pi.local:8000"], {"garden": "http://u:p@pi.local:8000"}),
    ({"garden": {"url": "http://pi:8000", "token": "cs_x"}}, {"garden": "http://pi:8000?token=cs_x"}),
    (None, {}),
])
def test_peers_are_read_from_flags_variables_and_tables(value: object, expected: dict[str, str]) -> None:
    assert {name: spec.url for name, spec in parse_peers(value).items()} == expected


@pytest.mark.parametrize("value, message", [
    (["garden"], "peer 'garden' is not NAME=URL"),
    (["gar.den=http://pi"], "peer name 'gar.den' must start"),
    (["a=http://pi", "a=http://pj"], "peer 'a' is given twice"),
    (["a=ftp://u:secret@pi/"], "peer 'a': ftp://u:***@pi/ is not an http:// or https:// URL"),
])
def test_a_wrong_peer_is_one_line_without_its_secret(value: object, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_peers(value)
    assert str(caught.value).startswith(message) and "secret" not in str(caught.value)


@pytest.mark.parametrize("body, error", [
    (b'{"cameras": [' + b" " * (2 * 1024 * 1024) + b"]}", "its camera list is over 1048576 bytes"),
    (b"<html>not json</html>", "its camera list is not a camstream's JSON"),
    (b'{"cameras": [{"name": "../etc"}]}', "it names a camera '../etc', which is not a camera name"),
])
def test_a_peer_answering_garbage_is_down_and_bounded(body: bytes, error: str) -> None:
    class Garbage(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Garbage)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    added: list[object] = []
    try:
        spec = PeerSpec("junk", f"http://hub:{PASSWORD}@127.0.0.1:{server.server_address[1]}")
        link = PeerLink(spec, threading.Lock(), added.extend, added.extend, {})
        link.poll()
    finally:
        server.shutdown()
        server.server_close()
    assert link.health.as_dict()["up"] is False and link.health.as_dict()["error"] == error
    assert added == [] and link.cameras == {}
