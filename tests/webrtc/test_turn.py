"""Watching from outside the LAN through a TURN server (coturn), shown with network namespaces of the test's own.

Three namespaces, made without root (tests/webrtc/netns.py), joined by two veth pairs:

    home 10.77.1.2 ---- 10.77.1.1  internet  10.77.2.1 ---- 10.77.2.2 outside
    camstream, the RTSP camera     coturn at 10.77.0.1    the viewer
                                   (forwards nothing)

camstream (``python -m webapp``) and GStreamer's RTSP camera run in ``home``; coturn in ``internet`` on an
address of its own, 10.77.0.1 (its "public" one), which ``home`` and ``outside`` each have a route to and
which it relays from; nothing else has a route beyond its own link, so camstream and the viewer cannot send
each other a packet (the test checks: ENETUNREACH both ways). Both are given the TURN server, and their
media can only go through a relayed candidate on coturn, which the tests assert from ICE's chosen pair and
from coturn's own count of the packets it relayed, with the frames the viewer decodes:

- aiortc as a WHEP client, its HTTP connection opened in ``home`` before it moves to ``outside`` for its media
  (a phone reaching camstream's HTTP through a reverse proxy, say);
- Debian's Chromium run in ``outside``, reaching camstream's HTTP through a small reverse proxy on its own
  loopback, playing with static/camstream-webrtc.js and the ICE servers from ``/api/webrtc``.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.config.test_cli import Running, env
from tests.helpers import wait_until
from tests.passthrough.test_rtsp import SERVER, SYSTEM_PYTHON, VIDEO
from tests.webrtc.netns import Namespace, namespaces_available
from tests.webrtc.test_whep import CHROMIUM_ARGS, open_page, play, wait_decoding

ROOT = Path(__file__).resolve().parents[2]
TURNSERVER = shutil.which("turnserver") or "/usr/bin/turnserver"

_missing = None if os.path.exists(TURNSERVER) else "no coturn (Debian's coturn: turnserver) on this machine"
_missing = _missing or namespaces_available()
if _missing:
    if os.environ.get("CI"):
        raise RuntimeError(f"{_missing}; .ci/run should have made this possible")
    pytest.skip(_missing, allow_module_level=True)

pytestmark = pytest.mark.slow

HOME, TURN_HOME, TURN, TURN_OUTSIDE, OUTSIDE = "10.77.1.2", "10.77.1.1", "10.77.0.1", "10.77.2.1", "10.77.2.2"
TURN_USER, TURN_SECRET = "camstream", "a-long-random-secret"
RELAY_PORTS = range(49160, 49201)
FRAMES = 30


class Network:
    """The three namespaces, wired; closed together."""

    def __init__(self) -> None:
        self.namespaces: list[Namespace] = []
        try:
            self.home = self._made(Namespace())
            self.internet = self._made(Namespace(self.home))
            self.outside = self._made(Namespace(self.home))
            self.home.link(self.internet, "home0", f"{HOME}/24", "inet0", f"{TURN_HOME}/24")
            self.outside.link(self.internet, "view0", f"{OUTSIDE}/24", "inet1", f"{TURN_OUTSIDE}/24")
            # coturn's one public address, which both sides have a route to, and nothing else beyond their link.
            self.internet.run("ip", "addr", "add", f"{TURN}/32", "dev", "lo")
            self.home.run("ip", "route", "add", f"{TURN}/32", "via", TURN_HOME)
            self.outside.run("ip", "route", "add", f"{TURN}/32", "via", TURN_OUTSIDE)
            # A router that does not route: what reaches the internet namespace stays there, for coturn to relay.
            self.internet.run("sh", "-c", "echo 0 > /proc/sys/net/ipv4/ip_forward")
        except BaseException:
            self.close()
            raise

    def _made(self, namespace: Namespace) -> Namespace:
        self.namespaces.append(namespace)
        return namespace

    def close(self) -> None:
        for namespace in reversed(self.namespaces):
            namespace.close()


class Coturn:
    """coturn's turnserver in the internet namespace, long-term credentials, its log lines collected."""

    def __init__(self, network: Network, workdir: Path) -> None:
        self.process = network.internet.popen(
            [TURNSERVER, "-n", f"--listening-ip={TURN}", f"--relay-ip={TURN}", "--listening-port=3478",
             f"--min-port={RELAY_PORTS.start}", f"--max-port={RELAY_PORTS.stop - 1}", "--lt-cred-mech",
             f"--user={TURN_USER}:{TURN_SECRET}", "--realm=camstream.test", "--fingerprint", "--no-tls",
             "--no-dtls", "--no-cli", "--no-rfc5780", "--verbose", "--log-file=stdout", "--simple-log",
             f"--pidfile={workdir / 'turnserver.pid'}", f"--userdb={workdir / 'turndb'}"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.lines: list[str] = []
        self._changed = threading.Condition()
        threading.Thread(target=self._collect, daemon=True).start()
        if self.wait_for(lambda line: f"UDP listener opened on: {TURN}:3478" in line) is None:
            self.stop()
            raise RuntimeError(f"coturn did not listen: {self.lines[-20:]}")

    def _collect(self) -> None:
        for line in self.process.stdout or ():
            with self._changed:
                self.lines.append(line)
                self._changed.notify_all()

    def wait_for(self, matches: Callable[[str], object], timeout: float = 30) -> str | None:
        """The first log line that matches, once there is one; None if none came within ``timeout``."""
        with self._changed:
            if not self._changed.wait_for(lambda: any(matches(line) for line in self.lines), timeout):
                return None
            return next(line for line in self.lines if matches(line))

    def peer_usage(self) -> dict[str, list[int]]:
        """Per client address, the packets its allocations relayed from their peers to it and from it to their
        peers, as coturn logs them when an allocation ends (when its client closes it, by a refresh to 0)."""
        with self._changed:
            lines = list(self.lines)
        clients = {match[1]: match[2] for match in (re.search(r"session (\d+): closed .* remote ([0-9.]+):", line)
                                                    for line in lines) if match}
        usage: dict[str, list[int]] = {}
        for line in lines:
            match = re.search(r"session (\d+): peer usage: .*rp=(\d+), rb=\d+, sp=(\d+)", line)
            if match and match[1] in clients:
                counts = usage.setdefault(clients[match[1]], [0, 0])
                counts[0] += int(match[2])
                counts[1] += int(match[3])
        return usage

    def carried(self, viewer: str, camstream: str, packets: int, timeout: float = 30) -> bool:
        """Whether coturn relayed ``packets`` from camstream to the viewer, through the viewer's allocations
        or camstream's (once their ends are logged)."""
        def enough() -> bool:
            usage = self.peer_usage()
            return max(usage.get(viewer, [0, 0])[0], usage.get(camstream, [0, 0])[1]) >= packets
        with self._changed:
            return self._changed.wait_for(enough, timeout)

    def stop(self) -> None:
        self.process.kill()
        self.process.wait(10)


@pytest.fixture
def network() -> Iterator[Network]:
    wired = Network()
    yield wired
    wired.close()


@pytest.fixture
def coturn(network: Network, tmp_path: Path) -> Iterator[Coturn]:
    server = Coturn(network, tmp_path)
    yield server
    server.stop()


@pytest.fixture
def camstream(network: Network, coturn: Coturn) -> Iterator[str]:
    """camstream in the home namespace with GStreamer's RTSP camera (H.264) on that namespace's loopback,
    given the TURN server; its HTTP port (on the home namespace's 127.0.0.1)."""
    camera = network.home.popen([SYSTEM_PYTHON, str(SERVER), "0", f"/live={VIDEO}"],
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = camera.stdout.readline() if camera.stdout else ""
    server = None
    try:
        assert line.startswith("ready"), f"the RTSP server did not start: {line!r}"
        turn = f"turn:{TURN_USER}:{TURN_SECRET}@{TURN}:3478?transport=udp"
        server = Running([*network.home.enter(), sys.executable, "-m", "webapp", "--no-auth", "--host", "127.0.0.1",
                          "--port", "0", "--camera", f"door=rtsp://127.0.0.1:{int(line.split()[1])}/live",
                          "--webrtc-ice-server", turn], env(), cwd=ROOT)
        yield server.wait_for_line(r"open http://localhost:(\d+)/").group(1)
    finally:
        if server is not None:
            server.stop()
        camera.kill()
        camera.wait(10)


def assert_relayed(pair: dict) -> None:
    """The pair ICE chose (``local``: the viewer's side) goes through a relayed candidate on coturn: the
    viewer's own, or camstream's (each side has one, and either works where both reach coturn)."""
    assert pair is not None, pair
    relayed = [(kind, address) for kind, address in ((pair["local"], pair["local_address"]),
                                                     (pair["remote"], pair["remote_address"])) if kind == "relay"]
    assert relayed and all(host == TURN and port in RELAY_PORTS for _, (host, port) in relayed), pair
    assert pair["local_address"][0] in (OUTSIDE, TURN) and pair["remote_address"][0] in (HOME, TURN), pair


def assert_coturn_carried(coturn: Coturn, frames: int) -> None:
    """coturn's own word: the viewer's allocation relayed a packet per frame from camstream to it, or
    camstream's from it to the viewer (the same packets where both sides' relays are used)."""
    assert coturn.carried(OUTSIDE, HOME, frames), (coturn.peer_usage(), coturn.lines[-30:])


def test_a_viewer_outside_the_lan_plays_a_camera_over_webrtc_relayed_by_coturn(network, coturn, camstream):
    ice = json.dumps({"urls": f"turn:{TURN}:3478?transport=udp", "username": TURN_USER, "credential": TURN_SECRET})
    viewer = subprocess.run(
        [*network.home.enter(), sys.executable, "-m", "tests.webrtc.netns", "viewer", camstream, "/whep/door",
         network.outside.path, ice, str(FRAMES), HOME, TURN, OUTSIDE],
        capture_output=True, text=True, cwd=ROOT, env=env(), timeout=180, check=False)
    assert viewer.returncode == 0, viewer.stderr[-3000:]
    seen = json.loads(viewer.stdout.strip().splitlines()[-1])

    # Where the viewer's media is, camstream's address (its host candidate) cannot be reached at all, only
    # coturn's; nor can camstream reach the viewer's.
    assert seen["reach"] == {"home": {HOME: "ok", TURN: "ok", OUTSIDE: "ENETUNREACH"},
                             "media": {HOME: "ENETUNREACH", TURN: "ok", OUTSIDE: "ok"}}, seen
    # The picture as a player sees it: frames aiortc decoded, at the camera's width.
    assert seen["frames"] == FRAMES and seen["width"] == 320, seen
    assert_relayed(seen["pair"])
    assert "relay" in seen["local_candidates"], seen
    # camstream saw its viewer connected while it played, and the session ended with the DELETE.
    assert seen["status"]["viewers"] == 1 and seen["status"]["connected"] == 1, seen
    assert seen["status"]["frames_sent"] >= FRAMES, seen
    assert seen["deleted"] == 200 and seen["status_after"]["viewers"] == 0, seen
    assert_coturn_carried(coturn, FRAMES)


SELECTED_PAIR = """async (index) => {
  const pc = window.stops[index].peerConnection();
  const report = await pc.getStats();
  let pair = null;
  report.forEach((s) => { if (s.type === 'transport' && s.selectedCandidatePairId) pair = report.get(s.selectedCandidatePairId); });
  if (!pair) return null;
  const local = report.get(pair.localCandidateId), remote = report.get(pair.remoteCandidateId);
  return {local: local.candidateType, local_address: [local.address, local.port],
          remote: remote.candidateType, remote_address: [remote.address, remote.port]};
}"""


@pytest.fixture
def outside_chromium(network: Network, tmp_path: Path):
    """Debian's chromium, run in the outside namespace (its Playwright driver talks to it over pipes)."""
    playwright_api = pytest.importorskip("playwright.sync_api")
    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    if executable is None:
        if os.environ.get("CI"):
            raise RuntimeError("chromium is missing; .ci/run should have installed it")
        pytest.skip("no chromium on this machine")
    wrapper = tmp_path / "chromium-outside"
    wrapper.write_text(f'#!/bin/sh\nexec {shlex.join([*network.outside.enter(), executable])} "$@"\n')
    wrapper.chmod(0o755)
    with playwright_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(wrapper), headless=True, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.mark.browser
def test_chromium_outside_the_lan_plays_a_camera_over_webrtc_relayed_by_coturn(network, coturn, camstream,
                                                                              outside_chromium):
    # The browser reaches camstream's HTTP only through a reverse proxy on its own loopback; its page gets
    # the TURN server from camstream (/api/webrtc), as a phone's would.
    proxy = network.home.popen([sys.executable, "-m", "tests.webrtc.netns", "proxy", camstream,
                                network.outside.path], stdout=subprocess.PIPE, text=True, cwd=ROOT, env=env())
    try:
        line = proxy.stdout.readline() if proxy.stdout else ""
        assert line.startswith("ready"), line
        page = open_page(outside_chromium, f"http://127.0.0.1:{int(line.split()[1])}")
        play(page, "door")
        found = wait_decoding(page, frames=FRAMES, timeout=60)
        assert found["codecs"] == ["video/H264"] and found["width"] == 320, found
        assert_relayed(page.evaluate(SELECTED_PAIR, 0))
        page.evaluate("window.stops[0]()")  # DELETE, and the peer connection closed
        assert wait_until(lambda: page.evaluate(
            "fetch('/api/webrtc/door').then((r) => r.json())")["viewers"] == 0, 30)
        page.close()
    finally:
        proxy.kill()
        proxy.wait(10)
    assert_coturn_carried(coturn, FRAMES)
