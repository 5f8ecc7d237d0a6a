"""WebRTC through WHEP: Chromium plays a camera of GStreamer's RTSP server (H.264 + AAC) over WebRTC, the
camera's H.264 passed through and its AAC as Opus, both made once per camera.

Chromium runs with loopback allowed in peer connections and without mDNS
names for its host candidates, so it and camstream's aiortc meet on
127.0.0.1. The page is camstream's own static/camstream-webrtc.js, loaded
into a page of the server's origin.
"""

from __future__ import annotations

import json
import re
import shutil
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest

from tests.auth_helpers import PASSWORDS, USERS
from tests.conftest import Servers
from tests.helpers import free_port, get_json, wait_until
from tests.passthrough.test_rtsp import RtspServer
from webapp import create_app
from webapp.api.webrtc import EXTENSION
from webapp.auth import auth_of
from webapp.runtime.registry import runtime_of

pytestmark = [pytest.mark.slow, pytest.mark.browser]

CHROMIUM_ARGS = ["--allow-loopback-in-peer-connection", "--disable-features=WebRtcHideLocalIpsWithMdns",
                 "--autoplay-policy=no-user-gesture-required"]

PLAY = """([name, token]) => {
  const video = document.createElement('video');
  video.muted = true; video.autoplay = true; video.playsInline = true; video.id = 'v-' + name;
  document.body.appendChild(video);
  window.errors = window.errors || [];
  window.stops = window.stops || [];
  const stop = camstreamWebRtc(video, name, {token: token, onerror: (e) => window.errors.push([e.status || 0, e.message])});
  window.stops.push(stop);
  return window.stops.length - 1;
}"""

STATS = """async (index) => {
  const pc = window.stops[index].peerConnection();
  if (!pc) return null;
  const out = {state: pc.connectionState, video: 0, audio: 0, codecs: [], width: 0};
  const report = await pc.getStats();
  const codecs = {};
  report.forEach((s) => { if (s.type === 'codec') codecs[s.id] = s.mimeType; });
  report.forEach((s) => {
    if (s.type !== 'inbound-rtp') return;
    if (s.kind === 'video') { out.video = s.framesDecoded || 0; out.width = s.frameWidth || 0; }
    if (s.kind === 'audio') out.audio = s.packetsReceived || 0;
    if (s.codecId) out.codecs.push(codecs[s.codecId]);
  });
  return out;
}"""


# Frames a browser's jitter buffer may hold before it decodes them.
JITTER_FRAMES = 5


@pytest.fixture(scope="module")
def chromium():
    playwright_api = pytest.importorskip("playwright.sync_api")
    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    if executable is None:
        pytest.skip("no chromium on this machine")
    with playwright_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def rtsp() -> Iterator[RtspServer]:
    server = RtspServer()
    yield server
    server.stop()


@pytest.fixture
def servers() -> Iterator[Servers]:
    with Servers() as running:
        yield running


def open_page(chromium, site: str, path: str = "/api/webrtc"):
    """A page of the server's origin (``path``: one the page may open) with the WHEP player loaded."""
    page = chromium.new_page()
    page.goto(site + path)
    page.add_script_tag(url=site + "/static/camstream-webrtc.js")
    return page


def play(page, name: str, token: str | None = None) -> int:
    return page.evaluate(PLAY, [name, token])


def stats(page, index: int = 0) -> dict | None:
    return page.evaluate(STATS, index)


def relay_of(app, name: str):
    return app.extensions[EXTENSION].relay_of(runtime_of(app).cameras[name].media)


def wait_decoding(page, index: int = 0, frames: int = 10, timeout: float = 30) -> dict:
    """The stats once the browser has decoded ``frames`` frames."""
    found: dict = {}

    def enough() -> bool:
        found.update(stats(page, index) or {})
        # The state event may come a moment after the first frames on a busy machine: both are waited for.
        return found.get("video", 0) >= frames and found.get("state") == "connected"
    assert wait_until(enough, timeout, interval=0.2), (found, page.evaluate("window.errors"))
    return found


