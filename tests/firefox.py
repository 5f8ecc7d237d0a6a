"""Debian's Firefox ESR, headless, driven over Marionette (marionette-driver from PyPI): a fixture like ``browser``.

Firefox plays H.264 and AAC through the system's libavcodec
(``media.ffmpeg.enabled``), so the page's player is tested in a second
engine. Firefox runs in a profile of its own with everything that would
reach the network at start (updates, telemetry, the OpenH264 download)
turned off: tests need no download. Skipped without ``firefox-esr`` or
marionette-driver, except in CI, where both must be there.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import free_port, wait_until

try:
    from marionette_driver.marionette import Marionette
except ImportError:  # skipped below, unless in CI
    Marionette = None

PREFS = {
    "media.ffmpeg.enabled": True,  # H.264 and AAC through Debian's libavcodec
    "media.autoplay.default": 0,  # a muted video starts by itself, as in a visited tab; sound needs a click
    "media.autoplay.blocking_policy": 0,
    "media.gmp-manager.updateEnabled": False,  # no OpenH264 download
    "media.gmp-gmpopenh264.autoupdate": False,
    "browser.shell.checkDefaultBrowser": False,
    "browser.startup.homepage_override.mstone": "ignore",
    "browser.startup.page": 0,
    "browser.aboutwelcome.enabled": False,
    "startup.homepage_welcome_url": "about:blank",
    "app.update.enabled": False,
    "app.update.auto": False,
    "app.normandy.enabled": False,
    "extensions.update.enabled": False,
    "browser.search.update": False,
    "browser.safebrowsing.malware.enabled": False,
    "browser.safebrowsing.phishing.enabled": False,
    "browser.safebrowsing.downloads.enabled": False,
    "datareporting.policy.dataSubmissionEnabled": False,
    "datareporting.healthreport.uploadEnabled": False,
    "toolkit.telemetry.reportingpolicy.firstRun": False,
    "toolkit.telemetry.enabled": False,
    "network.captive-portal-service.enabled": False,
    "network.connectivity-service.enabled": False,
    "network.dns.disablePrefetch": True,
    "network.prefetch-next": False,
    "remote.prefs.recommended": True,
}


def firefox_executable() -> str | None:
    return shutil.which("firefox-esr") or shutil.which("firefox")


def write_profile(directory: Path, marionette_port: int) -> None:
    """A fresh profile whose Marionette listens on ``marionette_port``."""
    prefs = {**PREFS, "marionette.port": marionette_port}
    (directory / "prefs.js").write_text(
        "".join(f"user_pref({_js(name)}, {_js(value)});\n" for name, value in prefs.items()))


def _js(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


@contextlib.contextmanager
def marionette_session(executable: str) -> Iterator[Marionette]:
    """A headless Firefox of its own profile (a free Marionette port), and a Marionette session with it."""
    with tempfile.TemporaryDirectory(prefix="camstream-firefox-") as profile:
        port = free_port()
        write_profile(Path(profile), port)
        process = subprocess.Popen(
            [executable, "--headless", "--marionette", "--no-remote", "--profile", profile],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            env={**os.environ, "MOZ_HEADLESS": "1", "MOZ_CRASHREPORTER_DISABLE": "1"})
        try:
            if not wait_until(lambda: _listening(port) or process.poll() is not None, 60, 0.2) or process.poll():
                raise RuntimeError(f"firefox did not start Marionette on port {port}")
            client = Marionette(host="127.0.0.1", port=port)
            client.start_session()
            try:
                yield client
            finally:
                client.delete_session()
        finally:
            process.terminate()
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)


@pytest.fixture(scope="module")
def firefox() -> Iterator[Marionette]:
    """A Marionette session with a headless Firefox ESR of its own; closed after the module."""
    executable = firefox_executable()
    if executable is None or Marionette is None:
        missing = "firefox-esr" if executable is None else "marionette-driver (the test extra)"
        if os.environ.get("CI"):
            raise RuntimeError(f"{missing} is missing; .ci/run should have installed it")
        pytest.skip(f"no {missing} on this machine")
    with marionette_session(executable) as client:
        yield client
