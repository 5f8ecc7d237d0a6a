"""A camera that was never reached says so on its tile, with the reason, as soon as its first attempt fails."""

import threading

import pytest

from tests.helpers import free_port
from webapp import create_app
from webapp.app import shutdown
from webapp.serve.server import make_server

pytestmark = pytest.mark.slow

# Every text the tile's state label has shown, in order (recorded by the page itself, so none is missed).
RECORD_LABELS = """
window.labelsShown = [];
new MutationObserver(() => {
  const label = document.querySelector('[data-camera="door"] [data-field="state"]');
  const text = label && label.textContent;
  if (text && window.labelsShown[window.labelsShown.length - 1] !== text) window.labelsShown.push(text);
}).observe(document, {subtree: true, childList: true, characterData: true});
"""


def test_a_camera_never_reached_is_unreachable_with_its_reason_on_the_tile(browser):
    app = create_app({"CAMERAS": {"door": f"rtsp://127.0.0.1:{free_port()}/cam"}})
    server = make_server(app, "127.0.0.1", 0, threads=16)
    threading.Thread(target=server.run, daemon=True).start()
    page = browser.new_page()
    try:
        page.add_init_script(RECORD_LABELS)
        page.goto(f"http://127.0.0.1:{server.effective_port}/", wait_until="domcontentloaded")
        # The label's class stays the camera's state (the page's colours); its text names what happened.
        page.wait_for_selector('[data-camera="door"] .state.reconnecting', timeout=20000)
        page.wait_for_function("() => document.querySelector('[data-camera=\"door\"] [data-field=\"error\"]')"
                               ".textContent.includes('Connection refused')", timeout=20000)
        assert page.text_content('[data-camera="door"] [data-field="state"]') == "unreachable"
        assert "could not open rtsp://127.0.0.1:" in page.text_content('[data-camera="door"] [data-field="error"]')
        labels = page.evaluate("window.labelsShown")
        assert "reconnecting" not in labels and "streaming" not in labels, labels
        assert labels[-1] == "unreachable", labels
    finally:
        page.close()
        shutdown(app)
        server.close()