def test_chromium_plays_the_cameras_h264_and_its_aac_as_opus_at_the_cameras_rate(chromium, rtsp, servers):
    app = create_app({"CAMERAS": {"yard": rtsp.url("av")}, "IDLE_TIMEOUT": 5})
    site = servers.start(app)
    page = open_page(chromium, site)
    try:
        play(page, "yard")
        first = wait_decoding(page, frames=5)
        assert first["state"] == "connected" and first["width"] == 320
        assert "video/H264" in first["codecs"] and "audio/opus" in first["codecs"]
        relay = relay_of(app, "yard")
        # The answer names the camera's own profile (x264's ultrafast: Constrained Baseline), mode 1.
        answer = page.evaluate("window.stops[0].peerConnection().remoteDescription.sdp")
        assert relay.info.profile[:2] == bytes([0x42, 0xC0])
        assert re.search(r"a=fmtp:\d+ .*packetization-mode=1;profile-level-id=42e01f", answer), answer
        # Over the next 45 frames the camera sends, the browser decodes at least 80 % as many.
        made, decoded = relay.frames_packetized, first["video"]
        assert wait_until(lambda: relay.frames_packetized >= made + 45, 30)
        # Counted at the same moment, less the few frames a jitter buffer holds: a browser that keeps up is there
        # at some moment however busy the machine; a slideshow's share stays low.
        now: dict = {}

        def keeping_up() -> bool:
            now.update(stats(page) or {})
            return now.get("video", 0) - decoded >= 0.8 * (relay.frames_packetized - made) - JITTER_FRAMES
        assert wait_until(keeping_up, 20, interval=0.2), (now, relay.frames_packetized - made)
        # Opus arrives and keeps arriving.
        audio = now["audio"]
        assert wait_until(lambda: stats(page)["audio"] >= audio + 20, 20)
        assert relay.opus_packets > 0
        status = get_json(f"{site}/api/cameras/yard")[1]
        assert status["viewers"] == 1
        webrtc = get_json(f"{site}/api/webrtc/yard")[1]
        assert (webrtc["viewers"], webrtc["connected"], webrtc["video"], webrtc["audio"]) == (
            1, 1, "passthrough", "opus-from-aac")
        assert webrtc["frames_packetized"] > 0 and webrtc["opus_packets"] > 0
        if "webrtc" in status:  # the status's block, once the runtime takes status parts
            assert status["webrtc"]["video"] == "passthrough" and status["webrtc"]["viewers"] == 1
        # The page sent its offer at once and its candidates after it (trickle ICE, PATCH).
        assert [session.trickled > 0 for session in app.extensions[EXTENSION].sessions("yard")] == [True]
        senders = [sender for session in app.extensions[EXTENSION].sessions("yard")
                   for sender in session.pc.getSenders()]
        assert senders and all(type(sender._RTCRtpSender__encoder).__name__ == "PassThroughPacker"
                               for sender in senders), "the payloads go out as the relay made them"
    finally:
        page.close()


def test_a_viewer_with_a_token_plays_one_without_credentials_is_refused_and_revoking_the_token_ends_it(
        chromium, rtsp, servers, tmp_path):
    app = create_app({"CAMERAS": {"yard": rtsp.url("av")}, "USERS": USERS[:2], "STORAGE": str(tmp_path),
                      "IDLE_TIMEOUT": 5})
    site = servers.start(app)
    auth = auth_of(app)
    token, secret = auth.tokens.create("yard")
    refused = open_page(chromium, site, "/login")
    page = open_page(chromium, site, f"/api/webrtc?token={secret}")
    try:
        play(refused, "yard")
        assert wait_until(lambda: refused.evaluate("window.errors.length") > 0, 20)
        assert refused.evaluate("window.errors")[0][0] == 401
        answer = post_offer(site, "yard", b"v=0\r\n")
        assert answer[0] == 401 and answer[2]["error"]

        play(page, "yard", secret)
        wait_decoding(page, frames=5)
        engine = app.extensions[EXTENSION]
        [session] = engine.sessions("yard")
        assert runtime_of(app).slots.used == 1
        auth.tokens.revoke(token.id)
        auth.streams.check_now()
        assert wait_until(lambda: not engine.sessions("yard") and runtime_of(app).slots.used == 0, 20)
        assert session.pc.connectionState == "closed"
    finally:
        refused.close()
        page.close()


