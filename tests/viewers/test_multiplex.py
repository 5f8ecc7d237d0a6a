"""Several cameras on one connection: /streams, for the page's shared worker."""

import http.client
from urllib.parse import urlsplit

from camera import PatternCamera
from tests.helpers import decode, get_json, wait_until
from webapp import create_app
from webapp.runtime.registry import runtime_of


def tagged_parts(url: str, count: int) -> list[tuple[str, bytes]]:
    """Read ``count`` parts of a multiplexed stream as (camera, JPEG) pairs."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    connection.request("GET", f"{parts.path}?{parts.query}")
    response = connection.getresponse()
    assert response.status == 200 and response.headers["Content-Type"].startswith("multipart/x-mixed-replace")
    received = []
    try:
        assert response.readline() == b"--frame\r\n"
        while len(received) < count:
            headers = {}
            while (line := response.readline()) != b"\r\n":
                name, _, value = line.decode("ascii").partition(":")
                headers[name.strip().lower()] = value.strip()
            jpeg = response.read(int(headers["content-length"]))
            assert response.readline() == b"\r\n" and response.readline() == b"--frame\r\n"
            received.append((headers["x-camera"], jpeg))
    finally:
        response.close()
        connection.close()
    return received


def test_one_connection_carries_every_camera_asked_for(serve):
    cameras = {name: PatternCamera(name, fps=15, width=width)
               for name, width in (("front", 320), ("back", 160), ("side", 240))}
    app = create_app({"CAMERAS": cameras})
    base = serve(app)
    parts = tagged_parts(f"{base}/streams?cameras=front,back", 20)
    names = [name for name, _ in parts]
    assert set(names) == {"front", "back"}, "only the cameras asked for"
    assert min(names.count("front"), names.count("back")) >= 5, "the cameras take turns"
    for name, jpeg in parts:
        assert decode(jpeg).shape[1] == {"front": 320, "back": 160}[name]
    assert not cameras["side"].running
    everything = {name for name, _ in tagged_parts(f"{base}/streams", 30)}
    assert everything == {"front", "back", "side"}
    assert wait_until(lambda: runtime_of(app).slots.used == 0, 2), "one slot per connection, released"


def test_unknown_cameras_and_bad_values_are_refused_as_json(serve):
    base = serve(create_app({"CAMERAS": {"front": PatternCamera("front")}}))
    status, body = get_json(f"{base}/streams?cameras=front,nope")
    assert status == 404 and body["error"] == "no camera named 'nope'"
    status, body = get_json(f"{base}/streams?fps=-3")
    assert status == 400 and "fps" in body["error"]
