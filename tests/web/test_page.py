"""The page, in a real browser: Debian's chromium, headless, driven by Playwright."""

import functools
import http.server
import os
import re
import shutil
import threading
from pathlib import Path

import pytest

from camera import PatternCamera
from tests.helpers import decode, free_port, get_json, wait_until
from tests.sources import SceneCamera
from webapp import create_app
from webapp.app import shutdown
from webapp.runtime.registry import runtime_of
from webapp.serve.server import make_server

pytestmark = pytest.mark.slow

playwright_api = pytest.importorskip("playwright.sync_api")

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
if CHROMIUM is None:
    # .ci/run installs it; elsewhere the suite runs without the browser tests.
    if os.environ.get("CI"):
        raise RuntimeError("chromium is missing; .ci/run should have installed it")
    pytest.skip("no chromium on this machine", allow_module_level=True)


@pytest.fixture
def site():
    """Three live cameras and one whose source is never there, on a real waitress.

    At 5 fps: twelve tabs decoding four cameras at 15 fps would keep this
    machine's two cores too busy to answer the test.
    """
    cameras = {name: PatternCamera(name, fps=5, width=320) for name in ("front", "back", "side")}
    app = create_app({"CAMERAS": {**cameras, "door": f"http://127.0.0.1:{free_port()}/cam"}})
    server = make_server(app, "127.0.0.1", 0, threads=16)
    threading.Thread(target=server.run, daemon=True).start()
    yield app, f"http://127.0.0.1:{server.effective_port}"
    shutdown(app)
    server.close()


ALL_FRAMES = "[...document.querySelectorAll('camstream-view')].map(view => view.frames || 0)"


def frames_shown(page, camera: str) -> int:
    return page.eval_on_selector(f'camstream-view[camera="{camera}"]', "view => view.frames || 0")


def wait_for_frames(page, camera: str, more_than: int = 0, timeout: float = 15000) -> int:
    page.wait_for_function(
        "([camera, count]) => { const view = document.querySelector(`camstream-view[camera='${camera}']`);"
        " return view && view.frames > count && view.img.naturalWidth > 0; }",
        arg=[camera, more_than], timeout=timeout, polling=100)
    return frames_shown(page, camera)


def test_every_camera_shows_moving_video_and_its_numbers(browser, site):
    _app, base = site
    page = browser.new_page()
    page.goto(base + "/", wait_until="domcontentloaded")
    for camera in ("front", "back", "side"):
        first = wait_for_frames(page, camera)
        wait_for_frames(page, camera, first + 5)
        assert page.eval_on_selector(f'camstream-view[camera="{camera}"]', "view => view.dataset.mode") == "shared"
        # Read between frames, an img may be swapping its blob (naturalWidth 0 for that moment): wait for the size.
        page.wait_for_function(f"() => document.querySelector('camstream-view[camera=\"{camera}\"] img')"
                               ".naturalWidth === 320", timeout=10000, polling=100)
    # The numbers come from the status API every 2 s; the tab's one shared stream is one viewer.
    page.wait_for_function(
        "() => /[1-9][0-9.]* fps · 1 viewer · 320×240/"
        ".test(document.querySelector('[data-camera=front] [data-field=stats]').textContent)",
        timeout=10000, polling=200)
    page.close()


def test_twelve_tabs_all_show_moving_video_over_one_connection(browser, site):
    app, base = site
    context = browser.new_context()
    pages = []
    for _ in range(12):
        page = context.new_page()
        page.goto(base + "/", wait_until="domcontentloaded")
        pages.append(page)
    counts = [page.evaluate(ALL_FRAMES) for page in pages]
    for page, before in zip(pages, counts, strict=True):
        # Every view of every tab shows new frames.
        page.wait_for_function(f"before => ({ALL_FRAMES}).every((n, i) => n >= before[i] + 2)",
                               arg=before, timeout=20000, polling=200)
    # Every tab and camera shares one video stream, and one event stream for the numbers.
    assert runtime_of(app).slots.used == 2
    _status, health = get_json(f"{base}/healthz")
    assert health["streams"] == 2
    context.close()


def test_the_snapshot_button_downloads_a_jpeg(browser, site, tmp_path):
    _, base = site
    page = browser.new_page()
    page.goto(base + "/", wait_until="domcontentloaded")
    with page.expect_download() as download:
        page.click('[data-camera="back"] [data-action="snapshot"]')
    path = tmp_path / "back.jpg"
    download.value.save_as(path)
    assert download.value.suggested_filename == "back.jpg"
    assert decode(Path(path).read_bytes()).shape == (240, 320, 3)
    page.close()


