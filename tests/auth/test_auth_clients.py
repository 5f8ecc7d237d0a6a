"""Signing in the way each client does: a browser (login form, CORS from another origin), OpenCV and
ffmpeg-style clients with user:password URLs, and the command line (hash-password, tokens, the refusal
to listen beyond loopback without a user)."""

from __future__ import annotations

import functools
import http.server
import logging
import os
import pty
import select
import shutil
import sys
import threading
import time
import urllib.request
from pathlib import Path

import cv2
import pytest
from werkzeug.security import check_password_hash

from tests.auth_helpers import HASHES, PASSWORDS, USERS, Client, LogCatcher, Recorder, basic
from tests.config.test_cli import env, run_cli
from tests.conftest import Servers
from tests.helpers import decode, wait_until
from webapp import create_app
from webapp.runtime.lineup import reload


@pytest.fixture
def recorder():
    found = Recorder()
    handler = LogCatcher(found)
    logging.getLogger().addHandler(handler)
    yield found
    logging.getLogger().removeHandler(handler)


@pytest.fixture
def site(tmp_path, recorder):
    app = create_app({"CAMERAS": {"door": "pattern", "yard": "pattern"}, "USERS": USERS, "WIDTH": 320,
                      "STORAGE": str(tmp_path / "data")})
    with Servers() as servers:
        yield servers.start(app), tmp_path
    assert recorder.leaks([*PASSWORDS.values(), *HASHES.values()]) == []


def test_opencv_opens_a_stream_with_the_password_in_the_url(site):
    """OpenCV's FFmpeg backend reads HTTP with FFmpeg's own client: this is what ffmpeg -i URL does too."""
    base, _ = site
    url = base.replace("http://", f"http://dora:{PASSWORDS['dora'].replace(' ', '%20')}@") + "/video_feed/door"
    capture = cv2.VideoCapture(url, cv2.CAP_FFMPEG)
    try:
        assert capture.isOpened()
        ok, frame = capture.read()
        assert ok and frame.shape[1] == 320
    finally:
        capture.release()
    refused = cv2.VideoCapture(base.replace("http://", "http://dora:wrong@") + "/video_feed/door", cv2.CAP_FFMPEG)
    assert not refused.isOpened()
    refused.release()


def test_a_client_that_answers_the_challenge(site):
    """As ffmpeg, VLC and Home Assistant do: ask without credentials, get 401 with a challenge, ask again with them."""
    base, _ = site
    passwords = urllib.request.HTTPPasswordMgrWithDefaultRealm()
    passwords.add_password(None, base, "vic", PASSWORDS["vic"])
    opener = urllib.request.build_opener(urllib.request.HTTPBasicAuthHandler(passwords))
    with opener.open(f"{base}/snapshot/yard.jpg", timeout=10) as response:
        assert decode(response.read()) is not None
    with opener.open(f"{base}/?action=stream", timeout=10) as response:
        assert response.headers["Content-Type"].startswith("multipart/x-mixed-replace")
        assert b"--" in response.read(100)


def test_hash_password_reads_stdin_and_makes_a_werkzeug_hash():
    result = run_cli("hash-password", stdin="correct horse\n")
    assert result.returncode == 0, result.stderr
    made = result.stdout.strip()
    assert made.startswith("scrypt:") and check_password_hash(made, "correct horse")
    assert "correct horse" not in result.stdout + result.stderr
    short = run_cli("hash-password", stdin="short\n")
    assert short.returncode == 2 and short.stderr == "camstream: error: a password needs at least 8 characters\n"


@pytest.mark.slow
def test_the_command_line_makes_lists_and_revokes_tokens_the_server_takes(site, recorder):
    base, folder = site
    storage = str(folder / "data")
    made = run_cli("token", "create", "door", "--label", "hall tablet", "--storage", storage,
                   CAMSTREAM_CAMERAS="door=pattern,yard=pattern")
    assert made.returncode == 0, made.stderr
    token = made.stdout.split("\n")[1].strip()
    assert token.startswith("cst_")
    viewer = Client(base, recorder)
    assert viewer.get(f"/snapshot/door.jpg?token={token}").status == 200
    assert viewer.get(f"/snapshot/yard.jpg?token={token}").status == 404
    listed = run_cli("token", "list", "--storage", storage, CAMSTREAM_CAMERAS="door=pattern,yard=pattern")
    token_id, camera, label = listed.stdout.split(None, 2)
    assert (camera, label.strip()) == ("door", "hall tablet") and token not in listed.stdout
    assert run_cli("token", "revoke", token_id, "--storage", storage,
                   CAMSTREAM_CAMERAS="door=pattern,yard=pattern").returncode == 0
    assert viewer.get(f"/snapshot/door.jpg?token={token}").status == 401
    missing = run_cli("token", "create", "attic", "--storage", storage, CAMSTREAM_CAMERAS="door=pattern")
    assert missing.returncode == 2 and "no camera named 'attic'" in missing.stderr
    assert recorder.leaks([token]) == []


