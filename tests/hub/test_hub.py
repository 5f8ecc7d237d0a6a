"""Three camstream processes on 127.0.0.1: peers ``a`` and ``b`` with a pattern camera each, and a hub.

The hub reaches its peers as a user of theirs (HTTP Basic in the peer URL);
that password must never show at the hub.
"""

from __future__ import annotations

import base64
import contextlib
import inspect
import io
import json
import re
import shutil
import signal
import socket
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import av
import pytest
import websocket
from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    RejectConnection,
    Request,
    TextMessage,
)

from camera.media import MediaFeed
from camera.redact import Redactor
from camera.sources.peer_media import NotPassedThrough, PeerMediaRelay
from camera.sources.relay import split_credentials
from tests.auth_helpers import generate_password_hash
from tests.config.test_cli import Running, env
from tests.helpers import MjpegReader, decode, free_port, h264_aac_clip, wait_until
from tests.webrtc.test_whep import CHROMIUM_ARGS, open_page, play, wait_decoding
from webapp.api import events as api_events
from webapp.auth.state import read_users
from webapp.auth.users import make_user
from webapp.config.tomlfile import load
from webapp.config.values import ConfigError
from webapp.runtime import lineup
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
    clip: Path = Path()

    def peer_url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}"

    def peer_entry(self, name: str) -> str:
        """``NAME=URL`` of a peer as the hub is given it, with the peer's password."""
        return f"{name}=http://hub:{PASSWORD}@127.0.0.1:{self.ports[name]}"

    def start_peer(self, name: str, wait: bool = True) -> None:
        # Peer a has an H.264 camera too (a looping file with AAC, passed through like an IP camera's).
        clip = ["--camera", f"clip={self.clip}"] if name == "a" else []
        server = self.start([sys.executable, "-m", "webapp", "--camera", "pattern=pattern", *clip,
                             "--port", str(self.ports[name]), "--user", HUB_USER, "--idle-timeout", "1"], env())
        if wait:
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

    found = Boxes(start, {"a": free_port(), "b": free_port()}, clip=h264_aac_clip(folder / "clip.mp4", 15, 4))
    try:
        # The peers and the hub start together: the hub finds its peers down until they answer, as it would.
        for name in found.ports:
            found.start_peer(name, wait=False)
        peers = [f"--peer={found.peer_entry(name)}" for name in found.ports]
        found.hub = start([sys.executable, "-m", "webapp", "--source", "pattern", "--port", "0", "--idle-timeout", "1",
                           *peers], env())
        port = found.hub.wait_for_line(r"open http://localhost:(\d+)/", seen=found.hub_log).group(1)
        for name in found.ports:
            found.peers[name].wait_for_line(r"open http://localhost:\d+/")
        found.hub_url = f"http://127.0.0.1:{port}"
        assert wait_until(lambda: {"a.pattern", "b.pattern"} <= set(cameras(found.hub_url)), timeout=30)
        yield found
    finally:
        for server in started:
            server.stop()


@pytest.mark.slow
def test_the_hub_lists_every_peer_camera_in_its_api_and_page(boxes: Boxes) -> None:
    listed = cameras(boxes.hub_url)
    assert list(listed) == ["default", "a.pattern", "a.clip", "b.pattern"]
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
    try:
        with MjpegReader(boxes.hub_url + "/video_feed/a.pattern") as viewer:
            # Down at once in its peer block; its tile fails once nobody watches it (a viewer of an earlier test
            # keeps the camera open for its one-second idle timeout, reconnecting meanwhile).
            assert wait_until(lambda: cameras(boxes.hub_url)["b.pattern"]["peer"]["up"] is False, timeout=15)
            assert wait_until(lambda: cameras(boxes.hub_url)["b.pattern"]["state"] == "failed", timeout=30)
            down = cameras(boxes.hub_url)["b.pattern"]
            assert down["last_error"].startswith("peer b is down: could not reach it"), down
            assert PASSWORD not in json.dumps(down)
            assert len(viewer.read(5)) == 5  # the other peer's camera streams on through the hub
        assert cameras(boxes.hub_url)["a.pattern"]["peer"]["up"] is True
    finally:
        boxes.start_peer("b")  # also when the above failed: the module's other tests need it
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


