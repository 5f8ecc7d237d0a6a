"""Clients that ask for a stored file and never read it hold no worker thread (webapp/serve/files.py).

Before, a range request was pushed into the socket by a waitress worker, which waited while the client did
not read: 64 such clients held every thread and the server answered nobody else.
"""

from __future__ import annotations

import hashlib
import os
import socket
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import Servers
from tests.helpers import get, get_json
from webapp import create_app
from webapp.serve.files import Followers, file_response

SIZE = 24 * 1024 * 1024  # more than the kernel's and waitress's buffers take for a client that does not read


@pytest.fixture
def site(tmp_path: Path):
    big = tmp_path / "big.mp4"
    big.write_bytes(os.urandom(SIZE))
    app = create_app({"CAMERAS": {"pattern": "pattern"}})
    app.add_url_rule("/test/big.mp4", "big", lambda: file_response(big, "video/mp4"))
    with Servers() as servers:
        yield servers.start(app, threads=4), big


def ask_and_never_read(url: str, headers: str) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=10)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.sendall(f"GET /test/big.mp4 HTTP/1.1\r\nHost: {host}\r\n{headers}\r\n".encode())
    return sock


def test_range_requests_that_are_never_read_leave_the_server_free(site):
    url, _ = site
    stalled = [ask_and_never_read(url, "Range: bytes=0-\r\n") for _ in range(12)]  # three times the threads
    try:
        status, _ = get_json(f"{url}/api/cameras")  # waits (up to its timeout) for a free worker
        assert status == 200, "the server answers others while twelve clients read nothing"
        assert get(f"{url}/test/big.mp4", "HEAD")[0] == 200
    finally:
        for sock in stalled:
            sock.close()


def test_a_range_is_exactly_its_bytes_and_a_bad_one_is_refused(site):
    url, big = site
    data = big.read_bytes()
    request = urllib.request.Request(f"{url}/test/big.mp4", headers={"Range": "bytes=1000-"})
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 206
        assert response.headers["Content-Range"] == f"bytes 1000-{SIZE - 1}/{SIZE}"
        assert hashlib.sha256(response.read()).digest() == hashlib.sha256(data[1000:]).digest()
    request = urllib.request.Request(f"{url}/test/big.mp4", headers={"Range": "bytes=-100"})
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 206 and response.read() == data[-100:]
    with urllib.request.urlopen(f"{url}/test/big.mp4", timeout=30) as response:
        etag = response.headers["ETag"]
        assert response.status == 200 and int(response.headers["Content-Length"]) == SIZE
        assert response.headers["Accept-Ranges"] == "bytes"
    request = urllib.request.Request(f"{url}/test/big.mp4", headers={"Range": f"bytes={SIZE}-"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=30)
    assert refused.value.code == 416 and refused.value.headers["Content-Range"] == f"bytes */{SIZE}"
    # A range of another version of the file (If-Range with another tag) is the whole file.
    request = urllib.request.Request(f"{url}/test/big.mp4",
                                     headers={"Range": "bytes=0-9", "If-Range": '"another"'})
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 200 and len(response.read()) == SIZE
    request = urllib.request.Request(f"{url}/test/big.mp4", headers={"Range": "bytes=0-9", "If-Range": etag})
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 206 and response.read() == data[:10]


def test_following_a_download_as_it_is_made_is_bounded_in_all_and_per_address():
    followers = Followers(limit=3, per_address=2)
    first, second = followers.take("10.0.0.1"), followers.take("10.0.0.1")
    assert first and second and followers.take("10.0.0.1") is None, "two from one address"
    third = followers.take("10.0.0.2")
    assert third and followers.take("10.0.0.3") is None, "three in all"
    first()
    first()  # given back once, however often it is called
    assert followers.taken == 2
    assert followers.take("10.0.0.3") is not None and followers.take("10.0.0.4") is None
