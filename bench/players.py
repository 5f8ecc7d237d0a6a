"""Real players side by side on one 1080p30 camera: frames they decode, how far behind live they play, and what
each path costs camstream.

One GStreamer RTSP server (core 1) encodes live with x264 (not a looped file:
its clock moves as a camera's does) at 1920x1080, 30 fps: ``/av`` with AAC
48 kHz beside the video, ``/live`` the same without audio. camstream runs as
``python -m webapp`` (core 0; ``BENCH_PIN=0`` pins neither), one process per
camera, the second started when its players come. Each player plays for
``--seconds`` after it started:

- the page's ``<camstream-view>`` over MSE in Chromium (Playwright) and in
  Firefox ESR (Marionette, as tests/firefox.py starts it), both cameras;
- hls.js from tests/js/node_modules in Chromium, regular and low-latency;
- WebRTC through WHEP (static/camstream-webrtc.js) in Chromium.

Frames decoded are ``getVideoPlaybackQuality()`` (WebRTC: ``getStats()``'s
``framesDecoded``) per second of media the video advanced, against the
camera's 30. Behind live is the browser's own view: MSE's buffered end minus
``currentTime`` (what camstream has sent and the player has not shown yet),
hls.js's ``latency`` (from the playlist's live edge), and WebRTC's jitter
buffer delay per frame. Then camstream's CPU (its process's CPU seconds over
the window) with 1 and ``--viewers`` MSE WebSocket clients, HLS readers and
WebRTC peer connections.

    python bench/players.py                         # about 7 minutes
    python bench/players.py --seconds 8 --cpu-seconds 5 --viewers 3 --out -
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import http.server
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from frame_age import AUDIO
from passthrough import FPS, GOP, HEIGHT, SYSTEM_PYTHON, WIDTH, MseClients, hls_reader, measure
from report import publish
from run import ROOT, Process, pinned

sys.path.insert(0, str(ROOT))
from tests.firefox import firefox_executable, marionette_session
from tests.helpers import wait_until
from tests.passthrough.test_hls import HLS_JS, PAGE, Quiet
from tests.web.test_player import wait_playing
from tests.webrtc.test_whep import CHROMIUM_ARGS, PLAY, open_page, play

try:
    from marionette_driver.marionette import Marionette
except ImportError:
    Marionette = None

PLACES = ("core 0" if os.environ.get("BENCH_PIN") != "0" else
          "not pinned, `BENCH_PIN=0`: another bench held core 0 for the run")
# Seconds a player plays before its window: it starts, catches up, settles.
WARM_UP = 6

# The <video>'s counters, its position and what it has buffered beyond it; hls.js's latency where there is one.
SAMPLE = """(selector) => {
  const v = document.querySelector(selector);
  const q = v.getVideoPlaybackQuality();
  const b = v.buffered;
  return {decoded: q.totalVideoFrames, dropped: q.droppedVideoFrames, media: v.currentTime,
          ahead: b.length ? b.end(b.length - 1) - v.currentTime : null, at: Date.now() / 1000,
          latency: window.hls ? window.hls.latency : null, paused: v.paused};
}"""

# WebRTC's inbound video: frames decoded and dropped, and the jitter buffer's delay summed over frames it let go.
RTC_SAMPLE = """async (index) => {
  const pc = window.stops[index].peerConnection();
  const out = {decoded: 0, dropped: 0, delay: 0, emitted: 0, at: Date.now() / 1000, state: pc ? pc.connectionState : null};
  if (!pc) return out;
  (await pc.getStats()).forEach((s) => {
    if (s.type !== 'inbound-rtp' || s.kind !== 'video') return;
    out.decoded = s.framesDecoded || 0; out.dropped = s.framesDropped || 0;
    out.delay = s.jitterBufferDelay || 0; out.emitted = s.jitterBufferEmittedCount || 0;
  });
  return out;
}"""


def rtsp_server(kbits: int) -> Process:
    """The camera: x264 live at 1080p30, ``/av`` with AAC 48 kHz beside it, ``/live`` without."""
    video = (f"videotestsrc is-live=true pattern=smpte horizontal-speed=8 ! "
             f"video/x-raw,width={WIDTH},height={HEIGHT},framerate={FPS}/1 ! "
             f"x264enc tune=zerolatency speed-preset=ultrafast key-int-max={GOP} bitrate={kbits} ! h264parse ! "
             "rtph264pay name=pay0 pt=96 config-interval=-1")
    return Process(pinned(1, [SYSTEM_PYTHON, str(ROOT / "tests" / "rtsp_server.py"), "0", f"/av={video} {AUDIO}",
                              f"/live={video}"]), r"ready (\d+)")


def camstream(url: str, origin: str, viewers: int) -> Process:
    """``python -m webapp`` with the one camera; tried twice (a start on a busy core can take over 30 s)."""
    try:
        return _camstream(url, origin, viewers)
    except RuntimeError:
        return _camstream(url, origin, viewers)


def _camstream(url: str, origin: str, viewers: int) -> Process:
    return Process(pinned(0, [sys.executable, "-m", "webapp", "--port", "0", "--camera", f"cam={url}",
                              "--cors-origin", origin, "--idle-timeout", "2", "--max-viewers", str(viewers + 10)]),
                   r"open http://localhost:(\d+)/", stream="stderr")


@contextlib.contextmanager
def hls_pages() -> Iterator[str]:
    """A web server of hls.js's pages (tests/passthrough/test_hls.py's): ``ll.html`` low-latency, ``regular.html``
    not; yields its origin."""
    with tempfile.TemporaryDirectory(prefix="camstream-hls-") as folder:
        regular = PAGE.replace("lowLatencyMode: true", "lowLatencyMode: false")
        assert regular != PAGE, "the test's page no longer sets lowLatencyMode"
        (Path(folder) / "ll.html").write_text(PAGE)
        (Path(folder) / "regular.html").write_text(regular)
        shutil.copy(HLS_JS, Path(folder) / "hls.min.js")
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=folder))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            yield f"http://127.0.0.1:{server.server_address[1]}"
        finally:
            server.shutdown()
            server.server_close()


@contextlib.contextmanager
def firefox() -> Iterator[object | None]:
    """A Marionette session with a headless Firefox ESR (the profile tests/firefox.py writes), or None."""
    executable = firefox_executable()
    if executable is None or Marionette is None:
        yield None
        return
    with marionette_session(executable) as client:
        yield client


def window(sample: Callable[[], dict], seconds: float) -> list[dict]:
    """A sample a second for ``seconds``."""
    samples = [sample()]
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(1.0)
        samples.append(sample())
    return samples


def video_row(label: str, samples: list[dict]) -> dict:
    first, last = samples[0], samples[-1]
    decoded = last["decoded"] - first["decoded"]
    media = last["media"] - first["media"]
    aheads = [s["ahead"] for s in samples if s["ahead"] is not None]
    latencies = [s["latency"] for s in samples if s["latency"] is not None]
    return {"player": label, "per_media_s": decoded / media if media > 0 else None,
            "per_wall_s": decoded / (last["at"] - first["at"]), "decoded": decoded, "media_s": media,
            "wall_s": last["at"] - first["at"], "dropped": last["dropped"] - first["dropped"],
            "ahead": statistics.median(aheads) if aheads else None,
            "latency": statistics.median(latencies) if latencies else None, "jitter": None}


def rtc_row(label: str, samples: list[dict]) -> dict:
    first, last = samples[0], samples[-1]
    wall = last["at"] - first["at"]
    emitted = last["emitted"] - first["emitted"]
    return {"player": label, "per_media_s": None, "per_wall_s": (last["decoded"] - first["decoded"]) / wall,
            "decoded": last["decoded"] - first["decoded"], "media_s": None, "wall_s": wall,
            "dropped": last["dropped"] - first["dropped"], "ahead": None, "latency": None,
            "jitter": (last["delay"] - first["delay"]) / emitted if emitted else None}


def chromium_mse(browser, base: str, label: str, seconds: float) -> dict:
    page = browser.new_page()
    try:
        page.goto(base + "/")
        wait_playing(page, timeout=60000)
        mode = page.eval_on_selector("camstream-view", "view => view.dataset.mode")
        if mode != "video":
            raise RuntimeError(f"{label}: the page plays {mode}, not MSE")
        time.sleep(WARM_UP)
        return video_row(label, window(lambda: page.evaluate(SAMPLE, "camstream-view video"), seconds))
    finally:
        page.close()


def firefox_mse(client, base: str, label: str, seconds: float) -> dict:
    client.navigate(base + "/")
    playing = ("const v = document.querySelector('camstream-view video');"
               " return Boolean(v && !v.paused && v.readyState >= 3 && v.getVideoPlaybackQuality().totalVideoFrames"
               " > 5 && document.querySelector('camstream-view').dataset.mode === 'video');")
    if not wait_until(lambda: client.execute_script(playing, sandbox=None), 60, 0.2):
        raise RuntimeError(f"{label}: Firefox did not play the camera over MSE")
    time.sleep(WARM_UP)
    row = video_row(label, window(lambda: client.execute_script(f"return ({SAMPLE})(arguments[0]);",
                                                                script_args=["camstream-view video"],
                                                                sandbox=None), seconds))
    client.navigate("about:blank")
    return row


def hlsjs(browser, pages: str, base: str, low_latency: bool, seconds: float) -> dict:
    label = f"hls.js {'low-latency' if low_latency else 'regular'}, Chromium, with audio"
    page = browser.new_page()
    try:
        page.goto(f"{pages}/{'ll' if low_latency else 'regular'}.html")
        page.evaluate("url => play(url)", f"{base}/hls/cam/master.m3u8")
        if not wait_until(lambda: page.evaluate("watched()")["time"] > 1, 60, 0.5):
            raise RuntimeError(f"{label}: not playing: {page.evaluate('errors')}")
        time.sleep(WARM_UP)
        row = video_row(label, window(lambda: page.evaluate(SAMPLE, "video"), seconds))
        if page.evaluate("hls.lowLatencyMode") != low_latency:
            raise RuntimeError(f"{label}: hls.js's lowLatencyMode is not {low_latency}")
        return row
    finally:
        page.close()


def webrtc(browser, base: str, seconds: float) -> dict:
    page = open_page(browser, base)
    try:
        play(page, "cam")
        if not wait_until(lambda: page.evaluate(RTC_SAMPLE, 0)["decoded"] > 10, 60, 0.5):
            raise RuntimeError(f"WebRTC: not decoding: {page.evaluate('window.errors')}")
        time.sleep(WARM_UP)
        return rtc_row("WebRTC (WHEP), Chromium, with audio (as Opus)",
                       window(lambda: page.evaluate(RTC_SAMPLE, 0), seconds))
    finally:
        page.evaluate("window.stops.forEach(stop => stop())")
        page.close()


def cpu_rows(server: Process, browser, base: str, port: int, counts: tuple[int, ...], seconds: float) -> list[tuple]:
    """camstream's CPU % of a core with ``count`` viewers of each path, and what they got."""
    rows = []
    for count in counts:
        clients = MseClients(port, "cam", count)
        try:
            if not wait_until(lambda c=clients, n=count: min(c.messages) > FPS, 60, 0.5):
                raise RuntimeError(f"MSE x{count}: not streaming: {clients.messages}")
            time.sleep(WARM_UP)
            before = sum(clients.messages)
            cpu = measure(server.pid, seconds)
            rows.append(("MSE (WebSocket clients)", count, cpu, (sum(clients.messages) - before) / count / seconds,
                         "fragments/s each"))
        finally:
            clients.close()
        time.sleep(1)
    for count in counts:
        stop = threading.Event()
        readers = [{"bytes": 0, "segments": 0, "frames": 0, "errors": []} for _ in range(count)]
        threads = [threading.Thread(target=hls_reader, args=(base, "cam", stop, reader), daemon=True)
                   for reader in readers]
        for thread in threads:
            thread.start()
        try:
            if not wait_until(lambda r=readers: min(reader["segments"] for reader in r) > 0, 60, 0.5):
                raise RuntimeError(f"HLS x{count}: no segment: {[reader['errors'][:2] for reader in readers]}")
            time.sleep(WARM_UP)
            before = sum(reader["bytes"] for reader in readers)
            cpu = measure(server.pid, seconds)
            rate = (sum(reader["bytes"] for reader in readers) - before) * 8 / count / seconds / 1e6
            rows.append(("HLS (playlist and segment readers)", count, cpu, rate, "Mbit/s each"))
        finally:
            stop.set()
            for thread in threads:
                thread.join(30)
        time.sleep(1)
    for count in counts:
        page = open_page(browser, base)
        try:
            for _ in range(count):
                page.evaluate(PLAY, ["cam", None])
            if not wait_until(lambda p=page, n=count: all(p.evaluate(RTC_SAMPLE, index)["decoded"] > 10
                                                          for index in range(n)), 90, 1.0):
                raise RuntimeError(f"WebRTC x{count}: not all decoding: {page.evaluate('window.errors')}")
            time.sleep(WARM_UP)
            before = [page.evaluate(RTC_SAMPLE, index) for index in range(count)]
            cpu = measure(server.pid, seconds)
            after = [page.evaluate(RTC_SAMPLE, index) for index in range(count)]
            rate = sum((a["decoded"] - b["decoded"]) / (a["at"] - b["at"]) for a, b in zip(after, before, strict=True))
            rows.append(("WebRTC (peer connections in one Chromium page)", count, cpu, rate / count,
                         "frames decoded/s each"))
        finally:
            page.evaluate("window.stops.forEach(stop => stop())")
            page.close()
        time.sleep(1)
    return rows


