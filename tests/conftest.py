from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Callable, Iterator
from typing import Self

import pytest
from flask import Flask

from camera.viewers.sender import STALL_TIMEOUT
from webapp import create_app
from webapp.app import shutdown
from webapp.runtime.registry import runtime_of
from webapp.serve.server import make_server

# Tests that start what takes seconds: a server in a subprocess, an RTSP server, a browser.
SLOW_FIXTURES = {"running", "rtsp", "browser"}
# Folders whose tests run detector worker processes (each a Python with numpy and OpenCV) or record for seconds.
SLOW_FOLDERS = {"detect", "record"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test that uses the browser is a browser test; one that starts processes or browsers is slow."""
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        if "browser" in fixtures:
            item.add_marker(pytest.mark.browser)
        if fixtures & SLOW_FIXTURES or item.path.parent.name in SLOW_FOLDERS:
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="module")
def browser():
    """Debian's chromium, headless, driven by Playwright; skipped without it (but .ci/run installs it)."""
    playwright_api = pytest.importorskip("playwright.sync_api")
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        if os.environ.get("CI"):
            raise RuntimeError("chromium is missing; .ci/run should have installed it")
        pytest.skip("no chromium on this machine")
    with playwright_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium, headless=True)
        yield launched
        launched.close()


@pytest.fixture(params=["sender", "wsgi"])
def serve(request) -> Iterator[Callable[[Flask], str]]:
    """Serve an app with a real waitress on 127.0.0.1; returns its base URL.

    Every test using it runs twice: with streams handed to the sender
    thread, and streamed through waitress's own writes.
    """
    with Servers() as servers:
        yield lambda app, **options: servers.start(app, handoff=request.param == "sender", **options)


@pytest.fixture
def serve_app() -> Iterator[Callable[[dict], str]]:
    """Serve ``create_app(config)`` on a real waitress, streams handed to the sender; returns its base URL."""
    with Servers() as servers:
        yield lambda config: servers.start(create_app(config))


class Servers:
    """Waitress servers on 127.0.0.1 that stop, with their apps' cameras and detectors, on exit."""

    def __init__(self) -> None:
        self.running: list[tuple[Flask, object]] = []

    def start(self, app: Flask, handoff: bool = True, threads: int = 32, client_timeout: float = STALL_TIMEOUT) -> str:
        app.config["SOCKET_HANDOFF"] = handoff
        runtime_of(app).sender.stall_timeout = client_timeout
        server = make_server(app, "127.0.0.1", 0, threads=threads, client_timeout=client_timeout)
        threading.Thread(target=server.run, daemon=True).start()
        self.running.append((app, server))
        return f"http://127.0.0.1:{server.effective_port}"

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        for app, server in self.running:
            shutdown(app)
            server.close()
            server.task_dispatcher.shutdown(timeout=2)