def test_delete_ends_the_session_and_the_viewer_count_drops(chromium, rtsp, servers):
    app = create_app({"CAMERAS": {"yard": rtsp.url("av")}, "IDLE_TIMEOUT": 5})
    site = servers.start(app)
    page = open_page(chromium, site)
    try:
        play(page, "yard")
        wait_decoding(page, frames=5)
        assert get_json(f"{site}/api/cameras/yard")[1]["viewers"] == 1
        assert runtime_of(app).slots.used == 1
        page.evaluate("window.stops[0]()")  # the player's stop: closes its side, DELETEs the session
        engine = app.extensions[EXTENSION]
        assert wait_until(lambda: not engine.sessions() and runtime_of(app).slots.used == 0, 20)
        assert get_json(f"{site}/api/cameras/yard")[1]["viewers"] == 0
    finally:
        page.close()


def test_ten_peer_connections_at_once_each_decode_and_the_camera_is_packetized_once(chromium, rtsp, servers):
    app = create_app({"CAMERAS": {"yard": rtsp.url("av")}, "IDLE_TIMEOUT": 5})
    site = servers.start(app)
    page = open_page(chromium, site)
    try:
        for _ in range(10):
            play(page, "yard")
        for index in range(10):
            wait_decoding(page, index, frames=10, timeout=60)
        assert get_json(f"{site}/api/cameras/yard")[1]["viewers"] == 10
        relay = relay_of(app, "yard")
        feed = runtime_of(app).cameras["yard"].media
        # Each frame was cut into RTP payloads once for all ten (never more often than the feed had fragments).
        assert 0 < relay.frames_packetized <= feed.fragments
        sessions = app.extensions[EXTENSION].sessions("yard")
        sent = [session.video.sent for session in sessions]
        assert len(sent) == 10 and sum(sent) > relay.frames_packetized
        # The AAC is transcoded once: ten viewers were sent more Opus packets than were made.
        assert wait_until(lambda: sum(session.audio.sent for session in sessions) > 2 * relay.opus_packets > 0, 20)
    finally:
        page.close()


def test_the_picture_comes_back_after_the_camera_restarts(chromium, servers):
    port = free_port()
    camera = RtspServer(port)
    app = create_app({"CAMERAS": {"yard": f"rtsp://127.0.0.1:{port}/av"}, "IDLE_TIMEOUT": 5})
    site = servers.start(app)
    page = open_page(chromium, site)
    try:
        play(page, "yard")
        before = wait_decoding(page, frames=10)["video"]
        camera.stop()
        assert wait_until(lambda: get_json(f"{site}/api/cameras/yard")[1]["state"] == "reconnecting", 30)
        stalled = stats(page)["video"]
        camera = RtspServer(port)
        after = wait_decoding(page, frames=stalled + 20, timeout=60)
        assert after["video"] >= before + 20 and after["state"] == "connected"
    finally:
        page.close()
        camera.stop()


def post_offer(site: str, name: str, body: bytes, **headers: str) -> tuple[int, dict, dict]:
    request = urllib.request.Request(f"{site}/whep/{name}", data=body, method="POST",
                                     headers={"Content-Type": "application/sdp", **headers})
    try:
        with urllib.request.urlopen(request, timeout=20) as response:
            return response.status, dict(response.headers), {}
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), json.loads(exc.read())


def test_a_signed_in_viewer_plays_from_a_page_with_its_csrf_token_and_a_closed_tab_ends_its_session(
        chromium, rtsp, servers, tmp_path):
    app = create_app({"CAMERAS": {"yard": rtsp.url("av")}, "USERS": USERS[:2], "STORAGE": str(tmp_path),
                      "IDLE_TIMEOUT": 5})
    site = servers.start(app)
    context = chromium.new_context()
    page = context.new_page()
    try:
        page.goto(site + "/login")
        page.fill("input[name=username]", "vic")
        page.fill("input[name=password]", PASSWORDS["vic"])
        page.click("form.login [type=submit]")
        page.wait_for_url(site + "/")
        page.goto(site + "/history")  # a page of camstream's with the session's CSRF token, and no live views
        page.add_script_tag(url=site + "/static/camstream-webrtc.js")
        play(page, "yard")
        wait_decoding(page, frames=5)
        engine = app.extensions[EXTENSION]
        assert len(engine.sessions("yard")) == 1
        # Its candidates came after the offer, in PATCHes with its CSRF token.
        assert wait_until(lambda: engine.sessions("yard")[0].trickled > 0, 10)
        page.close(run_before_unload=True)  # the player DELETEs its session as the page goes
        assert wait_until(lambda: not engine.sessions() and runtime_of(app).slots.used == 0, 20)
    finally:
        context.close()


