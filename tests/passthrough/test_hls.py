"""HLS to the letter and Low-Latency HLS, from GStreamer's RTSP server through camstream to real players.

The RFC 8216 checker (tests/hls_checker.py) polls the playlist through a
camera restart; blocking reloads are answered when their part comes without
holding a worker thread; hls.js from npm plays the low-latency playlist in
Chromium (and on after a restart), VLC and ffmpeg copy the HLS out; tokens
ride on every URI; a camera that is down answers at once; other origins
play where ``--cors-origin`` allows them.
"""

from __future__ import annotations

import functools
import http.server
import itertools
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from camera.media.hls import HlsWindow
from camera.media.muxer import Fragment
from camera.viewers.hls_wait import WaitLimit
from tests.auth_helpers import USERS
from tests.conftest import Servers
from tests.helpers import free_port, get_json, wait_until
from tests.hls_checker import PlaylistWatch, parse
from tests.passthrough.test_rtsp import RtspServer
from webapp import create_app
from webapp.auth import auth_of

HLS_JS = Path(__file__).resolve().parents[1] / "js" / "node_modules" / "hls.js" / "dist" / "hls.min.js"
CAMERA_FPS = 15


@pytest.fixture(scope="module")
def rtsp() -> Iterator[RtspServer]:
    server = RtspServer()
    yield server
    server.stop()


