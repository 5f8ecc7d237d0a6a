"""A peer's events on the hub's MQTT, as a local recorder's are: a real mosquitto, a peer with a motion
detector and a hub, three processes on 127.0.0.1."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from tests.config.test_cli import Running, env
from tests.helpers import free_port, wait_until
from tests.hub.test_hub import HUB_USER, PASSWORD
from tests.web.test_mqtt import Watcher, broker  # noqa: F401 - a fixture


@pytest.mark.slow
def test_a_peers_event_starts_and_ends_are_published_on_the_hubs_mqtt(broker, tmp_path: Path) -> None:  # noqa: F811
    port = free_port()
    started: list[Running] = []
    watcher = Watcher(broker.port)
    try:
        # Peer m: a moving ball under a motion detector, its events closed every 2 s.
        started.append(Running([sys.executable, "-m", "webapp", "--camera", "yard=pattern", "--detect", "yard=motion",
                                "--record", "yard=events", "--fps", "5", "--event-max-length", "2", "--pre-capture",
                                "0", "--post-capture", "0", "--storage", str(tmp_path / "m"), "--port", str(port),
                                "--user", HUB_USER], env(), cwd=tmp_path))
        started[-1].wait_for_line(r"open http://localhost:\d+/")
        started.append(Running([sys.executable, "-m", "webapp", "--source", "pattern", "--port", "0",
                                "--storage", str(tmp_path / "hub"), f"--peer=m=http://hub:{PASSWORD}@127.0.0.1:{port}",
                                "--mqtt", f"mqtt://127.0.0.1:{broker.port}"], env(), cwd=tmp_path))
        started[-1].wait_for_line(r"open http://localhost:\d+/")
        topic = "camstream/m.yard/event"
        def published() -> list[dict]:
            return [json.loads(payload) for payload in watcher.payloads(topic)]

        # The hub may join the peer's events in the middle of one: the first whole one, start then end.
        assert wait_until(lambda: any(event["type"] == "start" for event in published()), 60), \
            "no event of the peer on the hub's MQTT"
        first = next(event for event in published() if event["type"] == "start")
        assert first["camera"] == "m.yard" and first["peer"] == "m"
        assert first["id"].startswith("m.") and first["clip"] == f"/api/events/{first['id']}/clip.mp4"
        assert wait_until(lambda: any(event["type"] == "end" and event["id"] == first["id"]
                                      for event in published()), 30), "an event's end, under the same hub id"
        assert not [message for message in watcher.messages if PASSWORD in message[1]]
    finally:
        watcher.close()
        for server in started:
            server.stop()
