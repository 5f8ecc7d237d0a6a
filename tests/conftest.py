from __future__ import annotations

import compileall
import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Self

import pytest
from flask import Flask

from camera.viewers.sender import STALL_TIMEOUT
from webapp import create_app
from webapp.app import shutdown
from webapp.runtime.registry import runtime_of
from webapp.serve.server import make_server

ROOT = Path(__file__).resolve().parent.parent

# Tests that start what takes seconds: a server in a subprocess, an RTSP server, a browser.
SLOW_FIXTURES = {"running", "rtsp", "browser"}
# Folders whose tests run detector worker processes (each a Python with numpy and OpenCV) or record for seconds.
SLOW_FOLDERS = {"detect", "record"}


# Where the test workers list the modules whose tests share a module-scoped fixture, for the scheduler below.
GROUPS_VARIABLE = "TESTS_MODULE_GROUPS_FILE"


def uses_a_module_fixture(item: pytest.Item) -> bool:
    """Whether ``item`` uses a module-scoped fixture of the suite's own (a browser, servers, a broker)."""
    info = getattr(item, "_fixtureinfo", None)
    for name in getattr(item, "fixturenames", ()):
        definitions = info.name2fixturedefs.get(name) if info else None
        if definitions and definitions[-1].scope in ("module", "package") and definitions[-1].baseid:
            return True
    return False


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """A test that uses the browser is a browser test; one that starts processes or browsers is slow."""
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        if "browser" in fixtures:
            item.add_marker(pytest.mark.browser)
        if fixtures & SLOW_FIXTURES or item.path.parent.name in SLOW_FOLDERS:
            item.add_marker(pytest.mark.slow)
    # Slow tests first, and among them the modules that go to one worker whole (the scheduler below), since
    # one of those handed out last would be the run's tail; quick ones last, to fill the workers' gaps at the
    # end. The same order on every worker, as xdist requires; a module's tests keep their own order.
    grouped = {item.nodeid.split("::")[0] for item in items if uses_a_module_fixture(item)}
    items.sort(key=lambda item: (item.get_closest_marker("slow") is None, item.nodeid.split("::")[0] not in grouped))
    groups = os.environ.get(GROUPS_VARIABLE)
    if groups and hasattr(config, "workerinput"):
        modules = sorted(grouped)
        mine = f"{groups}.{config.workerinput['workerid']}"
        Path(mine).write_text("".join(f"{module}\n" for module in modules))
        os.replace(mine, groups)


class ModuleGroups:
    """``--dist loadgroup`` (setup.cfg), done here: the tests of a module that share a module-scoped fixture
    (a browser, the hub's three servers, a broker, a signed-in site) go to one worker together, so it starts
    once, not once on every worker that runs one of them (and again whenever that worker's next test is from
    another module). The other tests are handed out one by one, as ``--dist load`` does. xdist's own
    xdist_group marks cannot do it under pytest 9.2, which no longer reads a test's id from ``_nodeid``.
    """

    def __init__(self, path: str) -> None:
        self.path = path

    @pytest.hookimpl(tryfirst=True)
    def pytest_xdist_make_scheduler(self, config: pytest.Config, log: object) -> object:
        if config.getoption("dist") != "loadgroup":
            return None
        from xdist.scheduler import LoadScopeScheduling

        path = self.path

        class Scheduling(LoadScopeScheduling):
            grouped: set[str] | None = None

            def _split_scope(self, nodeid: str) -> str:
                if self.grouped is None:  # the workers wrote it while collecting, before this is asked
                    self.grouped = set(Path(path).read_text().split()) if Path(path).exists() else set()
                module = nodeid.split("::")[0]
                return module if module in self.grouped else nodeid

        return Scheduling(config, log)


def compile_checkout() -> None:
    """Byte-compile the checkout's packages once. The suite starts well over a hundred Pythons that import
    camstream from the checkout (PYTHONPATH); where PYTHONDONTWRITEBYTECODE is set, as on CI, nothing is
    cached, and each of them would compile every module again (0.15 s of CPU each)."""
    for package in ("camera", "webapp", "bench", "tests"):
        compileall.compile_dir(ROOT / package, quiet=1)


def pytest_configure(config: pytest.Config) -> None:
    if hasattr(config, "workerinput"):
        return
    compile_checkout()
    if not config.pluginmanager.hasplugin("xdist"):
        return
    folder = tempfile.mkdtemp(prefix="camstream-groups-")
    os.environ[GROUPS_VARIABLE] = str(Path(folder) / "modules")  # the workers inherit it
    config.pluginmanager.register(ModuleGroups(os.environ[GROUPS_VARIABLE]), "camstream-module-groups")
    config.add_cleanup(lambda: shutil.rmtree(folder, ignore_errors=True))


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