class Restartable:
    """An RTSP server that can be killed and started again on the same port, as a camera that reboots."""

    def __init__(self) -> None:
        self.port = free_port()
        self.server: RtspServer | None = RtspServer(self.port)

    def url(self, path: str) -> str:
        return f"rtsp://127.0.0.1:{self.port}/{path}"

    def kill(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None

    def start(self) -> None:
        self.server = RtspServer(self.port)


@pytest.fixture
def restartable() -> Iterator[Restartable]:
    server = Restartable()
    yield server
    server.kill()


def get(url: str, timeout: float = 30, **headers: str) -> tuple[int, dict[str, str], bytes]:
    """Status, headers and body, whatever the status."""
    request = urllib.request.Request(url, headers={key.replace("_", "-"): value for key, value in headers.items()})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def state_of(site: str, name: str) -> str:
    return get_json(f"{site}/api/cameras/{name}")[1]["state"]


def feed_frames(window: HlsWindow, frames: int, keyframe_every: int, start: float = 0.0, fps: int = 15,
                split_keyframes: bool = False) -> float:
    """``frames`` video frames (and AAC between them) into ``window``; returns the stream time after them."""
    at = start
    for index in range(frames):
        key = index % keyframe_every == 0
        if key and split_keyframes:  # what FFmpeg's RTSP reader may hand: a keyframe in two pieces
            window.add(Fragment(b"K" * 10, True, at, 0.0))
        window.add(Fragment(bytes([index % 256]) * 100, key, at, 1 / fps))
        window.add(Fragment(b"a" * 20, False, None, 1024 / 48000))
        at += 1 / fps
    return at


def test_the_hls_window_keeps_the_rules_through_a_new_init_without_a_network():
    window = HlsWindow(size=4)
    window.begin(b"init one")
    assert window.playlist() is None, "no playlist before a target and a segment"
    at = feed_frames(window, 15 * 8, keyframe_every=15, split_keyframes=True)
    first = parse(window.playlist() or "")
    assert first.target == 1 and first.part_target is not None and len(first.segments) == 4
    assert all(len(segment.parts) == 4 for segment in first.segments[-2:]), "a split keyframe stays in one part"
    assert [part.independent for part in first.segments[-1].parts] == [True, False, False, False]
    gone = first.segments[0].number - 1
    assert window.segment(window.id, gone), "a segment that just left is still served"
    hint = first.preload_hint
    window.end()
    stopped = window.playlist() or ""
    assert stopped.rstrip().endswith("#EXT-X-DISCONTINUITY") and "PRELOAD-HINT" not in stopped
    window.begin(b"init two")
    # A longer GOP than the target allows: segments are cut between keyframes, never above the target.
    feed_frames(window, 15 * 12, keyframe_every=45, start=at + 5)
    text = window.playlist() or ""
    after = parse(text)
    assert after.target == 1 and after.sequence > first.sequence
    assert after.discontinuity_sequence == 1, "the restart's discontinuity has left the playlist"
    assert "#EXT-X-INDEPENDENT-SEGMENTS" not in text, "some segments start between keyframes now"
    assert window.init_of(after.segments[0].init.split("-")[1].split(".")[0]) == b"init two"
    assert hint is not None and hint not in text and window.part_state(int(hint.split("-")[2].split(".")[0]))[0] \
        == "gone", "the part hinted before the restart is never made"
    window.add(Fragment(b"x", True, 1000.0, 1 / 15))  # whatever the camera's clock says, numbers go on
    assert parse(window.playlist() or "").sequence >= after.sequence
    # A camera idle for longer than the playlist lasts starts a playlist of its own (numbers going on); what
    # was listed is still served.
    window.end()
    listed = parse(window.playlist() or "")
    window._ended_at -= 3600
    window.begin(b"init three")
    assert window.playlist() is None and window.segment(window.id, listed.segments[-1].number)
    feed_frames(window, 15 * 4, keyframe_every=15)
    fresh = parse(window.playlist() or "")
    assert fresh.sequence == listed.segments[-1].number + 1
    assert fresh.discontinuity_sequence == listed.discontinuity_sequence + 1
    assert fresh.segments[0].init != listed.segments[-1].init


@pytest.mark.slow
def test_the_playlist_keeps_rfc_8216_across_a_camera_restart(restartable, serve_app):
    site = serve_app({"CAMERAS": {"door": restartable.url("av")}, "IDLE_TIMEOUT": 60})
    base = f"{site}/hls/door/"
    watch = PlaylistWatch(base)
    status, headers, body = get(base + "index.m3u8")
    assert status == 200 and headers["Content-Type"] == "application/vnd.apple.mpegurl"
    first = watch.see(body.decode())
    assert first.duration >= 3 * first.target, "the first playlist waits for three target durations"

    def poll() -> None:
        status, _, body = get(base + "index.m3u8")
        assert status == 200, body
        watch.see(body.decode())

    def polled_until(condition, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            poll()
            if condition():
                return True
            time.sleep(0.3)
        return False

    # Run long enough for segments to leave the playlist (and be fetched after they left).
    assert polled_until(lambda: watch.checked_gone >= 3, 30), watch.left
    before = watch.last
    assert before is not None
    restartable.kill()
    assert wait_until(lambda: state_of(site, "door") == "reconnecting", 30)
    status, headers, body = get(base + "index.m3u8")
    assert status == 503 and int(headers["Retry-After"]) > 0 and "no signal" in json.loads(body)["error"]
    restartable.start()
    assert wait_until(lambda: state_of(site, "door") == "streaming", 30)
    last_before = before.segments[-1].number
    # The new init's segments follow a discontinuity, numbered on; then the old ones (and the tag) leave.
    assert polled_until(lambda: any(number > last_before for number in watch.discontinuities_seen), 30)
    assert polled_until(lambda: watch.last is not None and watch.last.discontinuity_sequence >= 1, 30), \
        "EXT-X-DISCONTINUITY-SEQUENCE counts the discontinuity once it left the playlist"
    after = watch.last
    assert after is not None
    restart = min(number for number in watch.discontinuities_seen if number > last_before)
    assert watch.inits[restart] != watch.inits[restart - 1], "a new EXT-X-MAP after the restart"
    assert all(number > last_before for number in watch.discontinuities_seen), "no discontinuity but the restart's"
    assert after.target == first.target
    numbers = sorted(watch.names)
    assert numbers == list(range(numbers[0], numbers[-1] + 1)), "one sequence, never back, nothing skipped"
    for segment in after.segments:
        assert segment.date is not None
    dates = [segment.date for segment in after.segments]
    assert dates == sorted(dates), "program dates go forward"
    print(f"RFC 8216 watch: {watch.polls} polls, target {watch.target} s, {len(watch.names)} segments, "
          f"{watch.checked_gone} fetches of segments that had left, restart at segment {restart}", file=sys.stderr)


def _building(site: str, name: str) -> tuple[int, int]:
    """The segment being made and the number of its parts listed, from a playlist."""
    playlist = parse(get(f"{site}/hls/{name}/index.m3u8")[2].decode())
    return playlist.sequence + len(playlist.segments), len(playlist.trailing_parts)


def test_a_blocking_reload_is_answered_once_its_part_is_in_the_playlist(rtsp, serve):
    site = serve(create_app({"CAMERAS": {"door": rtsp.url("live")}}))
    msn, _parts = _building(site, "door")
    wanted_msn, wanted_part = msn + 1, 1
    status, _, body = get(f"{site}/hls/door/index.m3u8?_HLS_msn={wanted_msn}&_HLS_part={wanted_part}")
    assert status == 200
    playlist = parse(body.decode())
    if playlist.sequence + len(playlist.segments) == wanted_msn:
        assert len(playlist.trailing_parts) > wanted_part, "the part asked for is in it"
    else:
        assert playlist.sequence + len(playlist.segments) > wanted_msn
    # The hinted part is answered when it comes, and is what the next playlist lists.
    hint = playlist.preload_hint
    assert hint is not None
    status, headers, data = get(f"{site}/hls/door/{hint}")
    assert status == 200 and data[4:8] == b"moof" and headers["Content-Type"] == "video/mp4"
    status, _, body = get(f"{site}/hls/door/index.m3u8?_HLS_msn={wanted_msn + 1}&_HLS_part=0")
    listed = [part.uri for segment in parse(body.decode()).segments for part in segment.parts] + \
        [part.uri for part in parse(body.decode()).trailing_parts]
    assert hint in listed
    # Asking too far ahead, or a part without its segment, is a bad request.
    status, _, body = get(f"{site}/hls/door/index.m3u8?_HLS_msn={wanted_msn + 50}")
    assert status == 400 and "error" in json.loads(body)
    assert get(f"{site}/hls/door/index.m3u8?_HLS_part=1")[0] == 400
    assert get(f"{site}/hls/door/index.m3u8?_HLS_msn=x")[0] == 400


def test_twenty_blocking_requests_wait_without_a_worker_thread(rtsp):
    app = create_app({"CAMERAS": {"door": rtsp.url("live")}})
    with Servers() as servers:
        site = servers.start(app, threads=4)
        msn, _ = _building(site, "door")
        # A segment has just begun when this answers: the next but one is about two segments away.
        get(f"{site}/hls/door/index.m3u8?_HLS_msn={msn + 1}&_HLS_part=0")
        msn, _ = _building(site, "door")
        port = int(site.rsplit(":", 1)[1])
        app.extensions["camstream.hls_waits"] = waits = WaitLimit(20)
        request = (f"GET /hls/door/index.m3u8?_HLS_msn={msn + 1}&_HLS_part=3 HTTP/1.1\r\n"
                   f"Host: 127.0.0.1:{port}\r\n\r\n").encode()
        parked = []
        try:
            for _ in range(20):
                sock = socket.create_connection(("127.0.0.1", port), timeout=30)
                sock.sendall(request)
                parked.append(sock)
            assert wait_until(lambda: waits.waiting + answered(parked) >= 20, 20)
            seen_waiting = waits.waiting
            if seen_waiting == 20:  # one more is refused at once (unless the part came already)
                status, _, body = get(f"{site}/hls/door/index.m3u8?_HLS_msn={msn + 1}&_HLS_part=3")
                assert status == 200 or (status == 503 and "waiting" in json.loads(body)["error"]), status
            status, cameras = get_json(f"{site}/api/cameras")
            assert status == 200 and cameras, "four threads, twenty waiting requests, and the API answers"
            answers = [read_answer(sock) for sock in parked]
        finally:
            for sock in parked:
                sock.close()
    assert all(answer.startswith(b"HTTP/1.1 200 OK") for answer in answers), answers[0][:200]
    for answer in answers:
        playlist = parse(answer.split(b"\r\n\r\n", 1)[1].decode())
        made = playlist.sequence + len(playlist.segments)
        assert made > msn + 1 or (made == msn + 1 and len(playlist.trailing_parts) > 3)
    print(f"{seen_waiting} of 20 blocking reloads were waiting at once on 4 worker threads", file=sys.stderr)
    assert seen_waiting >= 5, "more requests waited at once than there are worker threads"


def answered(socks: list[socket.socket]) -> int:
    """How many of ``socks`` have an answer to read (without reading it)."""
    count = 0
    for sock in socks:
        sock.setblocking(False)
        try:
            count += bool(sock.recv(1, socket.MSG_PEEK))
        except BlockingIOError:
            pass
        finally:
            sock.setblocking(True)
    return count


def read_answer(sock: socket.socket) -> bytes:
    """A whole answer of a connection the server closes after it."""
    sock.settimeout(30)
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


@pytest.mark.slow
def test_a_camera_that_is_down_answers_its_playlist_at_once_with_retry_after(serve):
    port = free_port()
    app = create_app({"CAMERAS": {"gate": f"rtsp://127.0.0.1:{port}/live"}, "IDLE_TIMEOUT": 30})
    site = serve(app)
    # The first request starts the camera, and waits only while it is starting: it finds no server.
    status, headers, body = get(f"{site}/hls/gate/index.m3u8")
    assert status == 503 and int(headers["Retry-After"]) > 0 and "error" in json.loads(body)
    assert wait_until(lambda: state_of(site, "gate") == "reconnecting", 20)
    for path in ("index.m3u8", "master.m3u8"):
        status, headers, body = get(f"{site}/hls/gate/{path}", timeout=5)
        assert status == 503 and int(headers["Retry-After"]) > 0
        assert "no signal" in json.loads(body)["error"]


@pytest.mark.slow
def test_a_token_rides_on_every_uri_of_both_playlists(rtsp, tmp_path):
    app = create_app({"CAMERAS": {"door": rtsp.url("av")}, "USERS": USERS, "STORAGE": str(tmp_path / "data")})
    with Servers() as servers:
        site = servers.start(app)
        _, secret = auth_of(app).tokens.create("door")
        assert get(f"{site}/hls/door/index.m3u8")[0] == 401
        status, _, body = get(f"{site}/hls/door/master.m3u8?token={secret}")
        assert status == 200
        master = body.decode()
        assert re.search(r'CODECS="avc1\.[0-9a-fA-F]{6}, ?mp4a\.40\.2"', master), master
        assert "RESOLUTION=320x240" in master and "BANDWIDTH=" in master
        uris = [line for line in master.splitlines() if line and not line.startswith("#")]
        assert uris == [f"index.m3u8?token={secret}"]
        status, headers, body = get(f"{site}/hls/door/{uris[0]}")
        assert status == 200 and headers["Cache-Control"].startswith("private")
        text = body.decode()
        found = re.findall(r'URI="([^"]+)"', text) + [line for line in text.splitlines()
                                                      if line and not line.startswith("#")]
        assert len(found) > 10 and any(uri.startswith("part-") for uri in found)
        assert all(uri.endswith(f"?token={secret}") for uri in found), [uri for uri in found if secret not in uri]
        first_part = next(uri for uri in found if uri.startswith("part-"))
        for uri in {uri for uri in found if not uri.startswith("part-")} | {first_part}:
            status, _, data = get(f"{site}/hls/door/{uri}")
            assert status == 200 and data, uri
            assert get(f"{site}/hls/door/{uri.split('?')[0]}")[0] == 401


def _user_may_write(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o777)
    for parent in folder.parents:
        if parent == Path("/"):
            break
        os.chmod(parent, os.stat(parent).st_mode | 0o011)


def _ffprobe_packets(path: Path) -> list[dict]:
    found = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
                            "packet=dts_time,duration_time", "-of", "json", str(path)],
                           capture_output=True, text=True, check=True, timeout=60)
    return json.loads(found.stdout)["packets"]