def test_a_peer_answering_what_is_not_http_is_down_with_a_reason() -> None:
    listener = socket.create_server(("127.0.0.1", 0))

    def answer() -> None:
        with contextlib.suppress(OSError):
            connection, _ = listener.accept()
            with connection:
                connection.recv(65536)
                connection.sendall(b"SSH-2.0-OpenSSH_9.2\r\n" + b"\x00" * 64)

    threading.Thread(target=answer, daemon=True).start()
    try:
        link = PeerLink(PeerSpec("junk", f"http://127.0.0.1:{listener.getsockname()[1]}"), threading.Lock(),
                        lambda _: None, lambda _: None, {})
        link.poll()
    finally:
        listener.close()
    assert link.health.as_dict()["up"] is False
    assert link.health.as_dict()["error"].startswith("it answered garbage (")


def read_mse(ws: websocket.WebSocket, fragments: int) -> tuple[dict, bytes, list[bytes]]:
    """An /mse stream's header, init segment and its next ``fragments`` fragments."""
    header = json.loads(ws.recv())
    init = ws.recv()
    return header, init, [ws.recv() for _ in range(fragments)]


def decoded_frames(data: bytes) -> list[tuple[float, tuple[int, ...]]]:
    """What a player makes of an fMP4 stream: each video frame's time and picture shape."""
    with av.open(io.BytesIO(data), format="mp4") as container:
        return [(float(frame.time), frame.to_ndarray(format="bgr24").shape)
                for frame in container.decode(container.streams.video[0])]


def peer_clip(boxes: Boxes) -> dict:
    return cameras(boxes.peer_url("a"), AUTH)["clip"]


@pytest.mark.slow
def test_five_mse_viewers_at_the_hub_cost_the_peer_one_video_connection_and_no_decoding(boxes: Boxes) -> None:
    url = boxes.hub_url.replace("http://", "ws://") + "/mse/a.clip"
    decoded = (peer_clip(boxes).get("video") or {}).get("decoded", 0)  # by another test's MJPEG viewer, if any
    viewers = [websocket.create_connection(url, timeout=20) for _ in range(5)]
    try:
        for viewer in viewers:
            header, init, fragments = read_mse(viewer, 100)  # video and sound, a fragment each frame
            assert header["codecs"].startswith('video/mp4; codecs="avc1.') and "mp4a.40.2" in header["codecs"]
            frames = decoded_frames(init + b"".join(fragments))
            assert len(frames) >= 15 and {shape for _, shape in frames} == {(120, 160, 3)}
            times = [at for at, _ in frames]
            assert times == sorted(times) and len(set(times)) == len(times)
        assert cameras(boxes.hub_url)["a.clip"]["viewers"] == 5
        assert cameras(boxes.hub_url)["a.clip"]["peer"]["video"]["relaying"] is True
        seen = peer_clip(boxes)
        assert seen["video"]["mse_viewers"] == 1 and seen["viewers"] == 1
        assert seen["video"]["decoded"] == decoded, "the peer decodes nothing for the hub's MSE viewers"
    finally:
        for viewer in viewers:
            viewer.close()
    # Nobody watches at the hub: it lets go of the peer's video at once.
    assert wait_until(lambda: peer_clip(boxes)["video"]["mse_viewers"] == 0, timeout=15)
    assert cameras(boxes.hub_url)["a.clip"]["peer"]["video"]["relaying"] is False


@pytest.mark.slow
def test_hls_at_the_hub_is_made_of_the_peers_fragments(boxes: Boxes) -> None:
    base = f"{boxes.hub_url}/hls/a.clip/"
    playlist = get(base + "index.m3u8").decode()
    init = re.search(r'#EXT-X-MAP:URI="([^"]+)"', playlist)
    segments = re.findall(r"^(seg-[^\s?]+\.m4s)", playlist, re.MULTILINE)
    assert init is not None and segments, playlist
    # One connection at the peer for the hub's HLS (the relay, read while HLS is read), never one per request.
    assert wait_until(lambda: peer_clip(boxes)["video"]["mse_viewers"] == 1, 20), peer_clip(boxes)["video"]
    frames = decoded_frames(get(base + init[1]) + b"".join(get(base + name) for name in segments))
    assert len(frames) >= 10 and {shape for _, shape in frames} == {(120, 160, 3)}


