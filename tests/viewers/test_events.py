"""/events: detection results, camera states and status pushed as Server-Sent Events, resumable."""

import http.client
import json
from urllib.parse import urlsplit

import pytest

import camera.viewers.sse
from camera import PatternCamera
from tests.helpers import get
from tests.sources import SceneCamera
from webapp import create_app


class EventReader:
    """An SSE client over a plain HTTP connection: yields (id, event, data) as they come."""

    def __init__(self, url: str, last_event_id: int | None = None, timeout: float = 15.0) -> None:
        parts = urlsplit(url)
        self.connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
        headers = {"Accept": "text/event-stream"}
        if last_event_id is not None:
            headers["Last-Event-ID"] = str(last_event_id)
        self.connection.request("GET", parts.path + (f"?{parts.query}" if parts.query else ""), headers=headers)
        self.response = self.connection.getresponse()
        self.comments: list[str] = []

    def events(self):
        fields: dict[str, str] = {}
        while True:
            line = self.response.readline()
            if not line:
                return
            line = line.decode().rstrip("\n")
            if not line:
                if "data" in fields:
                    yield int(fields["id"]), fields["event"], json.loads(fields["data"])
                fields = {}
            elif line.startswith(":"):
                self.comments.append(line)
            else:
                name, _, value = line.partition(": ")
                fields[name] = value

    def read_until(self, predicate, limit: int = 500) -> list[tuple[int, str, dict]]:
        seen = []
        for event in self.events():
            seen.append(event)
            if predicate(event) or len(seen) >= limit:
                return seen
        return seen

    def close(self) -> None:
        self.response.close()
        self.connection.close()


@pytest.fixture
def site(serve):
    app = create_app({"CAMERAS": {"scene": SceneCamera(), "plain": PatternCamera("plain", fps=10, width=320)},
                      "DETECT": {"scene": "tests.detectors:find_squares"}, "DETECT_FPS": 10})
    return app, serve(app)


def test_detection_results_state_changes_and_status_arrive_as_events(site):
    _, base = site
    reader = EventReader(f"{base}/events")
    try:
        assert reader.response.status == 200
        assert reader.response.headers["Content-Type"].startswith("text/event-stream")
        seen = reader.read_until(lambda event: event[1] == "detection")
        _, _, result = seen[-1]
        assert result["event"] == "detection"
        assert result["camera"] == "scene" and result["detections"][0]["label"] == "square"
        assert {"seq", "timestamp", "width", "height", "inference_ms"} <= set(result)
        # Waking the plain camera: its states, in order, then its status.
        assert get(f"{base}/snapshot/plain.jpg")[0] == 200
        seen = reader.read_until(lambda event: event[1] == "state" and event[2]["state"] == "streaming"
                                 and event[2]["camera"] == "plain")
        states = [data["state"] for _, kind, data in seen if kind == "state" and data["camera"] == "plain"]
        assert states[-2:] == ["starting", "streaming"]
        seen = reader.read_until(lambda event: event[1] == "status" and event[2]["name"] == "plain")
        assert seen[-1][2]["detection"] is None and seen[-1][2]["state"] == "streaming"
        ids = [number for number, _, _ in seen]
        assert ids == sorted(set(ids)), "numbered in order, never twice"
    finally:
        reader.close()


def test_a_reader_that_comes_back_resumes_without_duplicates_or_gaps(site):
    _, base = site
    reader = EventReader(f"{base}/events")
    first = [number for number, _, _ in reader.read_until(lambda event: False, limit=10)]
    reader.close()
    again = EventReader(f"{base}/events", last_event_id=first[-1])
    try:
        second = [number for number, _, _ in again.read_until(lambda event: False, limit=10)]
    finally:
        again.close()
    assert first == list(range(first[0], first[0] + 10))
    assert second == list(range(first[-1] + 1, first[-1] + 11)), "what came meanwhile, then on, each once"


def test_events_of_chosen_cameras_only(site):
    _, base = site
    reader = EventReader(f"{base}/events?cameras=plain")
    try:
        assert get(f"{base}/snapshot/plain.jpg")[0] == 200
        seen = reader.read_until(lambda event: event[1] == "status")
    finally:
        reader.close()
    assert {data.get("camera", data.get("name")) for _, _, data in seen} == {"plain"}


def test_a_quiet_stream_sends_keepalive_comments(site, monkeypatch):
    monkeypatch.setattr(camera.viewers.sse, "KEEPALIVE_SECONDS", 0.3)
    _, base = site
    reader = EventReader(f"{base}/events?cameras=plain")
    try:
        # Status events come every 2 s; between them, keepalive comments.
        reader.read_until(lambda event: bool(reader.comments), limit=10)
        assert ": keepalive" in reader.comments
    finally:
        reader.close()


def test_bad_event_requests_are_json_errors(site):
    _, base = site
    status, headers, body = get(f"{base}/events?cameras=nope")
    assert status == 404 and headers["Content-Type"] == "application/json" and b"no camera named 'nope'" in body
    connection = http.client.HTTPConnection(urlsplit(base).hostname, urlsplit(base).port, timeout=10)
    connection.request("GET", "/events", headers={"Last-Event-ID": "yesterday"})
    response = connection.getresponse()
    assert response.status == 400 and b"Last-Event-ID must be an event number" in response.read()
    connection.close()
