"""The page's player, in real browsers: an RTSP camera's own H.264 (with and without AAC) over MSE.

Chromium (Playwright) and Firefox ESR (Marionette, tests/firefox.py) play
the camera at its rate; the sound control unmutes and the choice is
remembered; where MediaSource is missing, ManagedMediaSource (iOS Safari
17.1+), else the browser's own HLS, else MJPEG plays (Chromium with
MediaSource taken away by an init script).

A camera plays at its rate when the browser decodes as many frames as the
camera sent in the same window: a reader of our own on the same /mse stream
counts the camera's frames while the browser's
``getVideoPlaybackQuality()`` counts what it decoded. The media time the
video advanced in that window must hold as many frames too, so a player
that skips ahead (seeks over holes) cannot pass by decoding what is left.
"""

from __future__ import annotations

import functools
import http.server
import json
import shutil
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import websocket

from camera.media import boxes
from tests.firefox import firefox  # noqa: F401 - a fixture
from tests.helpers import wait_until
from tests.passthrough.test_rtsp import RtspServer

pytest.importorskip("playwright.sync_api")
pytestmark = pytest.mark.slow

FPS = 15  # the RTSP server's cameras
WINDOW = 60  # frames decoded per measurement: four seconds of the camera
AT_LEAST = 0.9  # of the camera's rate
FAR_BEHIND = 2.0  # seconds behind the newest frame received: the player seeks to catch up beyond that

# In the page: from one shown frame to the first shown after WINDOW more were decoded, what the video did. Both
# ends are frames the browser presents (requestVideoFrameCallback), stamped with the wall clock the test's own
# reader of the stream uses, so its count of the frames the camera sent covers the same window to a frame.
MEASURE = """([view, frames]) => new Promise(resolve => {
  const video = view.querySelector('video');
  let start = null;
  function step(now, meta) {
    const quality = video.getVideoPlaybackQuality();
    const sample = { decoded: quality.totalVideoFrames, dropped: quality.droppedVideoFrames,
                     presented: meta.presentedFrames, media: meta.mediaTime, rate: video.playbackRate,
                     at: (performance.timeOrigin + performance.now()) / 1000, seeks: Number(view.dataset.seeks || 0),
                     lag: video.buffered.length ? video.buffered.end(video.buffered.length - 1) - video.currentTime : 0 };
    if (!start) start = sample;
    if (sample.decoded - start.decoded >= frames) resolve([start, sample]);
    else video.requestVideoFrameCallback(step);
  }
  video.requestVideoFrameCallback(step);
})"""


@pytest.fixture(scope="module")
def rtsp() -> Iterator[RtspServer]:
    server = RtspServer()
    yield server
    server.stop()


class OtherSite:
    """Another site's web server on 127.0.0.1, for pages that embed a camera with ``<camstream-view>``."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(directory))
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.origin = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def page_with(self, base: str, attributes: str, script: str = "") -> str:
        """The URL of a page that shows camstream's camera ``cam`` with ``attributes`` (and runs ``script``)."""
        name = f"embed-{len(list(self.directory.iterdir()))}.html"
        (self.directory / name).write_text(
            f"<!doctype html><script>{script}</script><script src=\"{base}/static/camstream-view.js\"></script>"
            f"<camstream-view camera=cam video {attributes}></camstream-view>")
        return f"{self.origin}/{name}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def other_site(tmp_path: Path) -> Iterator[OtherSite]:
    site = OtherSite(tmp_path)
    yield site
    site.close()


@pytest.fixture
def site(rtsp: RtspServer, serve_app, other_site: OtherSite) -> Callable[[str], str]:
    """camstream with one camera named ``cam`` on the RTSP server's ``path``, its video open to ``other_site``'s
    pages (--cors-origin); returns its base URL."""
    return lambda path: serve_app({"CAMERAS": {"cam": rtsp.url(path)}, "CORS_ORIGINS": [other_site.origin]})


