"""Revoking a sign-in ends it on the server, and cuts the streams it opened: a logout (a copied cookie too), a
revoked token (by the API or the CLI), a removed user, a new password, a reload that removes a user."""

from __future__ import annotations

import json

import pytest

from tests.auth_helpers import HASHES, PASSWORDS, USERS, Client, Recorder, basic
from tests.config.test_cli import run_cli
from tests.config.test_config_reload import Watching
from tests.conftest import Servers
from tests.helpers import wait_until
from webapp import create_app
from webapp.auth import auth_of
from webapp.runtime.registry import runtime_of


@pytest.fixture(params=["sender", "wsgi"])
def site(request, tmp_path):
    """A server with users, its streams written by the sender thread or through waitress."""
    app = create_app({"CAMERAS": {"door": "pattern"}, "USERS": USERS, "STORAGE": str(tmp_path), "FPS": 10,
                      "WIDTH": 160})
    with Servers() as servers:
        yield app, servers.start(app, handoff=request.param == "sender"), tmp_path


def signed_in(base: str, name: str) -> tuple[Client, str]:
    """A browser signed in as ``name``, and its page's CSRF token."""
    browser = Client(base, Recorder())
    assert browser.login(name, PASSWORDS[name]).status == 302
    page = browser.get("/").body.decode()
    return browser, page.split('name="csrf-token" content="')[1].split('"')[0]


def cookie_header(client: Client) -> dict[str, str]:
    return {"Cookie": "; ".join(f"{key}={value}" for key, value in client.cookies.items())}


def test_logging_out_ends_the_session_a_copied_cookie_and_its_streams(site):
    _, base, _ = site
    browser, csrf = signed_in(base, "vic")
    copied = Client(base, Recorder())
    copied.cookies = dict(browser.cookies)
    own_stream = Watching(f"{base}/video_feed/door", cookie_header(browser))
    copied_stream = Watching(f"{base}/video_feed/door", cookie_header(copied))
    other, _ = signed_in(base, "ada")
    bystander = Watching(f"{base}/video_feed/door", cookie_header(other))
    assert own_stream.first.wait(20) and copied_stream.first.wait(20) and bystander.first.wait(20)

    out = browser.request("POST", "/logout", f"csrf_token={csrf}".encode(),
                          Content_Type="application/x-www-form-urlencoded", Origin=base)
    assert out.status == 302
    assert own_stream.ended.wait(20) and copied_stream.ended.wait(20), "both streams of the session are cut"
    assert copied.get("/api/me").status == 401, "the copied cookie opens nothing any more"
    assert copied.get("/snapshot.jpg").status == 401
    assert not bystander.ended.is_set() and other.get("/api/me").status == 200, "another user's session goes on"
    frames = bystander.frames
    assert wait_until(lambda: bystander.frames > frames + 3, 20)
    bystander.reader.close()


def test_a_revoked_token_cuts_its_streams_whether_by_the_api_or_by_the_cli(site):
    _, base, storage = site
    admin = Client(base, Recorder(), basic("ada", PASSWORDS["ada"]))
    made = [admin.request("POST", "/api/tokens", b'{"camera": "door"}', Content_Type="application/json").json()
            for _ in range(2)]
    streams = [Watching(f"{base}/video_feed/door?token={token['token']}") for token in made]
    assert all(stream.first.wait(20) for stream in streams)

    assert admin.request("DELETE", f"/api/tokens/{made[0]['id']}").status == 200
    assert streams[0].ended.wait(20)
    assert not streams[1].ended.is_set()
    revoked = run_cli("token", "revoke", made[1]["id"], "--storage", str(storage))
    assert revoked.returncode == 0, revoked.stderr
    assert streams[1].ended.wait(20), "a token revoked by the CLI (another process) cuts the stream too"
    assert Client(base, Recorder()).get(f"/snapshot.jpg?token={made[1]['token']}").status == 401


def test_removing_a_user_or_changing_a_password_ends_sessions_and_cuts_streams(site):
    app, base, _ = site
    vic_browser, _ = signed_in(base, "vic")
    dora_browser, _ = signed_in(base, "dora")
    vic_basic = Watching(f"{base}/video_feed/door", {"Authorization": basic("vic", PASSWORDS["vic"])})
    vic_session = Watching(f"{base}/video_feed/door", cookie_header(vic_browser))
    dora_session = Watching(f"{base}/video_feed/door", cookie_header(dora_browser))
    ada = Watching(f"{base}/video_feed/door", {"Authorization": basic("ada", PASSWORDS["ada"])})
    assert all(stream.first.wait(20) for stream in (vic_basic, vic_session, dora_session, ada))

    # A reload: vic removed, dora with a new password, ada as she was.
    new_dora = HASHES["vic"]  # some other valid hash: vic's password now opens dora's account
    auth_of(app).update({"USERS": [USERS[0], f"dora:{new_dora}:viewer:door"], "NO_AUTH": False}, {}, ["door"])
    for stream in (vic_basic, vic_session, dora_session):
        assert stream.ended.wait(20)
    assert vic_browser.get("/api/me").status == 401 and dora_browser.get("/api/me").status == 401
    assert not ada.ended.is_set()
    assert Client(base, Recorder(), basic("dora", PASSWORDS["vic"])).get("/api/me").status == 200
    ada.reader.close()
    assert wait_until(lambda: runtime_of(app).slots.used == 0, 20)
    assert auth_of(app).streams.count == 0, "every stream's watch is gone with it"


def test_sessions_are_kept_on_the_server_across_a_restart_and_never_in_clear(tmp_path):
    config = {"CAMERAS": {"door": "pattern"}, "USERS": USERS, "STORAGE": str(tmp_path)}
    with Servers() as servers:
        browser, _ = signed_in(servers.start(create_app(config)), "vic")
    stored = (tmp_path / "sessions.json").read_text()
    session_id = json.loads(stored)[0][0]
    assert len(session_id) == 64 and "vic" in stored
    with Servers() as servers:
        again = Client(servers.start(create_app(config)), Recorder())
        again.cookies = dict(browser.cookies)
        assert again.get("/api/me").json()["name"] == "vic", "a restart keeps everyone signed in"