@pytest.mark.slow
def test_a_peer_camera_whose_video_is_not_passed_through_answers_mse_with_its_mjpeg(boxes: Boxes) -> None:
    url = boxes.hub_url.replace("http://", "ws://") + "/mse/b.pattern"

    def refusal() -> websocket.WebSocketBadStatusException | None:
        try:
            ws = websocket.create_connection(url, timeout=20)
        except websocket.WebSocketBadStatusException as exc:
            return exc
        try:
            ws.recv()  # the hub asked the peer, which said no: this viewer is closed
        except websocket.WebSocketConnectionClosedException:
            pass
        finally:
            ws.close()
        return None

    # The first try finds out from the peer (unless the hub knew already); from then on the hub answers 404.
    refused = refusal() or refusal()
    assert refused is not None and refused.status_code == 404
    assert "/video_feed/b.pattern" in json.loads(refused.resp_body)["error"]


TOKEN = "cs_peer-token-4e8d1b0a6c"


def peer_tables(boxes: Boxes, b: str) -> str:
    """A hub's config file: peer a by a user and password of its own, peer b as ``b`` says (TOML lines)."""
    return (f'port = 0\nsource = "pattern"\nidle_timeout = 1\n\n'
            f'[peers.a]\nurl = "{boxes.peer_url("a")}"\nuser = "hub"\npassword = "{PASSWORD}"\n\n'
            f'[peers.b]\nurl = "{boxes.peer_url("b")}"\n{b}\n')


@pytest.mark.slow
def test_peer_tables_are_reloaded_on_sighup_and_their_credentials_show_nowhere(boxes: Boxes, tmp_path: Path) -> None:
    config = tmp_path / "camstream.toml"
    # Peer b is given a token it never made: b is down, saying why.
    config.write_text(peer_tables(boxes, f'token = "{TOKEN}"'))
    hub = boxes.start([sys.executable, "-m", "webapp", "--config", str(config)], env())
    seen: list[str] = []
    url = "http://127.0.0.1:" + hub.wait_for_line(r"open http://localhost:(\d+)/", seen=seen).group(1)
    assert wait_until(lambda: "a.pattern" in cameras(url), timeout=15)
    down = r"peer b \(http://127.0.0.1:\d+\?token=\*\*\*\) is down: it answered HTTP 40[13]"
    if not any(re.search(down, line) for line in seen):
        hub.wait_for_line(down, seen=seen)
    with MjpegReader(url + "/video_feed/a.pattern") as viewer:
        assert len(viewer.read(2)) == 2
    # Now b by a user and password too: a reload brings its cameras.
    config.write_text(peer_tables(boxes, f'user = "hub"\npassword = "{PASSWORD}"'))
    hub.process.send_signal(signal.SIGHUP)
    assert wait_until(lambda: list(cameras(url)) == ["default", "a.pattern", "a.clip", "b.pattern"], timeout=15)
    assert "token=***" not in json.dumps(cameras(url)) and "hub:***@127.0.0.1" in cameras(url)["b.pattern"]["source"]
    texts = [get(url + path).decode() for path in ("/api/cameras", "/", "/healthz", "/api/cameras/b.pattern")]
    hub.stop()
    while not hub.lines.empty():
        seen.append(hub.lines.get())
    for text in [*texts, "".join(seen)]:
        assert TOKEN not in text and PASSWORD not in text


@pytest.mark.parametrize("table, message", [
    ('[peers.a]\ntoken = "x"', "peer 'a' has no url"),
    ('[peers.a]\nurl = "http://pi"\npasword = "x"', "unknown key 'pasword' in a peer table"),
    ('[peers.a]\nurl = "http://pi"\nuser = "hub"', "peer 'a' takes a token, or a user and a password"),
    ('[peers.a]\nurl = "http://pi"\npassword = 7', "password of peer 'a' must be text"),
])
def test_a_wrong_peer_table_names_its_line_and_key(tmp_path: Path, table: str, message: str) -> None:
    config = tmp_path / "camstream.toml"
    config.write_text(table + "\n")
    with pytest.raises(ConfigError) as caught:
        load(config)
    assert message in str(caught.value) and str(config) in str(caught.value)