class FrameCount:
    """The camera's video frames as camstream sends them, counted by a reader of our own on /mse/<name>."""

    def __init__(self, base: str, name: str) -> None:
        self.socket = websocket.create_connection(base.replace("http", "ws") + f"/mse/{name}", timeout=20)
        self.header = json.loads(self.socket.recv())
        tracks = boxes.tracks(self.socket.recv())
        self.video = next(track for track in tracks if track.kind == "vide")
        self.audio = next((track for track in tracks if track.kind == "soun"), None)
        self.times: list[float] = []  # wall clock, as the browser's performance.timeOrigin + now()
        # When a track's decode time did not follow on from its last sample's end: MSE takes that for a
        # discontinuity and drops every track's frames until the next keyframe (a stall of up to a GOP).
        self.jumps: list[tuple[float, str, int]] = []
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        ends: dict[int, int] = {}
        try:
            while True:
                data = self.socket.recv()
                if isinstance(data, str):
                    continue
                moof, now = boxes.split_boxes(data)[0][0][1], time.time()
                for track in filter(None, (self.video, self.audio)):
                    info = boxes.fragment_info(moof, track)
                    if info is None:
                        continue
                    if track is self.video:
                        self.times.append(now)
                    expected = ends.get(track.track_id)
                    if expected is not None and info.decode_time != expected:
                        self.jumps.append((now, track.kind, info.decode_time - expected))
                    ends[track.track_id] = info.decode_time + info.duration
        except (websocket.WebSocketException, OSError):
            return

    def between(self, start: float, end: float) -> int:
        return sum(start <= at < end for at in self.times)

    def close(self) -> None:
        self.socket.close()
        self.thread.join(5)


def rates(window: list[dict], sent: FrameCount) -> dict:
    """What the browser decoded and showed in a window, beside what the camera sent in it and its media time."""
    start, end = window
    result = {"decoded": end["decoded"] - start["decoded"], "presented": end["presented"] - start["presented"],
              "sent": sent.between(start["at"], end["at"]), "media_seconds": round(end["media"] - start["media"], 3),
              "wall_seconds": round(end["at"] - start["at"], 3), "dropped": end["dropped"] - start["dropped"],
              "seeks": end["seeks"] - start["seeks"], "rate": end["rate"],
              "lag": (round(start["lag"], 2), round(end["lag"], 2))}
    # Frames that came in but wait in the buffer (the player is further behind than at the start) were sent in
    # the window and are not decoded yet; frames of a backlog played off (a little faster) were sent before it.
    backlog = round((end["lag"] - start["lag"]) * FPS)
    result["of_sent"] = round(result["decoded"] / max(result["sent"] - backlog, 1), 3)
    # The stream's own faults, near the window (the browser plays up to a few seconds after receiving).
    result["timeline_jumps"] = [(kind, step) for at, kind, step in sent.jumps if start["at"] - 3 <= at <= end["at"]]
    # Decoded, not shown: on a busy machine the compositor skips showing some frames a person would barely miss
    # (presented and dropped say how many); a player that skips ahead decodes fewer than its media time holds.
    result["of_media_time"] = round(result["decoded"] / max(result["media_seconds"] * FPS, 1e-9), 3)
    return result


def assert_at_rate(result: dict, what: str) -> None:
    """Every frame of the video played is decoded, as many as the camera sent are decoded, and the player keeps up
    (a slideshow falls ever further behind, or skips ahead and so shows fewer frames than its media time holds)."""
    print(f"{what}: {result}", file=sys.stderr)
    assert result["of_media_time"] >= AT_LEAST, (
        f"{what}: decoded {result['decoded']} frames in {result['media_seconds']} s of the camera's video"
        f" (decode times that jumped, per track, in timescale units: {result['timeline_jumps']})")
    assert result["of_sent"] >= AT_LEAST, f"{what}: decoded {result['decoded']} of {result['sent']} frames sent"
    assert result["lag"][1] < FAR_BEHIND, f"{what}: {result['lag'][1]} s behind the newest frame"