@pytest.mark.parametrize("flags, code, message", [
    # The command it goes on to name is the one this camstream was run as (see test_cli.py).
    (["--host", "0.0.0.0"], 2, ("camstream: error: --host 0.0.0.0 lets anyone on the network watch, and no user is "
                                "set up: add one (--user 'NAME:HASH', the hash from ")),
    (["--host", "192.0.2.1", "--no-auth"], 0, ""),
    (["--host", "0.0.0.0", "--user", USERS[0]], 0, ""),
    (["--host", "127.0.0.1"], 0, ""),
    (["--user", "eve:not-a-hash"], 2, "camstream: error: user 'eve' is not NAME:HASH[:ROLE[:CAMERA,...]]"),
    (["--user", f"eve:{HASHES['vic']}:boss"], 2, "camstream: error: user 'eve': role must be admin or viewer"),
    (["--user", f"eve:{HASHES['vic']}:viewer:attic"], 2,
     "camstream: error: user 'eve' may see camera 'attic', but there is no camera of that name"),
    (["--cors-origin", "*"], 2, "camstream: error: CORS_ORIGINS: '*' is not an origin"),
])
def test_what_the_command_line_refuses(flags, code, message):
    result = run_cli("--source", "pattern", "--check-config", *flags)
    assert result.returncode == code, result.stderr
    assert result.stderr.startswith(message) and result.stderr.count("\n") <= 1
    for secret in HASHES.values():
        assert secret not in result.stderr + result.stdout
        assert secret.split("$")[-1] not in result.stderr + result.stdout


def test_users_from_the_config_file_and_a_reload_that_changes_them(tmp_path, recorder):
    config = tmp_path / "camstream.toml"
    table = '[cameras.door]\nsource = "pattern"\n\n[users.{name}]\npassword_hash = "{hash}"\nrole = "viewer"\n'
    config.write_text(table.format(name="vic", hash=HASHES["vic"]))
    app = create_app({"CONFIG": str(config), "STORAGE": str(tmp_path / "data")})
    with Servers() as servers:
        base = servers.start(app)
        vic = Client(base, recorder, basic("vic", PASSWORDS["vic"]))
        assert vic.get("/api/me").json()["role"] == "viewer"
        browser = Client(base, recorder)
        assert browser.login("vic", PASSWORDS["vic"]).status == 302
        config.write_text(table.format(name="dora", hash=HASHES["dora"]))
        reload(app)
        assert vic.get("/api/me").status == 401
        assert browser.get("/api/me").status == 401  # a removed user's session ends
        assert Client(base, recorder, basic("dora", PASSWORDS["dora"])).get("/api/me").status == 200
    assert recorder.leaks([*PASSWORDS.values(), *HASHES.values()]) == []


# -- a browser ---------------------------------------------------------------

playwright_api = pytest.importorskip("playwright.sync_api")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


FRONTEND = """<!doctype html><title>a dashboard elsewhere</title><script>
async function read(base) {
  const result = {};
  try {
    const cameras = await fetch(base + "/api/cameras", {credentials: "include", headers: {"Cache-Control": "no-cache"}});
    result.cameras = (await cameras.json()).cameras.map(camera => camera.name);
    const snapshot = await fetch(base + "/snapshot/door.jpg", {credentials: "include"});
    result.snapshot = [snapshot.status, snapshot.headers.get("Content-Type"), (await snapshot.blob()).size];
    result.event = await new Promise((resolve, reject) => {
      const source = new EventSource(base + "/events", {withCredentials: true});
      source.addEventListener("status", event => { source.close(); resolve(JSON.parse(event.data).name); });
      source.onerror = () => { source.close(); reject(new Error("events refused")); };
    });
  } catch (error) {
    result.error = String(error);
  }
  return result;
}
</script>"""


@pytest.fixture
def frontends(tmp_path):
    """Two static sites on other ports of 127.0.0.1: other origins, the same site for cookies."""
    (tmp_path / "index.html").write_text(FRONTEND)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    servers = [http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler) for _ in range(2)]
    for server in servers:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    yield [f"http://127.0.0.1:{server.server_address[1]}" for server in servers]
    for server in servers:
        server.shutdown()
        server.server_close()