def test_a_peer_table_with_a_user_makes_a_url_whose_password_is_quoted() -> None:
    found = parse_peers({"g": {"url": "http://pi:8000", "user": "hub", "password": "p@ss:/#"}})
    assert found["g"].url == "http://hub:p%40ss%3A%2F%23@pi:8000" and found["g"].shown == "http://hub:***@pi:8000"
    assert split_credentials(found["g"].url + "/api/cameras")[1] == {
        "Authorization": "Basic " + base64.b64encode(b"hub:p@ss:/#").decode()}


def peer_cameras_may_be_given_to_users() -> bool:
    """Whether a user's cameras may name a peer's before the peer answers (webapp/auth/state.py's check)."""
    try:
        read_users({"USERS": f"ada:{generate_password_hash('x')}:viewer:a.pattern"}, {}, [])
    except ConfigError:
        return False
    return True


@pytest.mark.slow
@pytest.mark.skipif(not peer_cameras_may_be_given_to_users(),
                    reason="webapp/auth/state.py's read_users must let a user's cameras name PEER.CAMERA")
def test_a_viewer_given_one_peer_camera_sees_nothing_else(boxes: Boxes) -> None:
    ada = {"Authorization": "Basic " + base64.b64encode(b"ada:ada-pw").decode()}
    users = [f"--user=ada:{generate_password_hash('ada-pw')}:viewer:a.pattern",
             f"--user=root:{generate_password_hash('root-pw')}:admin"]
    hub = boxes.start([sys.executable, "-m", "webapp", "--source", "pattern", "--port", "0", *users,
                       f"--peer={boxes.peer_entry('a')}", f"--peer={boxes.peer_entry('b')}"], env())
    url = "http://127.0.0.1:" + hub.wait_for_line(r"open http://localhost:(\d+)/").group(1)
    root = {"Authorization": "Basic " + base64.b64encode(b"root:root-pw").decode()}
    assert wait_until(lambda: "b.pattern" in cameras(url, root), timeout=15)
    assert list(cameras(url, ada)) == ["a.pattern"]
    with MjpegReader(url + "/video_feed/a.pattern", headers=ada) as viewer:
        assert viewer.status == 200 and len(viewer.read(1)) == 1
    for path in ("/video_feed/b.pattern", "/snapshot/a.clip.jpg", "/api/cameras/b.pattern", "/video_feed/default"):
        with pytest.raises(urllib.error.HTTPError) as refused:
            get(url + path, ada)
        # As for a local camera it may not see: the same answer as for one that is not there.
        assert refused.value.code == 404 and json.loads(refused.value.read())["error"].startswith("no camera named")
    hub.stop()


@pytest.mark.parametrize("camera, ok", [("garden.pond", True), ("pond", True), ("a.b.c", False), ("garden.", False),
                                        (".pond", False), ("gar den.pond", False)])
def test_a_users_cameras_may_name_a_peers_camera_with_a_dot(camera: str, ok: bool) -> None:
    def make() -> object:
        return make_user("ada", generate_password_hash("x"), "viewer", [camera])
    if ok:
        assert make().cameras == frozenset({camera})  # type: ignore[attr-defined]
    else:
        with pytest.raises(ConfigError, match="is not a camera name"):
            make()


def events_hooked() -> bool:
    """Whether the hub pushes and lists its peers' events: the hooks in webapp/runtime/lineup.py and
    webapp/api/events.py that hand them to webapp/runtime/peer_events.py."""
    return hasattr(api_events, "peer_event_file") and "peers.events" in inspect.getsource(lineup._update_peers)


def sse_records(stream: object) -> Iterator[tuple[str, dict]]:
    """An event stream's records as ``(event, data)``."""
    kind, data = "message", []
    for line in stream:  # type: ignore[attr-defined]
        text = line.decode().rstrip("\r\n")
        if not text:
            if data:
                yield kind, json.loads("\n".join(data))
            kind, data = "message", []
        elif text.startswith("event:"):
            kind = text.partition(":")[2].strip()
        elif text.startswith("data:"):
            data.append(text.partition(":")[2].strip())