def test_vlc_and_ffmpeg_copy_the_hls_out_with_forward_times(rtsp, serve_app, tmp_path):
    site = serve_app({"CAMERAS": {"yard": rtsp.url("av")}})
    url = f"{site}/hls/yard/index.m3u8"
    assert get(url)[0] == 200  # the camera runs and the playlist holds three targets
    copied = tmp_path / "ffmpeg.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", url, "-c", "copy", "-t", "4", str(copied)],
                   check=True, timeout=90, capture_output=True)
    packets = _ffprobe_packets(copied)
    dts = [float(packet["dts_time"]) for packet in packets]
    assert len(dts) >= 3 * CAMERA_FPS, len(dts)
    assert all(b > a for a, b in itertools.pairwise(dts)), "ffmpeg's copy has forward decode times"
    if not shutil.which("cvlc") or (os.geteuid() == 0 and not shutil.which("runuser")):
        if os.environ.get("CI"):
            raise RuntimeError("VLC (cvlc) or runuser is missing; .ci/run should have installed vlc")
        pytest.skip("no VLC here (or root without runuser: VLC refuses to run as root)")
    folder = tmp_path / "vlc"
    _user_may_write(folder)
    remuxed = folder / "vlc.ts"
    command = ["cvlc", "-I", "dummy", "--no-audio", "--run-time", "6", url,
               f"--sout=#std{{access=file,mux=ts,dst={remuxed}}}", "vlc://quit"]
    if os.geteuid() == 0:
        command = ["runuser", "-u", "nobody", "--", *command]
    subprocess.run(command, timeout=60, capture_output=True, check=False, env={**os.environ, "HOME": str(folder)})
    assert remuxed.exists() and remuxed.stat().st_size > 10_000, "VLC wrote the stream"
    packets = _ffprobe_packets(remuxed)
    assert len(packets) >= CAMERA_FPS, len(packets)  # VLC ran 6 s; a busy machine starts it late
    print(f"ffmpeg copied {len(dts)} video packets; VLC remuxed {remuxed.stat().st_size} bytes, "
          f"{len(packets)} video packets", file=sys.stderr)


