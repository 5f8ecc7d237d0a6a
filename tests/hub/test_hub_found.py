"""Finding boxes over mDNS (webapp/runtime/mdns.py): camstreams on 127.0.0.1 announce themselves on loopback
only, and a hub's admin is shown the boxes found that are not its peers yet, with how to add them.

Other camstreams on this machine may announce on loopback too: every check names the ports of its own.
"""

from __future__ import annotations

import base64
import json
import sys
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from flask import Flask

from tests.auth_helpers import generate_password_hash
from tests.config.test_cli import Running, env
from tests.conftest import Servers
from tests.helpers import wait_until
from webapp import create_app
from webapp.config.values import NAME_PATTERN
from webapp.runtime import mdns
from webapp.runtime.mdns import Found, suggested_name

pytest.importorskip("zeroconf")

# Found within a second on loopback; this much when two developers' tests share two cores.
WAIT = 30


class Announcing(Servers):
    """Servers whose apps' announcements end with them (webapp/app.py's shutdown may not end them yet)."""

    def __exit__(self, *exc_info: object) -> None:
        for app, _ in self.running:
            mdns.stop(app)
        super().__exit__(*exc_info)


def served(servers: Servers, config: dict) -> tuple[Flask, str]:
    """An app served on 127.0.0.1 and announcing itself, as webapp/cli/serve.py does once it listens."""
    # A storage of its own: the default is ./camstream-data, where a signed-in server keeps its secret key.
    app = create_app({"SOURCE": "pattern", "STORAGE": tempfile.mkdtemp(prefix="camstream-found-"), **config})
    url = servers.start(app)
    mdns.start(app, "127.0.0.1", int(url.rsplit(":", 1)[1]))
    return app, url


def found(url: str, headers: dict[str, str] | None = None) -> dict:
    request = urllib.request.Request(url + "/api/boxes/found", headers=headers or {})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def ports_found(url: str) -> set[int]:
    return {int(box["url"].rsplit(":", 1)[1].rstrip("/")) for box in found(url)["boxes"]}


@pytest.mark.slow
def test_boxes_on_loopback_find_each_other_and_the_hub_lists_those_not_added(browser) -> None:
    with Announcing() as servers:
        _, peer_url = served(servers, {})
        _, other_url = served(servers, {})
        hub, hub_url = served(servers, {"PEERS": f"a={peer_url}"})
        peer_port, other_port, hub_port = (int(url.rsplit(":", 1)[1]) for url in (peer_url, other_url, hub_url))
        # The other box sees both (it has no peers); the hub lists only the one it has not added.
        assert wait_until(lambda: {peer_port, hub_port} <= ports_found(other_url), WAIT)
        assert wait_until(lambda: other_port in ports_found(hub_url), WAIT)
        listed = found(hub_url)
        assert listed["announcing"] is True
        assert peer_port not in ports_found(hub_url) and hub_port not in ports_found(hub_url)
        box = next(box for box in listed["boxes"] if box["url"] == f"http://127.0.0.1:{other_port}/")
        assert NAME_PATTERN.fullmatch(box["peer"]) and box["version"]
        assert box["flag"] == f"--peer {box['peer']}=http://127.0.0.1:{other_port}/"
        assert box["table"].startswith(f'[peers.{box["peer"]}]\nurl = "http://127.0.0.1:{other_port}/"')
        # The hub's page shows it to its admin (everyone is one on an open server), with the line that adds it.
        page = browser.new_page()
        try:
            page.goto(hub_url + "/")
            item = page.wait_for_selector(f'#boxes-found li[data-box="http://127.0.0.1:{other_port}/"]', timeout=30000)
            assert box["flag"] in item.inner_text()
            assert page.query_selector(f'#boxes-found li[data-box="http://127.0.0.1:{peer_port}/"]') is None
        finally:
            page.close()
        # A box that stops says goodbye: it leaves the list.
        other = next(app for app, _ in servers.running if app is not hub and mdns.EXTENSION in app.extensions
                     and app.extensions[mdns.EXTENSION].port == other_port)
        mdns.stop(other)
        assert wait_until(lambda: other_port not in ports_found(hub_url), WAIT)


@pytest.mark.slow
def test_only_an_admin_sees_the_boxes_found() -> None:
    password = "viewer-pw-1"
    users = [f"ann:{generate_password_hash(password)}:viewer", f"root:{generate_password_hash(password)}:admin"]
    with Announcing() as servers:
        _, url = served(servers, {"USERS": users})
        viewer = {"Authorization": "Basic " + base64.b64encode(f"ann:{password}".encode()).decode()}
        admin = {"Authorization": "Basic " + base64.b64encode(f"root:{password}".encode()).decode()}
        with pytest.raises(urllib.error.HTTPError) as refused:
            found(url, viewer)
        assert refused.value.code == 403 and "error" in json.loads(refused.value.read())
        assert found(url, admin)["announcing"] is True


def test_mdns_off_announces_nothing_and_lists_nothing() -> None:
    with Announcing() as servers:
        app, url = served(servers, {"MDNS": False})
        assert mdns.EXTENSION not in app.extensions
        assert found(url) == {"announcing": False, "boxes": []}


@pytest.mark.parametrize("name, expected", [("garden-pi", "garden-pi"), ("Pi 4 (door)", "Pi-4-door"),
                                            ("box.local", "box"), ("ÿÿ", "box"), ("x" * 90, "x" * 64)])
def test_a_found_boxs_name_becomes_a_peer_name(name: str, expected: str) -> None:
    assert suggested_name(name) == expected and NAME_PATTERN.fullmatch(suggested_name(name))


def test_a_found_box_on_ipv6_has_a_bracketed_url() -> None:
    assert Found("x", "x", "fe80::1", 8000, "/", "0.1").url == "http://[fe80::1]:8000/"


@pytest.mark.slow
def test_two_camstream_processes_find_each_other_and_one_off_is_not_found(tmp_path: Path) -> None:
    started = [Running([sys.executable, "-m", "webapp", "--source", "pattern", "--port", "0", *more], env(),
                       cwd=tmp_path) for more in ([], [], ["--no-mdns"])]
    try:
        urls = ["http://127.0.0.1:" + server.wait_for_line(r"open http://localhost:(\d+)/").group(1)
                for server in started]
        ports = [int(url.rsplit(":", 1)[1]) for url in urls]
        assert wait_until(lambda: ports[1] in ports_found(urls[0]) and ports[0] in ports_found(urls[1]), WAIT)
        assert ports[2] not in ports_found(urls[0]) and found(urls[2]) == {"announcing": False, "boxes": []}
        started[1].stop()  # a clean stop says goodbye
        assert wait_until(lambda: ports[1] not in ports_found(urls[0]), WAIT)
    finally:
        for server in started:
            server.stop()