def test_an_h265_camera_is_made_h264_once_for_all_its_webrtc_viewers_and_the_status_says_so(chromium, rtsp, servers):
    app = create_app({"CAMERAS": {"tower": rtsp.url("hevc")}, "IDLE_TIMEOUT": 5})
    site = servers.start(app)
    first, second = open_page(chromium, site), open_page(chromium, site)
    try:
        play(first, "tower")
        play(second, "tower")
        for page in (first, second):
            found = wait_decoding(page, frames=10)
            assert found["width"] == 320 and "video/H264" in found["codecs"]
        relay = relay_of(app, "tower")
        status = get_json(f"{site}/api/webrtc/tower")[1]
        assert (status["video"], status["viewers"], status["connected"]) == ("transcoded", 2, 2)
        # Made once for both viewers: no more frames encoded than the camera sent (its fragments, read after).
        transcoded = relay.frames_transcoded
        assert 0 < transcoded <= runtime_of(app).cameras["tower"].media.fragments
        made, decoded = relay.frames_packetized, stats(first)["video"]
        assert wait_until(lambda: relay.frames_packetized >= made + 30, 30)
        now: dict = {}

        def keeping_up() -> bool:
            now.update(stats(first) or {})
            return now.get("video", 0) - decoded >= 0.8 * (relay.frames_packetized - made) - JITTER_FRAMES
        assert wait_until(keeping_up, 20, interval=0.2), (now, relay.frames_packetized - made)
        # The last viewer gone, nothing is transcoded any more.
        for page in (first, second):
            page.evaluate("window.stops[0]()")
        assert wait_until(lambda: get_json(f"{site}/api/webrtc/tower")[1]["viewers"] == 0, 20)
        assert wait_until(lambda: relay._transcoder is None, 10)
    finally:
        first.close()
        second.close()


def test_the_page_plays_over_webrtc_where_its_player_setting_asks_and_the_tile_says_so(chromium, rtsp, servers):
    app = create_app({"CAMERAS": {"yard": rtsp.url("av")}})
    site = servers.start(app)
    page = chromium.new_page()
    try:
        page.goto(site + "/")
        view = "camstream-view[camera=yard]"
        page.wait_for_function(f"() => document.querySelector('{view}').dataset.mode === 'video'", timeout=20000)
        page.select_option('[data-action="player"]', "webrtc")  # kept by the browser; the page reloads
        page.wait_for_function(f"""() => {{ const v = document.querySelector('{view}');
            return v && v.dataset.mode === 'webrtc' && Number(v.dataset.frames || 0) >= 15; }}""", timeout=30000)
        assert page.evaluate(f"document.querySelector('{view} video').srcObject.getVideoTracks().length") == 1
        page.wait_for_function("() => document.querySelector('[data-camera=yard] [data-field=stats]')"
                               ".textContent.endsWith('WebRTC')", timeout=20000)
        page.select_option('[data-action="player"]', "mse")
        page.wait_for_function(f"() => document.querySelector('{view}').dataset.mode === 'video'", timeout=20000)
    finally:
        page.close()


def test_a_view_falls_back_from_webrtc_to_mse_where_webrtc_cannot_play(chromium, rtsp, servers):
    """A server that refuses the offer (here: a camera WebRTC cannot carry, faked by a failing WHEP answer) leaves
    the view to the next way it has."""
    site = servers.start(create_app({"CAMERAS": {"yard": rtsp.url("av")}}))
    page = chromium.new_page()
    try:
        page.route("**/whep/**", lambda route: route.fulfill(status=503, content_type="application/json",
                                                             body='{"error": "no", "status": 503}'))
        page.goto(site + "/api/webrtc")
        page.evaluate("html => { document.body.innerHTML = html; }",
                      f'<camstream-view camera="yard" server="{site}/" video webrtc></camstream-view>')
        page.add_script_tag(url=site + "/static/camstream-view.js")
        page.wait_for_function("() => { const v = document.querySelector('camstream-view');"
                               " return v.dataset.mode === 'video' && Number(v.dataset.frames || 0) >= 5; }",
                               timeout=30000)
        assert page.evaluate("document.querySelector('camstream-view').paths") == ["webrtc", "video"]
    finally:
        page.close()
