"""The events page in a real browser: an event's clip plays in Chromium's <video>, a day's timeline plays a
recording, and a camera's tile says when its recording is paused and why."""

import shutil
import time

import pytest

from tests.conftest import Servers
from tests.helpers import get_json, wait_until
from tests.sources import SceneCamera
from webapp import create_app

pytestmark = pytest.mark.slow


@pytest.fixture
def site(tmp_path):
    scene = SceneCamera("scene", rate=15)
    scene.moving.clear()
    yard = SceneCamera("yard", rate=10)
    app = create_app({"CAMERAS": {"scene": scene, "yard": yard}, "DETECT": {"scene": "motion"},
                      "DETECT_FPS": 10, "RECORD": {"scene": "events", "yard": "continuous"},
                      "STORAGE": str(tmp_path / "store"), "MIN_FREE": 0, "SEGMENT_SECONDS": 1,
                      "EVENT_GAP": 1.0, "PRE_CAPTURE": 1.0, "POST_CAPTURE": 0.5})
    with Servers() as servers:
        yield servers.start(app), scene, tmp_path / "store"


def make_event(url: str, scene: SceneCamera) -> dict:
    assert wait_until(lambda: get_json(f"{url}/api/cameras/scene")[1]["detection"]["results"] >= 10, 20)
    scene.moving.set()
    assert wait_until(lambda: get_json(f"{url}/api/events")[1]["events"], 10)
    time.sleep(1.0)  # the event's length
    scene.moving.clear()
    assert wait_until(lambda: get_json(f"{url}/api/events")[1]["events"][0]["end"] is not None, 15)
    return get_json(f"{url}/api/events")[1]["events"][0]


# The <video>'s duration, and whether the frame it shows has the red square, read off a canvas.
VIDEO_STATE = """video => {
  if (video.readyState < 2) return null;
  const canvas = document.createElement("canvas");
  canvas.width = video.videoWidth; canvas.height = video.videoHeight;
  const context = canvas.getContext("2d");
  context.drawImage(video, 0, 0);
  const pixels = context.getImageData(0, 0, canvas.width, canvas.height).data;
  let red = 0;
  for (let i = 0; i < pixels.length; i += 4) if (pixels[i] > 180 && pixels[i + 1] < 80 && pixels[i + 2] < 80) red++;
  return {duration: video.duration, width: video.videoWidth, red: red, error: video.error && video.error.code};
}"""


def test_an_events_clip_plays_in_the_browser(browser, site):
    url, scene, _ = site
    event = make_event(url, scene)
    page = browser.new_page()
    page.goto(f"{url}/", wait_until="domcontentloaded")
    page.click('[data-camera="scene"] [data-action="events"]')
    page.wait_for_selector(f'[data-event="{event["id"]}"]')
    assert "motion" in page.inner_text(f'[data-event="{event["id"]}"] .labels')
    assert page.eval_on_selector(f'[data-event="{event["id"]}"] img', "img => img.complete && img.naturalWidth") == 320
    # What the player says while the clip is made, seen by an observer rather than by a look at a moment.
    page.evaluate("""() => { window.said = [];
        new MutationObserver(() => { const p = document.querySelector('[data-field=preparing]');
          if (!p.hidden) window.said.push(p.textContent); })
        .observe(document.querySelector('[data-field=preparing]'), {attributes: true, childList: true,
                                                                    characterData: true, subtree: true}); }""")
    page.click(f'[data-event="{event["id"]}"] [data-action="play"]')
    page.wait_for_function(f"() => ({VIDEO_STATE})(document.querySelector('video')) !== null", timeout=20000)
    page.wait_for_function("() => document.querySelector('[data-field=preparing]').hidden", timeout=20000)
    said = page.evaluate("() => window.said")
    # (JavaScript's Math.round: halves go up, where Python's round goes to even.)
    length = int(event["clip_end"] - event["clip_start"] + 0.5)
    assert said and said[0].startswith(f"preparing the clip of {length} s"), said
    state = page.eval_on_selector("video", VIDEO_STATE)
    clip_length = event["clip_end"] - event["clip_start"]
    assert state["error"] is None and state["width"] == 320
    assert state["duration"] == pytest.approx(clip_length, abs=1.0)
    assert state["red"] > 500, "a decoded frame shows the red square"
    # The label filter lists what was seen.
    assert "motion" in page.eval_on_selector('[data-field="label"]', "s => [...s.options].map(o => o.value)")
    page.close()


