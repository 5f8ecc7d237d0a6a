"""A peer's recordings at the hub: listed under ``PEER.CAMERA``, played back and downloaded through the hub.

Peer ``g`` records its pattern camera ``pond`` continuously in 1 s segments;
peer ``d`` records nothing; peer ``f`` lists a camera and answers garbage
for everything else. The hub records nothing itself and has two users:
``root`` (an admin) and ``ada``, a viewer of ``d.pattern`` only.
"""

from __future__ import annotations

import base64
import io
import json
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import av
import pytest

from tests.auth_helpers import generate_password_hash
from tests.config.test_cli import Running, env
from tests.helpers import MjpegReader, decode, free_port, wait_until
from tests.hub.test_hub import AUTH, HUB_USER, PASSWORD, cameras

ROOT = {"Authorization": "Basic " + base64.b64encode(b"root:root-pw").decode()}
ADA = {"Authorization": "Basic " + base64.b64encode(b"ada:ada-pw").decode()}


@dataclass
class Site:
    hub_url: str
    peer_urls: dict[str, str]
    peers: dict[str, Running] = field(default_factory=dict)


def answer(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    """A GET's status, headers and body, errors included."""
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=30) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, dict(error.headers), error.read()


def listed(url: str, query: str = "", headers: dict[str, str] | None = None) -> list[dict]:
    status, _, body = answer(f"{url}/api/recordings?{query}", headers or ROOT)
    assert status == 200, body
    return json.loads(body)["recordings"]


def finished(site: Site, count: int) -> list[dict]:
    """The hub's list of ``g.pond``'s segments once at least ``count`` are whole."""
    whole: list[dict] = []

    def enough() -> bool:
        whole[:] = [segment for segment in listed(site.hub_url, "camera=g.pond") if not segment["recording"]]
        return len(whole) >= count
    assert wait_until(enough, timeout=40), whole
    return whole