PAGE = """<!doctype html><meta charset="utf-8"><title>hls.js</title>
<video muted playsinline style="width:320px"></video>
<script src="hls.min.js"></script>
<script>
window.errors = [];
window.fetched = async url => { try { return (await fetch(url)).status; } catch (e) { return String(e); } };
window.play = url => {
  const retry = {maxNumRetry: 1000, retryDelayMs: 500, maxRetryDelayMs: 1000};
  const policy = {default: {maxTimeToFirstByteMs: 12000, maxLoadTimeMs: 20000, timeoutRetry: retry,
                            errorRetry: retry}};
  const hls = window.hls = new Hls({lowLatencyMode: true, manifestLoadPolicy: policy, playlistLoadPolicy: policy,
                                    fragLoadPolicy: policy});
  const video = document.querySelector('video');
  hls.on(Hls.Events.ERROR, (event, data) => {
    window.errors.push(data.details + (data.fatal ? ' (fatal)' : '') + (data.error ? ': ' + data.error.message : '') + (data.reason ? ' ' + data.reason : '') + (data.response ? ' ' + data.response.code : ''));
    if (data.fatal) {
      if (data.type === Hls.ErrorTypes.MEDIA_ERROR) hls.recoverMediaError(); else hls.startLoad();
    }
  });
  hls.loadSource(url);
  hls.attachMedia(video);
  video.play().catch(() => {});
};
window.watched = () => {
  const video = document.querySelector('video');
  return {time: video.currentTime, frames: video.getVideoPlaybackQuality().totalVideoFrames,
          latency: window.hls.latency, lowLatency: window.hls.lowLatencyMode, dropped:
          video.getVideoPlaybackQuality().droppedVideoFrames, buffered: Array.from({length: video.buffered.length},
          (_, i) => [video.buffered.start(i), video.buffered.end(i)]),
          parts: window.hls.levels.length ? !!(window.hls.levels[0].details || {}).partList : false};
};
</script>
"""