def test_a_reconnecting_camera_is_marked_on_its_tile(browser, site):
    _, base = site
    page = browser.new_page()
    page.goto(base + "/", wait_until="domcontentloaded")
    page.wait_for_selector('[data-camera="door"] .state.reconnecting', timeout=15000)
    assert "could not connect" in page.text_content('[data-camera="door"] [data-field="error"]')
    # Its viewers see the "no signal" picture meanwhile.
    wait_for_frames(page, "door")
    page.close()


def test_without_javascript_the_page_is_a_list_of_streams(browser, site):
    _, base = site
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    page.goto(base + "/", wait_until="domcontentloaded")
    # wait_for_function runs in the page's own JavaScript, which is off here.
    shown = "[...document.images].filter(img => img.naturalWidth > 0).length"
    assert wait_until(lambda: page.evaluate(shown) >= 3, 15)
    sources = page.eval_on_selector_all("img", "images => images.map(img => img.getAttribute('src'))")
    assert "/video_feed/front" in sources and "/video_feed/side" in sources
    context.close()


def test_the_embed_code_and_a_screenshot(browser, site):
    _, base = site
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.grant_permissions(["clipboard-read", "clipboard-write"])
    page = context.new_page()
    page.goto(base + "/", wait_until="domcontentloaded")
    page.click('[data-camera="front"] [data-action="embed"]')
    page.wait_for_selector('[data-camera="front"] [data-action="embed"]:text("copied")', timeout=5000)
    code = page.evaluate("navigator.clipboard.readText()")
    assert code == f'<img src="{base}/video_feed/front" alt="front">'
    for camera in ("front", "back", "side"):
        wait_for_frames(page, camera)
    page.wait_for_selector('[data-camera="door"] .state.reconnecting', timeout=15000)
    docs = Path(__file__).resolve().parents[2] / "docs"
    if os.environ.get("CAMSTREAM_SCREENSHOT"):
        page.screenshot(path=str(docs / "page.png"))
    context.close()


def test_the_element_embeds_in_another_sites_page_as_a_plain_stream(browser, site, tmp_path):
    """On another origin a SharedWorker of camstream's cannot run; the element falls back to <img>."""
    _, base = site
    (tmp_path / "dashboard.html").write_text(
        f'<!doctype html><script src="{base}/static/camstream-view.js"></script>'
        '<div style="width: 200px"><camstream-view camera="side"></camstream-view></div>')
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler) as other_site:
        threading.Thread(target=other_site.serve_forever, daemon=True).start()
        page = browser.new_page()
        page.goto(f"http://127.0.0.1:{other_site.server_address[1]}/dashboard.html", wait_until="domcontentloaded")
        page.wait_for_function("() => document.querySelector('camstream-view img').naturalWidth === 320",
                               timeout=15000, polling=200)
        assert page.eval_on_selector("camstream-view", "view => view.dataset.mode") == "direct"
        assert page.eval_on_selector("camstream-view img", "img => img.src") == f"{base}/video_feed/side"
        # A 320-pixel picture in a 200-pixel box, without camstream's stylesheet: it fits, its shape kept.
        width, height = page.eval_on_selector("camstream-view img", "img => [img.getBoundingClientRect().width, "
                                              "img.getBoundingClientRect().height]")
        assert width == 200 and height == 150
        page.close()
        other_site.shutdown()


NEWEST_WINS = """async () => {
  const view = document.querySelector("camstream-view[camera='door']");
  const widths = Array.from({length: 20}, (_, i) => 100 + i);
  const blobs = await Promise.all(widths.map(width => new Promise(resolve => {
    const canvas = document.createElement("canvas");
    canvas.width = width;
    canvas.height = 50;
    canvas.toBlob(resolve, "image/jpeg");
  })));
  const shown = [];
  view.img.addEventListener("load", () => shown.push(view.img.naturalWidth));
  blobs.forEach(blob => view.show(blob));
  await new Promise(resolve => {
    const check = () => shown.includes(119) ? resolve() : setTimeout(check, 20);
    check();
  });
  return shown.filter(width => widths.includes(width));
}"""


def test_a_view_busy_decoding_skips_to_the_newest_frame(browser, site):
    _, base = site
    page = browser.new_page()
    page.goto(base + "/", wait_until="domcontentloaded")
    wait_for_frames(page, "door")
    shown = page.evaluate(NEWEST_WINS)
    # Twenty frames arrive while the first decodes: only that one and the newest are shown.
    assert shown[-1] == 119 and set(shown) <= {100, 119}, shown
    page.close()


