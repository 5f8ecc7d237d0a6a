"""Viewers beyond one box: Debian's nginx, configured by the shipped examples/nginx/camstream.conf, caches a
camera's HLS in front of camstream, so many readers cost camstream about one request per segment."""

from __future__ import annotations

import os
import re
import secrets
import shutil
import subprocess
import threading
import time
import urllib.request
from collections import Counter
from pathlib import Path

import pytest
from werkzeug.security import generate_password_hash

from tests.auth_helpers import Client, Recorder
from tests.conftest import Servers
from tests.helpers import free_port, h264_square, wait_until
from webapp import create_app

NGINX = shutil.which("nginx") or next((path for path in ("/usr/sbin/nginx",) if Path(path).exists()), None)
if NGINX is None:
    if os.environ.get("CI"):
        raise RuntimeError("nginx is missing; .ci/run should have installed it")
    pytest.skip("nginx is not installed (.ci/run installs Debian's)", allow_module_level=True)

SHIPPED = Path(__file__).resolve().parents[2] / "examples" / "nginx" / "camstream.conf"
READERS = 40
SECONDS = 8.0


def start_nginx(folder: Path, upstream_port: int) -> tuple[subprocess.Popen, int]:
    """nginx in the foreground with the shipped server config, only its port, upstream and folder changed."""
    port = free_port()
    site = SHIPPED.read_text()
    for shipped, ours in (("127.0.0.1:8000", f"127.0.0.1:{upstream_port}"), ("listen 8080", f"listen 127.0.0.1:{port}"),
                          ("/var/cache/nginx/camstream", str(folder / "cache"))):
        assert shipped in site, f"the shipped config no longer says {shipped!r}"
        site = site.replace(shipped, ours)
    (folder / "camstream.conf").write_text(site)
    temp = " ".join(f"{kind}_temp_path {folder / kind};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    (folder / "nginx.conf").write_text(
        ("user root;\n" if os.geteuid() == 0 else "")
        + f"worker_processes 2;\ndaemon off;\npid {folder / 'nginx.pid'};\nerror_log {folder / 'error.log'} warn;\n"
        f"events {{ worker_connections 1024; }}\nhttp {{\n access_log off;\n {temp}\n include {folder / 'camstream.conf'};\n}}\n")
    process = subprocess.Popen([NGINX, "-c", str(folder / "nginx.conf"), "-p", str(folder)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

    def answers() -> bool:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2).read()
            return True
        except OSError:
            return process.poll() is not None  # ended: said below

    assert wait_until(answers, 15) and process.poll() is None, process.stderr.read() if process.stderr else ""
    return process, port


def read_hls(base: str, stop: threading.Event, got: dict, errors: list) -> None:
    """A player's requests: the playlist again and again, and each segment (and init) once."""
    seen: set[str] = set()
    while not stop.is_set():
        try:
            playlist = urllib.request.urlopen(f"{base}/hls/clip/index.m3u8", timeout=10).read().decode()
            names = re.findall(r'URI="([^"]+)"', playlist) + [line for line in playlist.splitlines()
                                                               if line and not line.startswith("#")]
            for name in names:
                if name not in seen:
                    with urllib.request.urlopen(f"{base}/hls/clip/{name}", timeout=10) as response:
                        got[name] = response.read()
                        got.setdefault("_hits", []).append(response.headers.get("X-Cache-Status"))
                    seen.add(name)
        except OSError as exc:
            errors.append(repr(exc))
        stop.wait(0.5)  # a player's pace: it asks for the playlist about twice a segment


def test_nginx_caches_hls_so_forty_readers_cost_one_request_per_segment(tmp_path):
    clip = h264_square(tmp_path / "clip.mp4", (320, 180), (100, 50, 40, 30), fps=15, frames=150, keyframe_every=15)
    app = create_app({"CAMERAS": {"clip": str(clip)}})
    upstream: Counter[str] = Counter()
    inner = app.wsgi_app

    def counting(environ, start_response):
        upstream[environ["PATH_INFO"]] += 1
        return inner(environ, start_response)

    app.wsgi_app = counting
    with Servers() as servers:
        site = servers.start(app)
        folder = tmp_path / "nginx"
        folder.mkdir()
        nginx, port = start_nginx(folder, int(site.rsplit(":", 1)[1]))
        try:
            stop, results = threading.Event(), [({}, []) for _ in range(READERS)]
            readers = [threading.Thread(target=read_hls, args=(f"http://127.0.0.1:{port}", stop, got, errors))
                       for got, errors in results]
            started = time.monotonic()
            for reader in readers:
                reader.start()
            stop.wait(SECONDS)
            stop.set()
            for reader in readers:
                reader.join(30)
            elapsed = time.monotonic() - started
        finally:
            nginx.terminate()
            nginx.wait(10)
    assert all(not errors for _, errors in results), [errors[:2] for _, errors in results if errors][:3]
    segments = {name for got, _ in results for name in got if name.startswith("seg-")}
    assert len(segments) >= 3, segments
    for name in segments:  # every reader that has a segment has the same bytes
        assert len({got[name] for got, _ in results if name in got}) == 1, name
    asked = sum(len([name for name in got if name.startswith("seg-")]) for got, _ in results)
    reached = {path: count for path, count in upstream.items() if "/seg-" in path}
    assert asked >= READERS * 3 and set(reached) == {f"/hls/clip/{name}" for name in segments}
    assert max(reached.values()) == 1, f"a segment reached camstream more than once: {reached}"
    playlists = upstream["/hls/clip/index.m3u8"]
    # max-age=1: about one a second, plus the first (the readers asked ~40 times as often).
    assert playlists <= elapsed * 2 + 5, (playlists, elapsed)
    hits = [status for got, _ in results for status in got.get("_hits", [])]
    assert hits.count("HIT") > len(hits) * 0.8, Counter(hits)


def test_signing_in_through_the_shipped_config_works(tmp_path):
    """The sign-in POST comes from the page nginx serves: its Origin carries nginx's port, and camstream sees
    the same only if nginx passes the Host on as the browser sent it (``$host`` drops the port: 403)."""
    password = secrets.token_urlsafe(12)
    app = create_app({"CAMERAS": {"door": "pattern"}, "WIDTH": 160, "STORAGE": str(tmp_path / "store"),
                      "USERS": [f"nora:{generate_password_hash(password)}:viewer"]})
    with Servers() as servers:
        site = servers.start(app)
        folder = tmp_path / "nginx"
        folder.mkdir()
        nginx, port = start_nginx(folder, int(site.rsplit(":", 1)[1]))
        try:
            browser = Client(f"http://127.0.0.1:{port}", Recorder())
            assert browser.get("/api/me").status == 401
            signed_in = browser.login("nora", password)
            assert signed_in.status == 302, signed_in.body[:200]
            assert "camstream_session" in browser.cookies
            me = browser.get("/api/me")
            assert me.status == 200 and me.json()["name"] == "nora", me.body[:200]
            page = browser.get("/")
            assert page.status == 200 and b"/video_feed/door" in page.body, "the page, signed in, through nginx"
        finally:
            nginx.terminate()
            nginx.wait(10)