def assert_at_rate_in_a_window(measure: Callable[[], dict], what: str, windows: int = 3) -> None:
    """:func:`assert_at_rate` for the first of up to ``windows`` windows that passes: a machine the rest of the
    suite loads may drop frames in one window; a player that cannot keep up (a slideshow) drops them in all."""
    for _ in range(windows - 1):
        result = measure()
        if (result["of_media_time"] >= AT_LEAST and result["of_sent"] >= AT_LEAST
                and result["lag"][1] < FAR_BEHIND):
            print(f"{what}: {result}", file=sys.stderr)
            return
        print(f"{what}, a window below the rate: {result}", file=sys.stderr)
    assert_at_rate(measure(), what)


def wait_playing(page, selector: str = "camstream-view", timeout: float = 30000) -> None:
    page.wait_for_function(
        f"() => {{ const v = document.querySelector('{selector} video');"
        " return v && !v.paused && v.readyState >= 3 && v.getVideoPlaybackQuality().totalVideoFrames > 5; }",
        timeout=timeout, polling=100)


def chromium_rate(page, sent: FrameCount, selector: str = "camstream-view") -> dict:
    view = page.query_selector(selector)
    return rates(page.evaluate(MEASURE, [view, WINDOW]), sent)


@pytest.mark.parametrize("path", ["av", "live"])
def test_chromium_decodes_the_cameras_frames_at_its_rate(browser, site, path):
    base = site(path)
    sent = FrameCount(base, "cam")
    page = browser.new_page()
    try:
        page.goto(base + "/")
        wait_playing(page)
        assert page.eval_on_selector("camstream-view", "view => [view.dataset.mode, view.mediaSourceName]") == [
            "video", "MediaSource"]
        assert_at_rate_in_a_window(lambda: chromium_rate(page, sent), f"chromium, /{path}")
        # A camera with sound has a sound control, muted by default; one without has none.
        buttons = page.eval_on_selector_all(
            "camstream-view button", "buttons => buttons.map(b => [b.getAttribute('aria-label'), "
            "b.getAttribute('aria-pressed')])")
        assert buttons == ([["sound of cam", "false"]] if path == "av" else [])
        assert page.eval_on_selector("camstream-view video", "video => video.muted")
    finally:
        page.close()
        sent.close()


def audio_bytes(page) -> int:
    return page.eval_on_selector("camstream-view video", "video => video.webkitAudioDecodedByteCount")


def wait_for_sound(page) -> None:
    """Sound decoded: the video's audio byte count goes on growing."""
    heard = audio_bytes(page)
    page.wait_for_function(f"() => document.querySelector('camstream-view video').webkitAudioDecodedByteCount"
                           f" > {heard + 20000}", timeout=15000, polling=100)


def chromium_with_autoplay(browser, policy: str):
    """Another Chromium with the autoplay policy ``policy``: whether a page may start sound without a click."""
    return browser.browser_type.launch(executable_path=shutil.which("chromium") or shutil.which("chromium-browser"),
                                       headless=True, args=[f"--autoplay-policy={policy}"])


@pytest.fixture(scope="module")
def loud_browser(browser):
    """Chromium that lets a page start sound by itself, as browsers do for a site the viewer uses often."""
    launched = chromium_with_autoplay(browser, "no-user-gesture-required")
    yield launched
    launched.close()