def test_the_timeline_plays_a_continuous_recording_from_where_it_is_clicked(browser, site):
    url, _, _ = site
    assert wait_until(lambda: len(get_json(f"{url}/api/recordings?camera=yard")[1]["recordings"]) >= 3, 20)
    page = browser.new_page()
    page.goto(f"{url}/history?camera=yard", wait_until="domcontentloaded")
    page.wait_for_selector('[data-timeline="yard"] .bar span')
    # The recording is the last few seconds of the day: click at the right end of the bar.
    bar = page.query_selector('[data-timeline="yard"] .bar').bounding_box()
    page.mouse.click(bar["x"] + bar["width"] - 1, bar["y"] + bar["height"] / 2)
    page.wait_for_function("() => { const img = document.querySelector('.player img');"
                           " return !img.hidden && img.complete && img.naturalWidth === 320; }", timeout=20000)
    assert "/playback/yard?start=" in page.eval_on_selector(".player img", "img => img.src")
    # Seconds of recording stay visible however far out the timeline is zoomed, and its ticks follow the zoom.
    for zoom, ticks in (("hour", 7), ("week", 8), ("day", 5)):
        page.select_option('[data-field="zoom"]', zoom)
        page.wait_for_selector(f'[data-timeline="yard"][data-zoom="{zoom}"] .bar span')
        widths = page.eval_on_selector_all('[data-timeline="yard"] .bar span:not(.event)',
                                           "spans => spans.map(span => span.getBoundingClientRect().width)")
        assert widths and min(widths) >= 3, (zoom, widths)
        assert len(page.query_selector_all('[data-timeline="yard"] .ticks span')) == ticks
    page.close()


def test_an_event_card_keeps_its_actions_on_one_line_on_a_phone(browser, site):
    url, scene, _ = site
    event = make_event(url, scene)
    page = browser.new_page(viewport={"width": 400, "height": 800})
    page.goto(f"{url}/history", wait_until="domcontentloaded")
    card = f'[data-event="{event["id"]}"]'
    page.wait_for_selector(f"{card} [data-action=play]")
    tops = page.eval_on_selector_all(f"{card} .card-actions > *", "nodes => nodes.map(n => n.getBoundingClientRect().top)")
    assert len(tops) >= 2 and max(tops) - min(tops) < 4, f"play and download on one line: {tops}"
    page.close()


def test_a_paused_recording_shows_its_reason_on_the_tile_and_recovers(browser, site):
    url, _, store = site
    assert wait_until(lambda: get_json(f"{url}/api/recordings?camera=yard")[1]["recordings"], 20)
    page = browser.new_page()
    page.goto(f"{url}/", wait_until="domcontentloaded")
    tile = '[data-camera="yard"] [data-field="recording"]'
    assert page.inner_text(tile) == "continuous recording"
    # The camera's folder replaced by a file: the next segment cannot be made.
    folder = store / "recordings" / "yard"
    shutil.rmtree(folder)
    folder.write_bytes(b"in the way")
    page.wait_for_function(f"() => document.querySelector('{tile}').textContent.includes('paused')", timeout=20000)
    assert "recording paused: Not a directory" in page.inner_text(tile)
    folder.unlink()
    page.wait_for_function(f"() => document.querySelector('{tile}').textContent === 'continuous recording'",
                           timeout=20000)
    page.close()