@pytest.fixture
def player_origins(tmp_path) -> Iterator[list[str]]:
    """Two tiny web servers of the page with hls.js from npm: one origin camstream allows, one it does not."""
    if not HLS_JS.exists():
        if os.environ.get("CI"):
            raise RuntimeError("tests/js/node_modules is missing; .ci/run should have run npm ci there")
        pytest.skip("hls.js is not installed: run `npm ci --prefix tests/js`")
    folder = tmp_path / "player"
    folder.mkdir()
    (folder / "index.html").write_text(PAGE)
    shutil.copy(HLS_JS, folder / "hls.min.js")
    handler = functools.partial(Quiet, directory=str(folder))
    servers = [http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler) for _ in range(2)]
    for server in servers:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    yield [f"http://127.0.0.1:{server.server_address[1]}" for server in servers]
    for server in servers:
        server.shutdown()
        server.server_close()


def decoded_rate(watched, page, seconds: float = 3.0) -> tuple[float, dict]:
    """Frames the player decoded per second of video it played, over ``seconds`` of it; and its state then.

    Counted against the video's own clock, not the wall clock: a loaded machine that plays slower still
    has to decode every frame of what it played."""
    start = watched()
    assert wait_until(lambda: watched()["time"] >= start["time"] + seconds, 40), (watched(), page.evaluate("errors"))
    end = watched()
    return (end["frames"] - start["frames"]) / (end["time"] - start["time"]), end