def test_full_screen_shows_one_camera(browser, site):
    _, base = site
    page = browser.new_page()
    page.goto(base + "/", wait_until="domcontentloaded")
    page.click('[data-camera="back"] [data-action="fullscreen"]')
    page.wait_for_function("() => document.fullscreenElement?.dataset.camera === 'back'", timeout=5000, polling=100)
    page.click('[data-camera="back"] [data-action="fullscreen"]')
    page.wait_for_function("() => document.fullscreenElement === null", timeout=5000, polling=100)
    page.close()


@pytest.fixture
def detect_site():
    """A scene with a square-finding detector, one whose detector raises, and one without."""
    cameras = {"scene": SceneCamera(), "broken": SceneCamera("broken"),
               "plain": PatternCamera("plain", fps=5, width=320)}
    app = create_app({"CAMERAS": cameras, "DETECT": {"scene": "tests.detectors:find_squares",
                                                     "broken": "tests.detectors:raising"}})
    server = make_server(app, "127.0.0.1", 0, threads=16)
    threading.Thread(target=server.run, daemon=True).start()
    yield f"http://127.0.0.1:{server.effective_port}"
    shutdown(app)
    server.close()


def test_the_detect_button_shows_the_boxes_the_list_and_the_json(browser, detect_site):
    page = browser.new_page()
    page.goto(detect_site + "/", wait_until="domcontentloaded")
    assert page.query_selector('[data-camera="plain"] [data-action="detect"]') is None
    page.click('[data-camera="scene"] [data-action="detect"]')
    panel = '[data-camera="scene"] [data-field="detect-result"]'
    page.wait_for_function(f"() => {{ const img = document.querySelector('{panel} img');"
                           " return img && img.complete && img.naturalWidth > 0; }", timeout=15000, polling=100)
    assert page.eval_on_selector(f"{panel} img", "img => img.naturalWidth") == 320
    assert page.eval_on_selector(f"{panel} img", "img => img.src").split("?")[1].startswith("overlay=1&seq=")
    assert page.text_content(f'{panel} [data-field="detect-summary"]').startswith("1 found in ")
    items = page.eval_on_selector_all(f"{panel} li", "items => items.map(item => item.textContent)")
    assert len(items) == 1 and items[0].startswith("square 90% at ")
    link = page.eval_on_selector(f'{panel} [data-field="detect-json"]',
                                 "link => ({href: link.href, download: link.download})")
    assert link["href"].startswith("blob:") and re.fullmatch(r"scene-\d+\.json", link["download"])
    result = page.evaluate("url => fetch(url).then(response => response.json())", link["href"])
    assert result["camera"] == "scene" and result["detections"][0]["label"] == "square"
    assert link["download"] == f"scene-{result['seq']}.json"
    # The status line says what the detector does, from the 2 s status poll.
    page.wait_for_function("() => /find_squares: running/.test("
                           "document.querySelector('[data-camera=scene] [data-field=detection]').textContent)",
                           timeout=10000, polling=200)
    page.click(f'{panel} [data-action="close-detect"]')
    assert page.eval_on_selector(panel, "panel => panel.hidden")
    page.close()


def test_a_failing_detector_says_why_on_its_tile(browser, detect_site):
    page = browser.new_page()
    page.goto(detect_site + "/", wait_until="domcontentloaded")
    page.click('[data-camera="broken"] [data-action="detect"]')
    summary = '[data-camera="broken"] [data-field="detect-summary"]'
    page.wait_for_function(f"() => /on fire/.test(document.querySelector('{summary}').textContent)",
                           timeout=15000, polling=100)
    assert page.eval_on_selector('[data-camera="broken"] [data-field="detect-json"]', "link => link.hidden")
    page.close()


def test_the_browsers_event_source_resumes_without_duplicates(browser):
    app = create_app({"CAMERAS": {"scene": SceneCamera()}, "DETECT": {"scene": "tests.detectors:find_squares"},
                      "DETECT_FPS": 10})
    server = make_server(app, "127.0.0.1", 0, threads=16)
    threading.Thread(target=server.run, daemon=True).start()
    try:
        page = browser.new_page()
        page.goto(f"http://127.0.0.1:{server.effective_port}/static/camstream.css")
        page.evaluate("""() => {
            window.seen = []; window.opened = 0;
            const source = new EventSource('/events');
            source.onopen = () => { window.opened += 1; };
            for (const kind of ['detection', 'state', 'status'])
                source.addEventListener(kind, event => window.seen.push(Number(event.lastEventId)));
        }""")
        page.wait_for_function("() => window.seen.length >= 5", timeout=15000, polling=100)
        runtime_of(app).events.end_streams()
        page.wait_for_function("() => window.opened >= 2 && window.seen.length >= 40", timeout=20000, polling=100)
        seen = page.evaluate("window.seen")
        assert seen == list(range(seen[0], seen[0] + len(seen))), "every event once, in order, across the reconnect"
        page.close()
    finally:
        shutdown(app)
        server.close()