def test_a_frontend_from_an_allowed_origin_reads_with_credentials_and_others_cannot(browser, frontends, tmp_path):
    allowed, refused = frontends
    app = create_app({"CAMERAS": {"door": "pattern", "yard": "pattern"}, "USERS": USERS, "WIDTH": 160,
                      "STORAGE": str(tmp_path / "data"), "CORS_ORIGINS": [allowed]})
    with Servers() as servers:
        base = servers.start(app)
        context = browser.new_context()
        page = context.new_page()
        page.goto(f"{base}/")
        assert page.url.startswith(f"{base}/login")
        page.fill('input[name="username"]', "dora")
        page.fill('input[name="password"]', PASSWORDS["dora"])
        page.click('button[type="submit"]')
        page.wait_for_selector("camstream-view")
        assert page.locator(".account").inner_text().startswith("dora (viewer)")
        page.goto(f"{allowed}/index.html")
        result = page.evaluate("base => read(base)", base)
        assert result == {"cameras": ["door"], "snapshot": [200, "image/jpeg", result["snapshot"][2]], "event": "door"}
        assert result["snapshot"][2] > 1000
        page.goto(f"{refused}/index.html")
        result = page.evaluate("base => read(base)", base)
        assert "Failed to fetch" in result["error"] and "cameras" not in result
        context.close()
        # The preflights themselves.
        asking = Client(base, Recorder())
        answer = asking.request("OPTIONS", "/api/cameras", Origin=allowed, Access_Control_Request_Method="GET",
                                Access_Control_Request_Headers="cache-control")
        assert answer.status == 204 and answer.headers["Access-Control-Allow-Origin"] == allowed
        assert answer.headers["Access-Control-Allow-Credentials"] == "true"
        assert "GET" in answer.headers["Access-Control-Allow-Methods"]
        for origin, method in ((refused, "GET"), (allowed, "DELETE")):
            answer = asking.request("OPTIONS", "/api/events/1", Origin=origin, Access_Control_Request_Method=method)
            assert answer.status == 403 and "Access-Control-Allow-Methods" not in answer.headers


def test_the_page_signs_in_detects_with_its_csrf_token_and_signs_out(browser, tmp_path):
    config = tmp_path / "camstream.toml"
    text = ('[cameras.door]\nsource = "pattern"\nfps = {fps}\ndetect = "motion"\n\n'
            f'[users.vic]\npassword_hash = "{HASHES["vic"]}"\n')
    config.write_text(text.format(fps=10))
    app = create_app({"CONFIG": str(config), "STORAGE": str(tmp_path / "data")})
    with Servers() as servers:
        base = servers.start(app)
        context = browser.new_context()
        page = context.new_page()
        page.goto(f"{base}/history")
        page.fill('input[name="username"]', "vic")
        page.fill('input[name="password"]', PASSWORDS["vic"])
        page.click('button[type="submit"]')
        page.wait_for_url(f"{base}/history")
        page.goto(f"{base}/")
        assert wait_until(lambda: page.eval_on_selector("camstream-view", "view => view.frames || 0") >= 3, 30)
        cookie = next(cookie for cookie in context.cookies() if cookie["name"] == "camstream_session")
        assert cookie["httpOnly"] and cookie["sameSite"] == "Lax" and not cookie["secure"]
        with page.expect_response(lambda response: response.url.endswith("/detect")) as answer:
            page.click('[data-action="detect"]')
        assert answer.value.status == 200
        page.click(".account button")
        page.wait_for_url(f"{base}/login")
        assert page.evaluate("fetch('/api/me').then(response => response.status)") == 401

        # A page left open when its session ends goes to the login form once its stream has to reconnect.
        page.goto(f"{base}/login")
        page.fill('input[name="username"]', "vic")
        page.fill('input[name="password"]', PASSWORDS["vic"])
        page.click('button[type="submit"]')
        page.wait_for_url(f"{base}/")
        assert wait_until(lambda: page.eval_on_selector("camstream-view", "view => view.frames || 0") >= 3, 30)
        context.clear_cookies()
        config.write_text(text.format(fps=5))
        reload(app)  # door changed: its stream ends, and the page's reconnect finds no session
        page.wait_for_url(f"{base}/login?next=/", timeout=30_000)
        context.close()
    assert Path(tmp_path / "data" / "secret_key").stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize("key", [b"\x03", b"\x04"], ids=["ctrl-c", "ctrl-d"])
def test_giving_up_at_the_password_prompt_is_one_line_not_a_traceback(key):
    pid, terminal = pty.fork()
    if pid == 0:  # the child: hash-password on a terminal of its own
        os.execve(sys.executable, [sys.executable, "-m", "webapp", "hash-password"], env())
    output = b""

    def read_until(wanted: bytes | None) -> None:
        nonlocal output
        deadline = time.monotonic() + 30
        while (wanted is None or wanted not in output) and time.monotonic() < deadline:
            if select.select([terminal], [], [], 1)[0]:
                try:
                    chunk = os.read(terminal, 1024)
                except OSError:  # the child has gone: the terminal's other end is closed
                    return
                if not chunk:
                    return
                output += chunk

    try:
        read_until(b"Password: ")
        os.write(terminal, key)
        read_until(None)
    finally:
        os.close(terminal)
        _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 2, output
    assert b"Traceback" not in output and b"camstream: error: no password given; nothing was made" in output