def run(args: argparse.Namespace) -> str:
    from playwright.sync_api import sync_playwright

    if not HLS_JS.exists():
        raise SystemExit("hls.js is not installed: run `npm ci --prefix tests/js`")
    camera = rtsp_server(args.bitrate // 1000)
    rtsp = f"rtsp://127.0.0.1:{camera.match.group(1)}/shared"  # one stream for every client, as a camera has
    players: list[dict] = []
    with hls_pages() as pages, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=shutil.which("chromium") or shutil.which("chromium-browser"),
                                             headless=True, args=CHROMIUM_ARGS)
        with_audio = without = None
        try:
            with_audio = camstream(f"{rtsp}/av", pages, args.viewers)
            av_base = f"http://127.0.0.1:{with_audio.match.group(1)}"
            players.append(chromium_mse(browser, av_base, "MSE (the page), Chromium, with audio", args.seconds))
            players.append(hlsjs(browser, pages, av_base, False, args.seconds))
            players.append(hlsjs(browser, pages, av_base, True, args.seconds))
            players.append(webrtc(browser, av_base, args.seconds))
            with firefox() as client:
                if client is None:
                    print("no firefox-esr or marionette-driver: Firefox left out", file=sys.stderr)
                else:
                    players.append(firefox_mse(client, av_base, "MSE (the page), Firefox ESR, with audio",
                                               args.seconds))
                without = camstream(f"{rtsp}/live", pages, args.viewers)
                live_base = f"http://127.0.0.1:{without.match.group(1)}"
                if client is not None:
                    players.append(firefox_mse(client, live_base, "MSE (the page), Firefox ESR, no audio",
                                               args.seconds))
            players.append(chromium_mse(browser, live_base, "MSE (the page), Chromium, no audio", args.seconds))
            without.stop()
            costs = cpu_rows(with_audio, browser, av_base, int(with_audio.match.group(1)), (1, args.viewers),
                             args.cpu_seconds)
        finally:
            if with_audio is not None:
                with_audio.stop()
            if without is not None:
                without.stop()
            browser.close()
            camera.stop()
    return report(players, costs, args)