@pytest.mark.slow
@pytest.mark.skipif(not events_hooked(), reason="the hooks of webapp/runtime/lineup.py and webapp/api/events.py")
def test_a_peers_motion_events_are_pushed_listed_and_their_files_fetched_at_the_hub(boxes: Boxes, tmp_path: Path,
                                                                                     browser) -> None:
    port = free_port()
    # Peer m: a moving ball under a motion detector, events closed every 2 s.
    peer = boxes.start([sys.executable, "-m", "webapp", "--camera", "yard=pattern", "--detect", "yard=motion",
                        "--record", "yard=events", "--fps", "5", "--event-max-length", "2", "--pre-capture", "0",
                        "--post-capture", "0", "--storage", str(tmp_path / "m"), "--port", str(port),
                        "--user", HUB_USER], env())
    peer.wait_for_line(r"open http://localhost:\d+/")
    hub = boxes.start([sys.executable, "-m", "webapp", "--source", "pattern", "--port", "0",
                       f"--peer=m=http://hub:{PASSWORD}@127.0.0.1:{port}", f"--peer={boxes.peer_entry('a')}"], env())
    seen: list[str] = []
    url = "http://127.0.0.1:" + hub.wait_for_line(r"open http://localhost:(\d+)/", seen=seen).group(1)
    pushed: dict[str, dict] = {}
    with urllib.request.urlopen(url + "/events", timeout=30) as stream:
        for kind, data in sse_records(stream):
            if kind in ("detection", "event_end") and data.get("camera") == "m.yard":
                pushed.setdefault(kind, data)
            if len(pushed) == 2:
                break
    assert pushed["detection"]["detections"] and pushed["detection"]["detections"][0]["label"] == "motion"
    ended = pushed["event_end"]
    peer_name, _, number = ended["id"].partition(".")
    assert peer_name == "m" and number.isdigit() and ended["clip"] == f"/api/events/{ended['id']}/clip.mp4"

    listed = json.loads(get(url + "/api/events?limit=20"))["events"]
    assert ended["id"] in [event["id"] for event in listed]
    assert {event["camera"] for event in listed} == {"m.yard"}
    starts = [event["start"] for event in listed]
    assert starts == sorted(starts, reverse=True), "one timeline, newest first"
    assert json.loads(get(url + "/api/events?camera=a.pattern"))["events"] == []

    snapshot = decode(get(url + f"/api/events/{ended['id']}/snapshot.jpg"))
    assert snapshot.shape == (480, 640, 3)
    assert len(decoded_frames(get(url + f"/api/events/{ended['id']}/clip.mp4"))) >= 2
    with pytest.raises(urllib.error.HTTPError) as missing:
        get(url + "/api/events/m.999999999/snapshot.jpg")
    assert missing.value.code == 404 and "error" in json.loads(missing.value.read())
    # The history page shows it, with its snapshot (boxes drawn) fetched from the peer through the hub.
    page = browser.new_page()
    try:
        page.goto(url + "/history")
        page.wait_for_function(f"() => {{ const i = document.querySelector('li[data-event=\"{ended['id']}\"] img');"
                               " return i && i.complete && i.naturalWidth === 640; }", timeout=30000)
    finally:
        page.close()
    hub.stop()
    while not hub.lines.empty():
        seen.append(hub.lines.get())
    assert PASSWORD not in "".join(seen) and PASSWORD not in json.dumps(listed)


@pytest.mark.slow
def test_the_hubs_page_shows_every_camera_and_plays_a_peers_h264_in_chromium(boxes: Boxes, browser) -> None:
    # Once the peer has opened its camera (the hub asked for its video), the hub's page offers that video.
    ws = websocket.create_connection(boxes.hub_url.replace("http://", "ws://") + "/mse/a.clip", timeout=20)
    try:
        read_mse(ws, 1)
    finally:
        ws.close()
    assert wait_until(lambda: re.search(r'camera="a\.clip"[^>]*\svideo>', get(boxes.hub_url + "/").decode()), timeout=15)
    page = browser.new_page()
    try:
        page.goto(boxes.hub_url + "/")
        for name in ("default", "a.pattern", "b.pattern"):
            page.wait_for_function(f"() => {{ const i = document.querySelector('camstream-view[camera=\"{name}\"] img');"
                                   " return i && i.naturalWidth > 0; }", timeout=30000)
        page.wait_for_function(
            "() => { const v = document.querySelector('camstream-view[camera=\"a.clip\"] video');"
            " return v && !v.paused && v.readyState >= 3 && v.getVideoPlaybackQuality().totalVideoFrames > 15; }",
            timeout=30000)
        size = page.evaluate("() => { const v = document.querySelector('camstream-view[camera=\"a.clip\"] video');"
                             " return [v.videoWidth, v.videoHeight]; }")
        assert size == [160, 120]
    finally:
        page.close()
    assert wait_until(lambda: peer_clip(boxes)["video"]["mse_viewers"] == 0, timeout=15)


