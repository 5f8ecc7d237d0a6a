"""A camera that is down, in the page's player (Chromium): the view gives up on the video as soon as the camera's
pushed state says the camera is down (not after its video timeout), its placeholder says why at once, and a
camera never reached says "not reached", not "gone for N s" (issue 36)."""

from __future__ import annotations

import numpy as np
import pytest

from camera import jpeg
from camera.nosignal import no_signal_image
from tests.helpers import free_port
from tests.sources import CountingCamera

pytest.importorskip("playwright.sync_api")

# Every text a view's placeholder showed, in order, recorded by the page itself so that none is missed.
RECORD_PLACEHOLDERS = """
window.placeholderTexts = [];
new MutationObserver(() => {
  document.querySelectorAll('[data-field="placeholder"]').forEach(box => {
    const text = box.textContent;
    if (text && !window.placeholderTexts.includes(text)) window.placeholderTexts.push(text);
  });
}).observe(document, {subtree: true, childList: true, characterData: true});
"""

# A view of its own that would wait ten minutes for the video: only the camera's state can make it give up in time.
ADD_PATIENT_VIEW = """() => { const view = document.createElement('camstream-view'); view.id = 'patient';
  view.setAttribute('camera', 'gate'); view.setAttribute('video', ''); view.setAttribute('video-timeout', '600');
  document.body.appendChild(view); }"""

SHOWS_MJPEG = """(selector) => { const view = document.querySelector(selector); const img = view && view.querySelector('img');
  return view && view.dataset.mode !== 'video' && img && img.naturalWidth > 0 && !view.querySelector('video'); }"""


def test_a_view_of_a_camera_never_reached_gives_up_on_video_at_its_state_and_says_not_reached(serve_app, browser):
    site = serve_app({"CAMERAS": {"gate": f"rtsp://127.0.0.1:{free_port()}/live"}})
    page = browser.new_page()
    try:
        page.add_init_script(RECORD_PLACEHOLDERS)
        page.goto(site + "/")
        page.evaluate(ADD_PATIENT_VIEW)
        # The camera's MJPEG ("no signal" pictures) in place of the video, long before its 600 s timeout.
        page.wait_for_function(SHOWS_MJPEG, arg="#patient", timeout=30000)
        page.wait_for_function(SHOWS_MJPEG, arg="camstream-view[camera=gate]:not(#patient)", timeout=30000)
        assert page.eval_on_selector("#patient", "view => view.paths") == ["video", "shared"]
        texts = page.evaluate("window.placeholderTexts")
        said = [text for text in texts if text.startswith("gate: ")]
        assert said, texts
        assert all("not reached" in text and "gone for" not in text for text in said), said
        assert any("Connection refused" in text for text in said), said
    finally:
        page.close()


def test_a_view_added_after_the_camera_is_known_down_goes_to_mjpeg_without_trying_video_long(serve_app, browser):
    site = serve_app({"CAMERAS": {"gate": f"rtsp://127.0.0.1:{free_port()}/live"}})
    page = browser.new_page()
    try:
        page.goto(site + "/")
        page.wait_for_function(SHOWS_MJPEG, arg="camstream-view[camera=gate]", timeout=30000)
        page.evaluate(ADD_PATIENT_VIEW)
        page.wait_for_function(SHOWS_MJPEG, arg="#patient", timeout=30000)
        assert page.eval_on_selector("#patient", "view => view.paths") == ["video", "shared"]
    finally:
        page.close()


def test_the_no_signal_picture_of_a_camera_never_reached_says_so_instead_of_how_long_it_is_gone():
    gone = no_signal_image("gate", "Connection refused", 13, (320, 240))
    never = no_signal_image("gate", "Connection refused", 13, (320, 240), reached=False)
    assert gone.shape == never.shape == (240, 320, 3)
    assert not np.array_equal(gone, never)
    # Only the line under the title differs: the title and the reason are the same.
    rows = np.flatnonzero((gone != never).any(axis=(1, 2)))
    assert rows.size and np.array_equal(gone[: rows[0]], never[: rows[0]])
    assert np.array_equal(no_signal_image("gate", "Connection refused", 13, (320, 240), reached=True), gone)


def test_the_no_signal_frames_of_a_camera_never_reached_are_the_not_reached_picture():
    camera = CountingCamera("gate", fail_after=0, idle_timeout=5)
    try:
        with camera.subscribe() as viewer:
            frame = viewer.next_frame(10)
            assert frame is not None and not frame.live
            reason = camera.status()["last_error"]
            assert camera.status()["frames_captured"] == 0
    finally:
        camera.stop()
    picture = no_signal_image("gate", reason, 0, (frame.width, frame.height), reached=False)
    assert frame.jpeg == jpeg.encode(picture, camera.quality), "the same picture, whatever the time gone"