def _num(value: float | None, digits: int = 1) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def report(players: list[dict], costs: list[tuple], args: argparse.Namespace) -> str:
    unpinned = "BENCH_PIN=0 " if os.environ.get("BENCH_PIN") == "0" else ""
    command = f"{unpinned}python bench/players.py " + " ".join(sys.argv[1:])
    lines = [
        "## Players (bench/players.py)",
        "",
        (f"One RTSP camera, {WIDTH}x{HEIGHT} at {FPS} fps, H.264 from a live x264 (`ultrafast`, "
         f"`tune=zerolatency`, about {args.bitrate / 1e6:g} Mbit/s, GOP {GOP / FPS:g} s) with AAC 48 kHz, and the "
         "same camera without audio, from GStreamer's RTSP server; camstream as `python -m webapp`, one "
         f"process per camera ({PLACES}); the browsers headless on either core. **This machine has 2 cores, busy "
         "with other work during the run**: the x264 encoder, camstream and a browser decoding 1080p share them, "
         f"so the rates are a floor, not what a desktop sees. Each player measured for {args.seconds:g} s after "
         f"it played for {WARM_UP} s."),
        "",
        ("Frames decoded: `getVideoPlaybackQuality().totalVideoFrames` per second of media the `<video>` "
         "advanced (WebRTC: `framesDecoded` per wall-clock second), against the camera's 30; per wall second "
         "beside it (below the media rate when the player stalls). Behind live: for MSE, the `<video>`'s "
         "buffered end minus `currentTime` (median over the window: what camstream has sent that the player has "
         "not shown yet, on top of the frame age above, what camstream adds before a fragment leaves); for "
         "hls.js, its "
         "own `latency` (from the playlist's live edge, which itself trails the camera by up to a part or a "
         "segment); for WebRTC, the jitter buffer's delay per frame (`jitterBufferDelay / "
         "jitterBufferEmittedCount`). hls.js keeps the latency it has: it does not play faster to catch up "
         "(`maxLiveSyncPlaybackRate` 1 and no `liveMaxLatencyDuration` by default), so each stall on a busy "
         "machine adds to it for the rest of the run, low-latency mode or not."),
        "",
        "| player | frames decoded / s of media | / s of wall clock | dropped | behind live, s | measure |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for row in players:
        if row["jitter"] is not None:
            behind, how = _num(row["jitter"], 3), "jitter buffer delay per frame"
        elif row["latency"] is not None:
            behind, how = _num(row["latency"], 2), f"hls.js `latency` (buffered ahead {_num(row['ahead'], 2)} s)"
        else:
            behind, how = _num(row["ahead"], 2), "buffered end - currentTime"
        lines.append(f"| {row['player']} | {_num(row['per_media_s'])} | {_num(row['per_wall_s'])} "
                     f"| {row['dropped']} | {behind} | {how} |")
    lines += [
        "",
        (f"camstream's CPU (its process's CPU seconds over {args.cpu_seconds:g} s, % of one core) with the "
         f"camera with audio watched by 1 and {args.viewers} viewers of each path; the MSE and HLS clients are "
         "raw readers in the bench's process (bench/passthrough.py's), the WebRTC viewers peer connections in "
         "one Chromium page, which decodes every one of them on the same 2 cores."),
        "",
        "| path | viewers | CPU % of a core | what each viewer got |",
        "| --- | --- | --- | --- |",
    ]
    for path, count, cpu, rate, unit in costs:
        lines.append(f"| {path} | {count} | {cpu:.1f} | {rate:.1f} {unit} |")
    lines += ["", f"Command: `{command.strip()}`"]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20, help="each player's window")
    parser.add_argument("--cpu-seconds", type=float, default=15, help="each CPU measurement's window")
    parser.add_argument("--viewers", type=int, default=10)
    parser.add_argument("--bitrate", type=int, default=4_000_000)
    parser.add_argument("--out", default=str(ROOT / "docs" / "benchmarks.md"))
    args = parser.parse_args()
    publish(args.out, "players", run(args))


if __name__ == "__main__":
    main()