def test_live_boxes_follow_the_moving_square_and_can_be_turned_off(browser, detect_site):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(detect_site + "/", wait_until="domcontentloaded")
    canvas = '[data-camera="scene"] [data-field="boxes"]'
    drawn = []
    # One look at the canvas, in one step: a new drawing, its first box, and the canvas pixel on that box's
    # left edge (or null while there is no new drawing).
    look = f"""previous => {{
        const canvas = document.querySelector('{canvas}');
        if (!canvas || canvas.hidden || !canvas.dataset.seq || canvas.dataset.seq === previous) return null;
        const box = JSON.parse(canvas.dataset.boxes)[0], view = canvas.parentElement;
        const img = view.img.getBoundingClientRect(), outer = view.getBoundingClientRect();
        const scale = Math.min(img.width / 320, img.height / 240), ratio = canvas.width / outer.width;
        const x = (img.left - outer.left + (img.width - 320 * scale) / 2 + box[0] * scale) * ratio;
        const y = (img.top - outer.top + (img.height - 240 * scale) / 2 + (box[1] + box[3] / 2) * scale) * ratio;
        const pixel = canvas.getContext('2d').getImageData(Math.round(x), Math.round(y), 1, 1).data;
        return {{seq: canvas.dataset.seq, box: box, alpha: pixel[3]}};
    }}"""
    for _ in range(4):
        previous = drawn[-1]["seq"] if drawn else ""
        drawn.append(page.wait_for_function(look, arg=previous, timeout=15000, polling=50).json_value())
    assert all(entry["alpha"] > 0 for entry in drawn), f"the box's left edge is drawn on the canvas: {drawn}"
    assert all(abs(entry["box"][1] - 100) <= 2 for entry in drawn), "around the square, in the frame's pixels"
    xs = [entry["box"][0] for entry in drawn]
    assert len(set(xs)) >= 3, f"the boxes move with the square: {xs}"
    labels = page.text_content('[data-camera="scene"] [data-field="labels"]')
    assert labels.startswith("square ")
    page.click('[data-camera="scene"] [data-action="boxes"]')
    page.wait_for_function(f"() => document.querySelector('{canvas}').hidden", timeout=5000, polling=50)
    assert page.get_attribute('[data-camera="scene"] [data-action="boxes"]', "aria-pressed") == "false"
    page.close()


class HeldCamera(PatternCamera):
    """The pattern, but its first frame waits until ``release`` is set: a camera still connecting."""

    def __init__(self, name: str) -> None:
        # A long stall timeout: no "no signal" frame comes in its place while the test looks.
        super().__init__(name, fps=5, width=320, stall_timeout=60)
        self.release = threading.Event()

    def frames(self):
        self.release.wait(30)
        yield from super().frames()


def test_a_tile_shows_a_placeholder_until_its_first_picture_never_a_broken_image(browser):
    camera = HeldCamera("slow")
    app = create_app({"CAMERAS": {"slow": camera}})
    server = make_server(app, "127.0.0.1", 0, threads=16)
    threading.Thread(target=server.run, daemon=True).start()
    page = browser.new_page()
    try:
        page.goto(f"http://127.0.0.1:{server.effective_port}/", wait_until="domcontentloaded")
        view = 'camstream-view[camera="slow"]'
        page.wait_for_selector(f"{view} [data-field=placeholder]")
        assert page.inner_text(f"{view} [data-field=placeholder]") == "connecting to slow\u2026"
        # No img is shown before it has a picture: nothing for the browser to draw as broken.
        assert page.eval_on_selector_all(f"{view} img", "imgs => imgs.filter(i => i.style.display !== 'none'"
                                                        " && !i.naturalWidth).length") == 0
        camera.release.set()
        page.wait_for_function(f"() => !document.querySelector('{view} [data-field=placeholder]') &&"
                               f" document.querySelector('{view} img').naturalWidth === 320", timeout=20000)
        assert page.eval_on_selector(f"{view} img", "img => img.style.display") == ""
    finally:
        page.close()
        camera.release.set()
        shutdown(app)
        server.close()