def test_the_sound_control_unmutes_with_a_click_and_the_page_remembers(loud_browser, site):
    base = site("av")
    page = loud_browser.new_page()
    try:
        page.goto(base + "/")
        wait_playing(page)
        button = page.locator("camstream-view button[data-action=sound]")
        assert button.get_attribute("aria-pressed") == "false"
        assert page.eval_on_selector("camstream-view video", "video => video.muted"), "muted by default"
        # Reachable from the keyboard: focused, Enter presses it.
        button.focus()
        assert page.evaluate("() => document.activeElement.dataset.action") == "sound"
        page.keyboard.press("Enter")
        page.wait_for_function("() => !document.querySelector('camstream-view video').muted", timeout=5000)
        assert button.get_attribute("aria-pressed") == "true"
        wait_for_sound(page)
        assert page.evaluate("() => Object.entries(localStorage)") == [[f"camstream-sound:{base[7:]}/cam", "on"]]
        # After a reload the choice holds.
        page.reload()
        wait_playing(page)
        assert not page.eval_on_selector("camstream-view video", "video => video.muted")
        assert button.get_attribute("aria-pressed") == "true"
        wait_for_sound(page)
        # Clicked again: muted, and remembered so.
        button.click()
        assert page.eval_on_selector("camstream-view video", "video => video.muted")
        page.reload()
        wait_playing(page)
        assert page.eval_on_selector("camstream-view video", "video => video.muted")
        assert button.get_attribute("aria-pressed") == "false"
    finally:
        page.close()


# The embedding page says, when its video starts, whether it is muted and what the sound control shows: read
# from the console, so that nothing the test runs in the page counts as the viewer's gesture (Playwright's
# evaluations do) before the browser decides about the sound.
REPORT_PLAYING = """document.addEventListener("playing", event => {
  const button = document.querySelector("camstream-view button");
  console.log("playing " + JSON.stringify({ muted: event.target.muted,
                                            pressed: button && button.getAttribute("aria-pressed") }));
}, true);"""


def test_the_sound_attribute_starts_unmuted_where_the_browser_allows_and_muted_where_not(browser, loud_browser, site,
                                                                                           other_site):
    base = site("av")
    embedding = other_site.page_with(base, "sound", REPORT_PLAYING)
    strict = chromium_with_autoplay(browser, "document-user-activation-required")
    try:
        for launched, allowed in ((loud_browser, True), (strict, False)):
            page = launched.new_page()
            with page.expect_console_message(lambda message: message.text.startswith("playing "),
                                             timeout=30000) as said:
                page.goto(embedding)
            started = json.loads(said.value.text.split(" ", 1)[1])
            print(f"sound attribute, autoplay with sound allowed: {allowed}: {started}", file=sys.stderr)
            if allowed:
                assert started == {"muted": False, "pressed": "true"}, "sound, as the attribute asks"
                wait_for_sound(page)
            else:
                assert started == {"muted": True, "pressed": "false"}, "sound refused: muted, playing all the same"
                # A click is what the browser waits for: then the sound comes.
                page.click("camstream-view button")
                page.wait_for_function("() => !document.querySelector('camstream-view video').muted", timeout=5000)
                wait_for_sound(page)
            page.close()
    finally:
        strict.close()


# Chromium without MediaSource: as Safari on an iPhone with ManagedMediaSource (17.1+), or before it.
MANAGED_ONLY = """(() => {
  const Original = window.MediaSource;
  window.ManagedMediaSource = class ManagedMediaSource extends Original {};
  delete window.MediaSource;
})();"""
NO_MEDIA_SOURCE = "delete window.MediaSource; delete window.RTCPeerConnection;"  # nor WebRTC: an old iPhone
HLS_SAYS = """(() => {
  const canPlayType = HTMLMediaElement.prototype.canPlayType;
  HTMLMediaElement.prototype.canPlayType = function (type) {
    return /mpegurl/i.test(type) ? "%s" : canPlayType.call(this, type);
  };
})();"""
NATIVE_HLS = HLS_SAYS % "maybe"
NO_HLS = HLS_SAYS % ""  # Chromium 141 and later play HLS by themselves: as a browser that does not


