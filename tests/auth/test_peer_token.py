"""A peer token (``camstream token create --peer``): what a hub holds to read every camera of a box.

It reads the camera list, the events and their files, and every kind of
live stream, as ``?token=`` or ``Authorization: Bearer``; it changes
nothing and opens nothing an admin's (a 403 JSON there); revoking it cuts
the streams it opened. Real servers on 127.0.0.1, the token made by the
real command line.
"""

from __future__ import annotations

import http.client
import json
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import websocket

from tests.auth_helpers import PASSWORDS, USERS, Client, Recorder, basic
from tests.config.test_cli import run_cli
from tests.config.test_config_reload import Watching
from tests.conftest import Servers
from tests.helpers import decode, h264_aac_clip, wait_until
from webapp import create_app
from webapp.auth.state import TOKENS_FILE
from webapp.auth.tokens import PEER_CAMERA, TokenStore


def camstream_token(*args: str) -> subprocess.CompletedProcess:
    return run_cli("token", *args)


@pytest.fixture(scope="module")
def box(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """A box with a pattern camera (motion events) and an H.264 clip passed through, and a peer token for it."""
    storage = tmp_path_factory.mktemp("peer-token")
    clip = h264_aac_clip(storage / "clip.mp4", 15, 4)
    app = create_app({"CAMERAS": {"door": "pattern", "clip": str(clip)}, "USERS": USERS, "WIDTH": 160,
                      "DETECT": {"door": "motion"}, "RECORD": {"door": "continuous"}, "STORAGE": str(storage),
                      "MIN_FREE": 0, "LOGIN_ATTEMPTS": 1000})
    with Servers() as servers:
        base = servers.start(app)
        made = camstream_token("create", "--peer", "--label", "the hub", "--storage", str(storage))
        assert made.returncode == 0, made.stderr
        token = made.stdout.splitlines()[1]
        admin = Client(base, Recorder(), basic("ada", PASSWORDS["ada"]))
        # The pattern moves: door, recorded, soon has an event.
        assert wait_until(lambda: admin.get("/api/events?camera=door").json()["events"], 30)
        yield {"base": base, "storage": storage, "token": token, "made": made.stdout, "admin": admin}


def peer(box: dict, bearer: bool = False) -> Client:
    return Client(box["base"], Recorder(), f"Bearer {box['token']}" if bearer else None)


def with_token(box: dict, path: str) -> str:
    return path + ("&" if "?" in path else "?") + "token=" + box["token"]


def test_the_command_line_makes_lists_and_refuses_peer_tokens(box: dict) -> None:
    assert box["token"].startswith("cst_") and "--peer NAME=http://" in box["made"]
    listed = camstream_token("list", "--storage", str(box["storage"]))
    token_id, camera, label = listed.stdout.split(None, 2)
    assert (camera, label.strip()) == (PEER_CAMERA, "the hub") and box["token"] not in listed.stdout
    assert {"id": token_id, "camera": "*"}.items() <= box["admin"].get("/api/tokens").json()["tokens"][0].items()
    for wrong in (["door", "--peer"], []):
        refused = camstream_token("create", *wrong, "--storage", str(box["storage"]))
        assert refused.returncode != 0 and "--peer" in refused.stderr and "cst_" not in refused.stdout
    assert len(box["admin"].get("/api/tokens").json()["tokens"]) == 1, "nothing was made by a wrong command"


@pytest.mark.parametrize("bearer", [False, True], ids=["query", "bearer"])
def test_a_peer_token_reads_every_camera_and_the_events(box: dict, bearer: bool) -> None:
    client = peer(box, bearer)
    path = (lambda p: p) if bearer else (lambda p: with_token(box, p))
    listed = client.get(path("/api/cameras"))
    assert listed.status == 200 and [camera["name"] for camera in listed.json()["cameras"]] == ["door", "clip"]
    assert client.get(path("/api/cameras/clip")).json()["name"] == "clip"
    token_id = box["admin"].get("/api/tokens").json()["tokens"][0]["id"]
    assert client.get(path("/api/me")).json() == {"name": f"peer token {token_id}", "role": "viewer",
                                                  "via": "peer token", "cameras": None}
    events = client.get(path("/api/events")).json()["events"]
    assert events and {event["camera"] for event in events} == {"door"}
    assert client.get(path(f"/api/events/{events[0]['id']}")).status == 200
    snapshot = client.get(path(f"/api/events/{events[0]['id']}/snapshot.jpg"))
    assert snapshot.status == 200 and decode(snapshot.body) is not None
    picture = client.get(path("/snapshot/door.jpg"))
    assert picture.headers["Content-Type"] == "image/jpeg" and decode(picture.body) is not None
    sse = client.get(path("/events"))
    assert sse.status == 200 and sse.headers["Content-Type"].startswith("text/event-stream")


def test_a_peer_token_opens_every_kind_of_stream(box: dict) -> None:
    base = box["base"]
    viewer = Watching(with_token(box, f"{base}/video_feed/door"))
    try:
        assert viewer.first.wait(20) and viewer.reader.status == 200
    finally:
        viewer.reader.close()
    ws = websocket.create_connection(with_token(box, base.replace("http://", "ws://") + "/mse/clip"), timeout=20)
    try:
        header = json.loads(ws.recv())
        assert header["codecs"].startswith('video/mp4; codecs="avc1.') and len(ws.recv()) > 0
    finally:
        ws.close()
    playlist = peer(box).get(with_token(box, "/hls/clip/index.m3u8"))
    assert playlist.status == 200, playlist.body[:200]
    assert f"token={box['token']}" in playlist.body.decode(), "every URI of the playlist carries the token"


# Everything a peer token may not do: change anything, or read what is an admin's or a browser's.
REFUSED = [
    ("POST", "/api/tokens"), ("GET", "/api/tokens"), ("DELETE", "/api/tokens/abc"), ("DELETE", "/api/events/1"),
    ("GET", "/metrics"), ("GET", "/api/cameras/door/zones"), ("PUT", "/api/cameras/door/zones"),
    ("POST", "/api/cameras/door/detect"), ("POST", "/whep/clip"), ("GET", "/api/boxes/found"), ("GET", "/"),
    ("GET", "/history"), ("HEAD", "/api/tokens"),
]


@pytest.mark.parametrize("method, path", REFUSED, ids=[f"{method} {path}" for method, path in REFUSED])
def test_a_peer_token_is_refused_where_it_would_write_or_be_an_admin(box: dict, method: str, path: str) -> None:
    for client, target in ((peer(box), with_token(box, path)), (peer(box, bearer=True), path)):
        answer = client.request(method, target, b"{}", Content_Type="application/json")
        assert answer.status == 403, (method, path, answer.status, answer.body[:200])
        if method != "HEAD":
            assert answer.headers["Content-Type"] == "application/json" and answer.json()["status"] == 403


def test_a_wrong_bearer_token_is_a_401_and_a_cameras_token_stays_one_camera(box: dict) -> None:
    wrong = Client(box["base"], Recorder(), "Bearer cst_not-a-token").get("/api/cameras")
    assert wrong.status == 401 and wrong.headers["Content-Type"] == "application/json"
    one = box["admin"].request("POST", "/api/tokens", b'{"camera": "door"}', Content_Type="application/json").json()
    try:
        assert Client(box["base"], Recorder(), f"Bearer {one['token']}").get("/api/cameras").status == 403
        assert peer(box).get(f"/snapshot/door.jpg?token={one['token']}").status == 200
        assert peer(box).get(f"/snapshot/clip.jpg?token={one['token']}").status == 404
    finally:
        assert box["admin"].request("DELETE", f"/api/tokens/{one['id']}").status == 200


class EventReader:
    """An ``/events`` reader in a thread, noticing when the server ends the stream."""

    def __init__(self, base: str, path: str) -> None:
        host, port = base.removeprefix("http://").split(":")
        self.connection = http.client.HTTPConnection(host, int(port), timeout=30)
        self.connection.request("GET", path)
        self.response = self.connection.getresponse()
        self.ended = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        try:
            while self.response.read1(4096):
                pass
        except (OSError, ValueError, http.client.HTTPException):
            pass
        finally:
            self.ended.set()


def closed_within(ws: websocket.WebSocket, seconds: float) -> bool:
    """Whether the server closes ``ws`` within ``seconds`` (read in a thread until it does)."""
    closed = threading.Event()

    def read() -> None:
        try:
            while ws.recv():
                pass
        except (websocket.WebSocketException, OSError):
            pass
        closed.set()
    threading.Thread(target=read, daemon=True).start()
    return closed.wait(seconds)


def test_revoking_a_peer_token_cuts_its_streams_and_it_opens_nothing_more(box: dict) -> None:
    store = TokenStore(Path(box["storage"]) / TOKENS_FILE)
    made, secret = store.create(PEER_CAMERA, "revoked soon")
    other = box["token"]
    base = box["base"]
    mjpeg = Watching(f"{base}/video_feed/door?token={secret}")
    bystander = Watching(f"{base}/video_feed/door?token={other}")
    events = EventReader(base, f"/events?token={secret}")
    ws = websocket.create_connection(f"{base.replace('http://', 'ws://')}/mse/clip?token={secret}", timeout=20)
    try:
        assert mjpeg.first.wait(20) and bystander.first.wait(20) and events.response.status == 200
        assert json.loads(ws.recv())["codecs"]
        assert box["admin"].request("DELETE", f"/api/tokens/{made.id}").status == 200
        assert mjpeg.ended.wait(20) and events.ended.wait(20), "the MJPEG and SSE streams of the token are cut"
        assert closed_within(ws, 20), "the MSE WebSocket of the token is cut"
        assert not bystander.ended.is_set(), "another peer token's stream goes on"
        gone = peer(box).get(f"/api/cameras?token={secret}")
        assert gone.status == 401 and gone.headers["Content-Type"] == "application/json"
        assert Client(base, Recorder(), f"Bearer {secret}").get("/snapshot/door.jpg").status == 401
    finally:
        ws.close()
        mjpeg.reader.close()
        bystander.reader.close()