class FakeMsePeer:
    """A peer's /mse on a real socket that answers with ``status``, or accepts and sends ``messages``
    (str: text, bytes: binary, None: a close) and then holds the connection open."""

    def __init__(self, status: int, messages: list[str | bytes]) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.status, self.messages = status, messages
        self.done = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        sock, _ = self.server.accept()
        connection = WSConnection(ConnectionType.SERVER)
        while not any(isinstance(event, Request) for event in self._events(sock, connection)):
            pass
        if self.status != 101:
            sock.sendall(connection.send(RejectConnection(status_code=self.status, has_body=False)))
        else:
            sock.sendall(connection.send(AcceptConnection()))
            for message in self.messages:
                if message is None:
                    sock.sendall(connection.send(CloseConnection(code=1000)))
                else:
                    sock.sendall(connection.send(TextMessage(message) if isinstance(message, str)
                                                 else BytesMessage(message)))
        self.done.wait(30)
        sock.close()

    @staticmethod
    def _events(sock: socket.socket, connection: WSConnection) -> list[object]:
        connection.receive_data(sock.recv(65536))
        return list(connection.events())

    def close(self) -> None:
        self.done.set()
        self.server.close()


@pytest.mark.parametrize("status, messages, error", [
    (404, [], "the peer does not pass this camera's video through"),
    (101, [None], "the peer closed its video stream before any video: it is not passed through"),
    (403, [], "the peer answered its video stream with HTTP 403"),
    (101, ["<html>"], "the peer's video stream is not a camstream's (its header is not JSON)"),
    (101, ['{"type": "mse", "codecs": "x"}', b"\0\0\0\x08free"], "the peer's init segment is not one"),
    (101, ['{"type": "mse", "codecs": "x"}', b"\0" * (16 * 1024 * 1024 + 1)],
     "the peer sent a video message over the size camstream takes"),
])
def test_a_peer_whose_video_is_refused_or_garbage_ends_the_relay_with_a_reason(status: int, messages: list,
                                                                               error: str) -> None:
    peer = FakeMsePeer(status, messages)
    feed = MediaFeed()
    url = f"http://hub:{PASSWORD}@127.0.0.1:{peer.port}/mse/cam?token={TOKEN}"
    relay = PeerMediaRelay("p.cam", url, feed, Redactor(url))
    try:
        relay.start()
        assert wait_until(lambda: not relay.alive, timeout=20)
    finally:
        relay.stop()
        peer.close()
    assert relay.error is not None and str(relay.error).startswith(error)
    assert isinstance(relay.error, NotPassedThrough) == (status == 404 or messages == [None])
    assert PASSWORD not in str(relay.error) and TOKEN not in str(relay.error) and not feed.live


@pytest.fixture(scope="module")
def webrtc_chromium(browser):  # type: ignore[no-untyped-def]
    """Chromium as the WHEP tests start it (loopback in peer connections), through the module's one Playwright."""
    launched = browser.browser_type.launch(executable_path=shutil.which("chromium") or shutil.which("chromium-browser"),
                                           headless=True, args=CHROMIUM_ARGS)
    yield launched
    launched.close()


@pytest.mark.slow
def test_chromium_plays_a_peers_h264_over_webrtc_at_the_hub(boxes: Boxes, webrtc_chromium) -> None:
    page = open_page(webrtc_chromium, boxes.hub_url)
    try:
        play(page, "a.clip")
        found = wait_decoding(page, frames=15, timeout=40)
        assert found["width"] == 160 and any("H264" in codec for codec in found["codecs"])
        assert peer_clip(boxes)["video"]["mse_viewers"] == 1, "the hub's WebRTC viewer is one /mse viewer at the peer"
    finally:
        page.close()