def test_managed_media_source_plays_where_media_source_is_missing(browser, site):
    base = site("live")
    context = browser.new_context()
    context.add_init_script(MANAGED_ONLY)
    page = context.new_page()
    try:
        page.goto(base + "/")
        assert page.evaluate("() => 'ManagedMediaSource' in window && !('MediaSource' in window)")
        wait_playing(page)
        assert page.eval_on_selector("camstream-view", "view => [view.dataset.mode, view.mediaSourceName]") == [
            "video", "ManagedMediaSource"]
        assert page.eval_on_selector("camstream-view video", "video => video.disableRemotePlayback")
        # The browser says it wants no more for now: the stream closes; when it asks again, it plays on.
        page.eval_on_selector("camstream-view", "view => view.mediaSource.dispatchEvent(new Event('endstreaming'))")
        assert page.eval_on_selector("camstream-view", "view => view.socket") is None
        page.eval_on_selector("camstream-view",
                              "view => view.mediaSource.dispatchEvent(new Event('startstreaming'))")
        page.wait_for_function("() => { const view = document.querySelector('camstream-view');"
                               " return view.socket && view.socket.readyState === 1; }", timeout=10000)
        frames = page.eval_on_selector("camstream-view", "view => view.frames")
        page.wait_for_function(f"() => document.querySelector('camstream-view').frames > {frames + 15}",
                               timeout=20000)
    finally:
        context.close()


def test_native_hls_where_there_is_no_media_source_and_mjpeg_where_there_is_neither(browser, site, other_site):
    base = site("live")
    for script, token, first in ((NO_MEDIA_SOURCE + NATIVE_HLS, "abc", "hls"), (NO_MEDIA_SOURCE + NO_HLS, "", "shared")):
        context = browser.new_context()
        context.add_init_script(script)
        page = context.new_page()
        try:
            if token:
                # An embedding page with a read-only token: the playlist is asked for with it.
                with page.expect_request(lambda request: "/hls/" in request.url, timeout=15000) as asked:
                    page.goto(other_site.page_with(base, f"token={token}"))
                assert asked.value.url == f"{base}/hls/cam/index.m3u8?token={token}"
            else:
                page.goto(base + "/")
            assert page.eval_on_selector("camstream-view", "view => view.paths[0]") == first
            if first == "hls":
                # Chromium plays HLS by itself now (141+): the camera's video, through the playlist.
                wait_playing(page)
                assert page.eval_on_selector("camstream-view", "view => view.dataset.mode") == "hls"
            else:
                page.wait_for_function("() => document.querySelector('camstream-view img').naturalWidth > 0",
                                       timeout=20000)
                assert page.query_selector("camstream-view video") is None
        finally:
            context.close()


@pytest.mark.browser
def test_firefox_decodes_the_cameras_frames_with_its_audio_at_its_rate_and_unmutes(firefox, site):  # noqa: F811
    base = site("av")
    sent = FrameCount(base, "cam")
    try:
        firefox.navigate(base + "/")
        playing = ("const v = document.querySelector('camstream-view video');"
                   " return Boolean(v && !v.paused && v.readyState >= 3"
                   " && v.getVideoPlaybackQuality().totalVideoFrames > 5);")
        assert wait_until(lambda: firefox.execute_script(playing), 30, 0.1), firefox.execute_script(
            "const view = document.querySelector('camstream-view'); return [view.dataset.mode, view.paths];")

        def measure() -> dict:
            window = firefox.execute_async_script(
                "const done = arguments[arguments.length - 1];"
                f"({MEASURE})([document.querySelector('camstream-view'), {WINDOW}]).then(done);",
                script_timeout=60000, sandbox=None)
            return rates(window, sent)
        assert_at_rate_in_a_window(measure, "firefox, /av")
        assert firefox.execute_script("return document.querySelector('camstream-view').dataset.mode;") == "video"
        # The sound control: a click unmutes, and the video has sound.
        button = firefox.find_element("css selector", "camstream-view button[data-action=sound]")
        assert button.get_attribute("aria-pressed") == "false"
        button.click()
        assert wait_until(lambda: firefox.execute_script(
            "const v = document.querySelector('camstream-view video'); return !v.muted && v.mozHasAudio;"), 10)
        assert button.get_attribute("aria-pressed") == "true"
    finally:
        sent.close()