def rate_reached(watched, page, wanted: float, windows: int = 3) -> tuple[float, dict]:
    """The first of up to ``windows`` decoded rates that reaches ``wanted``, else the best: a machine that the
    rest of the suite loads may drop frames in one window, a player that cannot keep up drops them in all."""
    best: tuple[float, dict] = (0.0, {})
    for _ in range(windows):
        found = decoded_rate(watched, page)
        best = max(best, found, key=lambda item: item[0])
        if found[0] >= wanted:
            break
    return best


class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


def test_hls_js_plays_the_low_latency_playlist_from_an_allowed_origin_and_on_after_a_restart(
        restartable, browser, player_origins):
    allowed, refused = player_origins
    app = create_app({"CAMERAS": {"door": restartable.url("av")}, "CORS_ORIGINS": [allowed], "IDLE_TIMEOUT": 60})
    with Servers() as servers:
        site = servers.start(app)
        url = f"{site}/hls/door/master.m3u8"
        # The headers themselves: the allowed origin is named, another is not (its browser refuses to read).
        status, headers, _ = get(url, Origin=allowed)
        assert status == 200 and headers["Access-Control-Allow-Origin"] == allowed
        assert "Access-Control-Allow-Origin" not in get(url, Origin=refused)[1]
        context = browser.new_context()
        page = context.new_page()
        try:
            page.goto(f"{refused}/index.html")
            assert "Failed to fetch" in page.evaluate("url => fetched(url)", url)
            page.goto(f"{allowed}/index.html")
            assert page.evaluate("url => fetched(url)", url) == 200
            page.evaluate("url => play(url)", url)

            def watched() -> dict:
                return page.evaluate("watched()")
            assert wait_until(lambda: watched()["time"] > 1, 40), (watched(), page.evaluate("errors"))
            rate, end = rate_reached(watched, page, 0.8 * CAMERA_FPS)
            assert end["lowLatency"] and end["parts"], "hls.js took the playlist for low-latency, with parts"
            assert rate >= 0.8 * CAMERA_FPS, f"{rate:.1f} frames decoded a second of video"
            assert end["latency"] < 6, end
            print(f"hls.js low-latency: {end['latency']:.2f} s behind live, {rate:.1f} frames decoded a second of "
                  f"video ({CAMERA_FPS} sent)", file=sys.stderr)
            restartable.kill()
            assert wait_until(lambda: state_of(site, "door") == "reconnecting", 30)
            restartable.start()
            assert wait_until(lambda: state_of(site, "door") == "streaming", 30)
            back = watched()
            # Once it plays again (past the hole the outage left, and the few tenths of a second Chromium's
            # video takes to follow its audio over it), it plays at the camera's rate.
            assert wait_until(lambda: watched()["time"] >= back["time"] + 2, 60), (watched(), page.evaluate("errors"))
            rate, later = rate_reached(watched, page, 0.8 * CAMERA_FPS)
            assert rate >= 0.8 * CAMERA_FPS, f"{rate:.1f} frames decoded a second of video after the restart"
            assert later["latency"] < 6, later
            print(f"hls.js after the restart: {later['latency']:.2f} s behind live, {rate:.1f} frames a second; "
                  f"its errors on the way: {sorted({error[:60] for error in page.evaluate('errors')})}",
                  file=sys.stderr)
        finally:
            context.close()