class Garbage(BaseHTTPRequestHandler):
    """Peer ``f``: one camera ``cam``, whose recordings are not JSON, whose download is a page and whose
    playback is not even HTTP."""

    def do_GET(self) -> None:
        path = self.path.partition("?")[0]
        if path == "/playback/cam":
            self.wfile.write(b"garbage\r\n\r\n")
            return
        body, kind = {"/api/cameras": (b'{"cameras": [{"name": "cam"}]}', "application/json"),
                      "/api/recordings": (b"{not json", "application/json"),
                      "/api/recordings/cam.mp4": (b"<html>a login page</html>", "text/html")}.get(path, (b"", ""))
        self.send_response(200 if body else 404)
        self.send_header("Content-Type", kind or "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    folder = tmp_path_factory.mktemp("hub-recordings")
    started: list[Running] = []
    ports = {"g": free_port(), "d": free_port()}
    garbage = ThreadingHTTPServer(("127.0.0.1", 0), Garbage)
    threading.Thread(target=garbage.serve_forever, daemon=True).start()
    try:
        found = Site("", {name: f"http://127.0.0.1:{port}" for name, port in ports.items()})
        record = ["--record", "pond=continuous", "--segment-seconds", "1", "--storage", str(folder / "g"),
                  "--min-free", "0"]
        for name, camera in (("g", "pond"), ("d", "pattern")):
            started.append(Running([sys.executable, "-m", "webapp", "--camera", f"{camera}=pattern", "--fps", "10",
                                    *(record if name == "g" else []), "--port", str(ports[name]),
                                    "--user", HUB_USER], env(), cwd=folder))
            found.peers[name] = started[-1]
        users = [f"--user=ada:{generate_password_hash('ada-pw')}:viewer:d.pattern",
                 f"--user=root:{generate_password_hash('root-pw')}:admin"]
        peers = [f"--peer={name}=http://hub:{PASSWORD}@127.0.0.1:{port}"
                 for name, port in {**ports, "f": garbage.server_address[1]}.items()]
        started.append(Running([sys.executable, "-m", "webapp", "--source", "pattern", "--port", "0", *users, *peers],
                               env(), cwd=folder))
        found.hub_url = "http://127.0.0.1:" + started[-1].wait_for_line(r"open http://localhost:(\d+)/").group(1)
        for peer in found.peers.values():  # started with the hub, which finds them down until they answer
            peer.wait_for_line(r"open http://localhost:\d+/")
        assert wait_until(lambda: {"g.pond", "d.pattern", "f.cam"} <= set(cameras(found.hub_url, ROOT)), timeout=30)
        yield found
    finally:
        for server in started:
            server.stop()
        garbage.shutdown()
        garbage.server_close()


@pytest.mark.slow
def test_the_hub_lists_a_peers_recordings_under_its_name(site: Site) -> None:
    whole = finished(site, 3)
    assert {segment["camera"] for segment in whole} == {"g.pond"}
    assert all(segment["playback"] == f"/playback/g.pond?start={segment['start']:.3f}" for segment in whole)
    starts = [segment["start"] for segment in whole]
    assert starts == sorted(starts), "oldest first, as a local camera's"
    own = listed(site.peer_urls["g"], "camera=pond", AUTH)
    assert starts == [segment["start"] for segment in own if not segment["recording"]][:len(starts)]
    # Every camera's: the peers', as the hub records nothing itself; bounds passed on.
    everything = listed(site.hub_url)
    assert {segment["camera"] for segment in everything} == {"g.pond"} and len(everything) >= 3
    assert [segment["start"] for segment in listed(site.hub_url, f"camera=g.pond&start={starts[1]}&limit=1")] \
        == [starts[1]]
    assert PASSWORD not in json.dumps(everything)


@pytest.mark.slow
def test_a_span_downloaded_through_the_hub_plays_what_was_asked(site: Site) -> None:
    first = finished(site, 4)[0]
    start, end = first["start"] + 0.2, first["start"] + 2.2
    url = f"{site.hub_url}/api/recordings/g.pond.mp4?start={start:.3f}&end={end:.3f}"
    status, headers, body = answer(url, ROOT)
    assert status == 200 and headers["Content-Type"] == "video/mp4", body[:200]
    assert headers["Content-Disposition"] == f'attachment; filename="g.pond-{int(start)}-{int(end)}.mp4"'
    with av.open(io.BytesIO(body)) as container:
        frames = list(container.decode(video=0))
    assert 10 <= len(frames) <= 22, len(frames)  # 10 fps; a busy machine's camera may have caught fewer
    assert frames[0].width == 640 and frames[0].height == 480
    assert 1.0 <= float((frames[-1].pts - frames[0].pts) * frames[0].time_base) <= 2.15
    # The peer keeps the file it made: a player's seek (a range) is passed to it and answered from that file.
    status, headers, part = answer(url, {**ROOT, "Range": "bytes=100-199"})
    assert status == 206 and headers["Content-Range"] == f"bytes 100-199/{len(body)}" and part == body[100:200]
    # Played back as MJPEG through the hub, from the segment's start.
    with MjpegReader(site.hub_url + first["playback"], headers=ROOT) as reader:
        assert reader.status == 200 and all(decode(jpeg).shape == (480, 640, 3) for jpeg in reader.read(3))


@pytest.mark.slow
def test_a_peer_cameras_bad_or_empty_span_is_the_hubs_json(site: Site) -> None:
    for query, code in (("start=1700000000&end=1700009000", 400), ("start=1700000010&end=1700000000", 400),
                        ("start=soon&end=1700000000", 400), ("start=1700000000&end=1700000010", 404)):
        status, headers, body = answer(f"{site.hub_url}/api/recordings/g.pond.mp4?{query}", ROOT)
        assert status == code and headers["Content-Type"] == "application/json", (query, body)
        assert "error" in json.loads(body)


@pytest.mark.slow
def test_a_viewer_given_another_camera_gets_nothing_of_a_peers_recordings(site: Site) -> None:
    finished(site, 1)
    for path in ("/api/recordings?camera=g.pond", "/api/recordings/g.pond.mp4?start=1700000000&end=1700000010",
                 "/playback/g.pond"):
        status, headers, body = answer(site.hub_url + path, ADA)
        # As for a camera that is not there.
        assert status == 404 and headers["Content-Type"] == "application/json", (path, body)
        assert json.loads(body)["error"] == "no camera named 'g.pond'"
    assert listed(site.hub_url, headers=ADA) == []  # d.pattern records nothing; g.pond's are not shown


@pytest.mark.slow
def test_the_history_page_shows_a_peer_cameras_timeline(site: Site, browser) -> None:
    finished(site, 2)
    context = browser.new_context(extra_http_headers=ROOT)
    try:
        page = context.new_page()
        page.goto(site.hub_url + "/history?camera=g.pond")
        page.wait_for_selector('[data-timeline="g.pond"] .bar span', timeout=30000)
        assert page.eval_on_selector('[data-field="camera"]', "select => select.value") == "g.pond"
        assert page.query_selector('[data-timeline="d.pattern"]') is None, "d.pattern records nothing"
    finally:
        context.close()


@pytest.mark.slow
def test_a_peer_that_is_down_is_a_502_and_leaves_the_others_listed(site: Site) -> None:
    finished(site, 1)
    site.peers["d"].process.kill()
    site.peers["d"].process.wait(10)
    assert wait_until(lambda: cameras(site.hub_url, ROOT)["d.pattern"]["peer"]["up"] is False, timeout=20)
    for path in ("/api/recordings?camera=d.pattern", "/api/recordings/d.pattern.mp4?start=1700000000&end=1700000010",
                 "/playback/d.pattern"):
        status, headers, body = answer(site.hub_url + path, ROOT)
        assert headers["Content-Type"] == "application/json", (path, body)
        error = json.loads(body)["error"]
        assert status == 502 and error.startswith("could not reach peer d"), (path, body)
        assert PASSWORD not in error and "hub:" not in error
    assert {segment["camera"] for segment in listed(site.hub_url)} == {"g.pond"}


@pytest.mark.slow
def test_a_peer_answering_garbage_is_a_502_never_a_500(site: Site) -> None:
    for path, error in (("/api/recordings?camera=f.cam", "peer f's recordings are not a camstream's JSON"),
                        ("/api/recordings/f.cam.mp4?start=1700000000&end=1700000010",
                         "peer f answered 'text/html', not video/mp4"),
                        ("/playback/f.cam", "peer f answered garbage (BadStatusLine)")):
        status, headers, body = answer(site.hub_url + path, ROOT)
        assert status == 502 and headers["Content-Type"] == "application/json", (path, body)
        assert json.loads(body)["error"].startswith(error), (path, body)
    assert "f.cam" not in {segment["camera"] for segment in listed(site.hub_url)}
