"""Who may watch, over real HTTP: every endpoint for every kind of requester, sessions, CSRF, lockout, hosts.

ada is an admin, vic a viewer of every camera, dora a viewer of ``door``
only; tokens are made through the API for ``door`` and ``yard``. Every
answer and log line of these tests is searched for the passwords, hashes
and tokens they used.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from urllib.parse import quote, urlencode

import pytest
import websocket

from tests.auth_helpers import HASHES, PASSWORDS, USERS, Client, LogCatcher, Recorder, basic
from tests.conftest import Servers
from tests.helpers import decode, wait_until
from webapp import create_app
from webapp.auth.state import auth_of

ROLES = ("anonymous", "wrong", "ada", "vic", "dora", "token_door", "token_yard")


@pytest.fixture(scope="module")
def recorder() -> Iterator[Recorder]:
    found = Recorder()
    handler = LogCatcher(found)
    logging.getLogger().addHandler(handler)
    previous = logging.getLogger().level
    logging.getLogger().setLevel(logging.DEBUG)
    yield found
    logging.getLogger().removeHandler(handler)
    logging.getLogger().setLevel(previous)


@pytest.fixture(scope="module")
def site(tmp_path_factory, recorder) -> Iterator[dict]:
    storage = tmp_path_factory.mktemp("auth")
    app = create_app({"CAMERAS": {"door": "pattern", "yard": "pattern"}, "USERS": USERS, "WIDTH": 160,
                      "DETECT": {"door": "motion", "yard": "motion"}, "RECORD": {"yard": "continuous"},
                      "STORAGE": str(storage), "MIN_FREE": 0, "LOGIN_ATTEMPTS": 1000})
    with Servers() as servers:
        base = servers.start(app)
        admin = Client(base, recorder, basic("ada", PASSWORDS["ada"]))
        # The one answer that shows a token, by design: not searched for leaks.
        maker = Client(base, Recorder(), basic("ada", PASSWORDS["ada"]))
        tokens = {}
        for camera in ("door", "yard"):
            answer = maker.request("POST", "/api/tokens", json.dumps({"camera": camera, "label": "wall"}).encode(),
                                   Content_Type="application/json")
            assert answer.status == 201, answer.body
            tokens[camera] = answer.json()["token"]
        # The test pattern moves: yard, recorded, soon has an event.
        assert wait_until(lambda: admin.get("/api/events?camera=yard").json()["events"], 30)
        event = admin.get("/api/events?camera=yard").json()["events"][-1]["id"]
        yield {"base": base, "app": app, "tokens": tokens, "storage": storage, "event": event}


@pytest.fixture(scope="module", autouse=True)
def nothing_secret_leaks(recorder, site):
    """After every test of the module: no password, hash or token in any answer or log line."""
    yield
    secrets = [*PASSWORDS.values(), *HASHES.values(), *site["tokens"].values()]
    assert recorder.leaks(secrets) == []
    # What was searched: log lines and answers both.
    assert any("INFO camstream" in text for text in recorder.texts)
    assert any(text.startswith('{') for text in recorder.texts)


def client(site, recorder, role: str) -> Client:
    authorization = {"wrong": basic("ada", "not the password"), "ada": basic("ada", PASSWORDS["ada"]),
                     "vic": basic("vic", PASSWORDS["vic"]), "dora": basic("dora", PASSWORDS["dora"])}.get(role)
    return Client(site["base"], recorder, authorization)


def path_for(site, role: str, path: str) -> str:
    if role.startswith("token_"):
        token = site["tokens"][role.removeprefix("token_")]
        return path + ("&" if "?" in path else "?") + "token=" + token
    return path


# What each requester gets. A: anonymous and a wrong password get 401 everywhere but where noted.
P, U, F, N, R = 200, 401, 403, 404, 302
MATRIX = [
    # method, path,                             anonymous wrong ada  vic  dora token_door token_yard
    ("GET", "/",                                 R,  U,  P,  P,  P,  F,  F),
    ("GET", "/video_feed/door",                  U,  U,  P,  P,  P,  P,  N),
    ("GET", "/video_feed/yard",                  U,  U,  P,  P,  N,  N,  P),
    ("GET", "/video_feed/yard?overlay=1",        U,  U,  P,  P,  N,  N,  P),
    ("GET", "/snapshot/yard.jpg",                U,  U,  P,  P,  N,  N,  P),
    ("GET", "/snapshot/door.jpg",                U,  U,  P,  P,  P,  P,  N),
    ("GET", "/streams?cameras=door,yard",        U,  U,  P,  P,  N,  N,  N),
    ("GET", "/?action=snapshot&camera=yard",     U,  U,  P,  P,  N,  N,  P),
    ("GET", "/?action=stream_1",                 U,  U,  P,  P,  N,  N,  N),
    ("GET", "/webcam/?action=snapshot",          U,  U,  P,  P,  P,  P,  P),
    ("GET", "/stream?camera=yard",               U,  U,  P,  P,  N,  N,  P),
    ("GET", "/snapshot?camera=door",             U,  U,  P,  P,  P,  P,  N),
    ("GET", "/state",                            U,  U,  P,  P,  P,  F,  F),
    ("GET", "/events?cameras=yard",              U,  U,  P,  P,  N,  N,  P),
    # A pattern camera passes no video through: whoever may see it learns that (404), nobody else anything.
    ("GET", "/mse/yard",                         U,  U,  N,  N,  N,  N,  N),
    ("GET", "/hls/yard/index.m3u8",              U,  U,  N,  N,  N,  N,  N),
    ("GET", "/api/cameras",                      U,  U,  P,  P,  P,  F,  F),
    ("GET", "/api/cameras/yard",                 U,  U,  P,  P,  N,  F,  F),
    ("GET", "/api/cameras/yard/detections",      U,  U,  P,  P,  N,  F,  F),
    ("POST", "/api/cameras/yard/detect",         U,  U,  P,  P,  N,  F,  F),
    ("POST", "/api/cameras/door/detect",         U,  U,  P,  P,  P,  F,  F),
    ("GET", "/history",                          R,  U,  P,  P,  P,  F,  F),
    ("GET", "/api/events",                       U,  U,  P,  P,  P,  F,  F),
    ("GET", "/api/events/{event}",               U,  U,  P,  P,  N,  F,  F),
    ("GET", "/api/events/{event}/snapshot.jpg",  U,  U,  P,  P,  N,  F,  F),
    ("DELETE", "/api/events/999999",             U,  U,  N,  F,  F,  F,  F),
    ("GET", "/api/recordings",                   U,  U,  P,  P,  P,  F,  F),
    ("GET", "/api/recordings?camera=yard",       U,  U,  P,  P,  N,  F,  F),
    ("GET", "/metrics",                          U,  U,  P,  F,  F,  F,  F),
    ("GET", "/api/tokens",                       U,  U,  P,  F,  F,  F,  F),
    ("GET", "/api/me",                           U,  U,  P,  P,  P,  F,  F),
    # Open to all: wrong credentials there are no credentials (but still count towards lockout).
    ("GET", "/healthz",                          P,  P,  P,  P,  P,  P,  P),
    ("GET", "/login",                            P,  P,  P,  P,  P,  P,  P),
]


@pytest.mark.parametrize("method, path, expected", [(row[0], row[1], row[2:]) for row in MATRIX],
                         ids=[f"{row[0]} {row[1]}" for row in MATRIX])
def test_every_endpoint_for_every_requester(site, recorder, method, path, expected):
    for role, status in zip(ROLES, expected, strict=True):
        answer = client(site, recorder, role).request(method, path_for(site, role, path.format(event=site["event"])))
        assert answer.status == status, (role, answer.status, answer.body[:200])
        if answer.status >= 400:
            assert answer.headers["Content-Type"] == "application/json", (role, path)
        if answer.status == U:
            # Programs get the challenge they answer with Basic.
            assert answer.headers["WWW-Authenticate"] == 'Basic realm="camstream", charset="UTF-8"'
        if answer.status == R:
            assert answer.headers["Location"].startswith("/login?next=")


def test_a_limited_viewer_sees_her_cameras_only(site, recorder):
    dora = client(site, recorder, "dora")
    assert [camera["name"] for camera in dora.get("/api/cameras").json()["cameras"]] == ["door"]
    page = dora.get("/").body.decode()
    assert 'data-camera="door"' in page and 'data-camera="yard"' not in page and "dora (viewer)" in page
    assert dora.get("/api/me").json() == {"name": "dora", "role": "viewer", "via": "basic", "cameras": ["door"]}
    # The first camera for her is hers.
    assert dora.get("/?action=snapshot").headers["Content-Type"] == "image/jpeg"
    ada = client(site, recorder, "ada")
    assert [camera["name"] for camera in ada.get("/api/cameras").json()["cameras"]] == ["door", "yard"]


def test_healthz_says_only_ok_and_counts_to_strangers(site, recorder):
    anonymous = client(site, recorder, "anonymous").get("/healthz").json()
    assert set(anonymous) == {"status", "cameras", "streaming"} and anonymous["status"] == "ok"
    assert anonymous["cameras"] == 2
    assert "streams" in client(site, recorder, "vic").get("/healthz").json()


@pytest.mark.parametrize("next_path, location", [
    ("/history?camera=door", "/history?camera=door"),
    ("/\t/evil.com", "/"), ("/\n/evil.com", "/"), ("/\r\nSet-Cookie: x=1", "/"), ("\t//evil.com", "/"),
    ("/\\evil.com", "/"), ("//evil.com", "/"), ("https://evil.com/", "/"), ("/\x7f/evil.com", "/"),
])
def test_after_signing_in_only_a_path_of_this_server(site, recorder, next_path, location):
    answer = Client(site["base"], recorder).login("vic", PASSWORDS["vic"], next_path)
    assert answer.status == 302 and answer.headers["Location"] == location
    form = Client(site["base"], recorder).get("/login?next=" + quote(next_path, safe=""))
    assert form.status == 200, "never a 500 for a query value"


def test_a_session_from_the_login_form(site, recorder):
    browser = Client(site["base"], recorder)
    answer = browser.get("/history?camera=door", Accept="text/html")
    assert answer.status == 302 and answer.headers["Location"] == "/login?next=/history?camera%3Ddoor"
    form = browser.get("/login?next=/history?camera%3Ddoor")
    assert form.status == 200 and b'name="password"' in form.body
    # The same answer, whether the user exists or not.
    wrong_user = browser.login("nobody", "whatever password")
    wrong_password = browser.login("vic", "whatever password")
    assert wrong_user.status == wrong_password.status == 401
    assert wrong_user.body == wrong_password.body
    answer = browser.login("vic", PASSWORDS["vic"], "/history?camera=door")
    assert answer.status == 302 and answer.headers["Location"] == "/history?camera=door"
    cookie = answer.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie
    assert browser.get("/history?camera=door").status == 200
    assert browser.get("/api/me").json()["via"] == "session"
    frames = browser.get("/video_feed/door")
    assert frames.status == 200 and frames.headers["Content-Type"].startswith("multipart/x-mixed-replace")
    # Somewhere else to go after signing in is never another site.
    assert Client(site["base"], recorder).login("vic", PASSWORDS["vic"], "//evil.example/").headers["Location"] == "/"


def test_state_changing_requests_need_the_page_s_csrf_token_and_origin(site, recorder):
    browser = Client(site["base"], recorder)
    browser.login("ada", PASSWORDS["ada"])
    page = browser.get("/").body.decode()
    csrf = page.split('name="csrf-token" content="')[1].split('"')[0]
    assert len(csrf) > 20
    own = site["base"]
    assert browser.request("POST", "/api/cameras/door/detect").status == 403
    assert browser.request("POST", "/api/cameras/door/detect", X_CSRF_Token="forged").status == 403
    refused = browser.request("POST", "/api/cameras/door/detect", X_CSRF_Token=csrf, Origin="http://evil.example")
    assert refused.status == 403 and "another site" in refused.json()["error"]
    assert browser.request("POST", "/api/cameras/door/detect", X_CSRF_Token=csrf, Origin=own).status == 200
    assert browser.request("DELETE", "/api/events/999999", X_CSRF_Token=csrf).status == 404  # passed the checks
    assert browser.request("DELETE", "/api/events/999999").status == 403
    assert browser.request("POST", "/api/tokens", b'{"camera": "door"}', Content_Type="application/json",
                           Sec_Fetch_Site="cross-site", X_CSRF_Token=csrf).status == 403
    # Signing in from another site's form, and signing out without the token, are refused too.
    stranger = Client(site["base"], recorder)
    assert stranger.request("POST", "/login", b"username=ada&password=x", Origin="http://evil.example",
                            Content_Type="application/x-www-form-urlencoded").status == 403
    assert browser.request("POST", "/logout").status == 403
    out = browser.request("POST", "/logout", f"csrf_token={csrf}".encode(),
                          Content_Type="application/x-www-form-urlencoded", Origin=own)
    assert out.status == 302 and browser.get("/api/me").status == 401
    # With the cookie in play, a 401 carries no Basic challenge: a browser shows the login page, not a prompt.
    browser.cookies["camstream_session"] = "stale"
    assert "WWW-Authenticate" not in browser.get("/video_feed/door").headers


def test_tokens_are_made_listed_and_revoked_by_an_admin_only(site, recorder):
    ada, vic = client(site, recorder, "ada"), client(site, recorder, "vic")
    made = Client(site["base"], Recorder(), ada.authorization).request("POST", "/api/tokens", b'{"camera": "door", "label": "kitchen"}', Content_Type="application/json")
    assert made.status == 201
    token = made.json()["token"]
    site["tokens"]["kitchen"] = token
    listed = ada.get("/api/tokens").json()["tokens"]
    assert {"id": made.json()["id"], "camera": "door", "label": "kitchen", "created": made.json()["created"]} in listed
    assert token not in json.dumps(listed)
    stored = (site["storage"] / "tokens.json").read_text()
    assert token not in stored and made.json()["id"] in stored
    viewer = Client(site["base"], recorder)
    assert viewer.get(f"/snapshot/door.jpg?token={token}").status == 200
    assert vic.request("DELETE", f"/api/tokens/{made.json()['id']}").status == 403
    assert ada.request("POST", "/api/tokens", b'{"camera": "attic"}', Content_Type="application/json").status == 404
    assert ada.request("POST", "/api/tokens", b"[]", Content_Type="application/json").status == 400
    assert ada.request("DELETE", f"/api/tokens/{made.json()['id']}").status == 200
    assert viewer.get(f"/snapshot/door.jpg?token={token}").status == 401
    assert ada.request("DELETE", f"/api/tokens/{made.json()['id']}").status == 404


def test_websocket_with_basic_a_token_or_nothing(site, recorder):
    url = site["base"].replace("http://", "ws://")
    ws = websocket.create_connection(f"{url}/ws/yard?token={site['tokens']['yard']}", timeout=10)
    try:
        # Frames are binary messages; the camera's events (text) may come first.
        opcode, data = ws.recv_data()
        while opcode != websocket.ABNF.OPCODE_BINARY:
            opcode, data = ws.recv_data()
        assert decode(data) is not None
    finally:
        ws.close()
    ws = websocket.create_connection(f"{url}/ws/door", timeout=10,
                                     header=[f"Authorization: {basic('dora', PASSWORDS['dora'])}"])
    ws.close()
    for headers, status in (([], 401), ([f"Authorization: {basic('dora', PASSWORDS['dora'])}"], 404)):
        with pytest.raises(websocket.WebSocketBadStatusException) as refused:
            websocket.create_connection(f"{url}/ws/yard", timeout=10, header=headers)
        assert refused.value.status_code == status
    with pytest.raises(websocket.WebSocketBadStatusException) as refused:
        websocket.create_connection(f"{url}/ws/door", timeout=10, origin="http://evil.example",
                                    header=[f"Authorization: {basic('vic', PASSWORDS['vic'])}"])
    assert refused.value.status_code == 403


def test_only_the_host_names_it_is_reached_by(site, recorder):
    anyone = client(site, recorder, "vic")
    port = site["base"].rsplit(":", 1)[1]
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}", "127.0.0.1"):
        assert anyone.get("/api/me", Host=host).status == 200, host
    answer = anyone.get("/api/me", Host=f"rebound.example:{port}")
    assert answer.status == 400 and "--allowed-host rebound.example" in answer.json()["error"]


@pytest.mark.slow
def test_expired_sessions_end(tmp_path, recorder):
    app = create_app({"CAMERAS": {"door": "pattern"}, "USERS": USERS, "STORAGE": str(tmp_path), "SESSION_LIFETIME": 4})
    with Servers() as servers:
        browser = Client(servers.start(app), recorder)
        assert browser.login("vic", PASSWORDS["vic"]).status == 302
        assert browser.get("/api/me").status == 200
        # Signed in for 4 s (a busy machine still asks within that), then not.
        assert wait_until(lambda: browser.get("/api/me").status == 401, 20)
        assert browser.get("/", Accept="text/html").status == 302
        assert "WWW-Authenticate" not in browser.get("/video_feed").headers


@pytest.mark.slow
def test_failed_sign_ins_lock_that_name_out_from_that_address_for_a_while(tmp_path, recorder):
    app = create_app({"CAMERAS": {"door": "pattern"}, "USERS": USERS, "STORAGE": str(tmp_path), "LOGIN_ATTEMPTS": 3,
                      "LOCKOUT_SECONDS": 300})
    # The lockout's own clock, moved on by the test: the window passes without five minutes of waiting.
    lockout, skipped = auth_of(app).lockout, [0.0]
    lockout.clock = lambda: time.monotonic() + skipped[0]
    with Servers() as servers:
        base = servers.start(app)
        wrong = Client(base, recorder, basic("vic", "guess"))
        assert [wrong.get("/api/me").status for _ in range(3)] == [401, 401, 401]
        locked = wrong.get("/api/me")
        assert locked.status == 429 and 290 <= int(locked.headers["Retry-After"]) <= 300
        # Even the right password waits, and so does the form, with the same Retry-After.
        assert Client(base, recorder, basic("vic", PASSWORDS["vic"])).get("/api/me").status == 429
        form = Client(base, recorder).login("vic", PASSWORDS["vic"])
        assert form.status == 429 and 290 <= int(form.headers["Retry-After"]) <= 300
        # The rest of the household goes on: another user, and a token, from the same address.
        assert Client(base, recorder, basic("ada", PASSWORDS["ada"])).get("/api/me").status == 200
        assert Client(base, recorder).get("/snapshot.jpg?token=cst_guess").status == 401
        # Asking while locked out adds no failure: once the window has passed, the right password works.
        skipped[0] = 250
        assert Client(base, recorder, basic("vic", PASSWORDS["vic"])).get("/api/me").status == 429
        skipped[0] = 301
        assert Client(base, recorder, basic("vic", PASSWORDS["vic"])).get("/api/me").status == 200
    lines = [text for text in recorder.texts if "sign-in failed" in text]
    assert any("for user 'vic' from 127.0.0.1" in line for line in lines)
    locks = [text for text in recorder.texts if "locked out" in text]
    assert len(locks) == 1 and "user 'vic' locked out from 127.0.0.1 until " in locks[0], locks


def test_a_right_password_for_one_user_buys_no_guesses_at_another(tmp_path, recorder):
    """Four wrong passwords for the admin, one right one for a viewer, over and over: the admin's name locks."""
    app = create_app({"CAMERAS": {"door": "pattern"}, "USERS": USERS, "STORAGE": str(tmp_path), "LOGIN_ATTEMPTS": 5,
                      "LOCKOUT_SECONDS": 300})
    with Servers() as servers:
        base = servers.start(app)
        guess, viewer = Client(base, recorder, basic("ada", "guess")), Client(base, recorder, basic("vic", PASSWORDS["vic"]))
        statuses = []
        for _ in range(3):
            statuses += [guess.get("/api/me").status for _ in range(4)]
            assert viewer.get("/api/me").status == 200
        assert statuses == [401] * 5 + [429] * 7, statuses
        assert Client(base, recorder, basic("ada", PASSWORDS["ada"])).get("/api/me").status == 429


def test_many_names_from_one_address_lock_the_whole_address(tmp_path, recorder):
    app = create_app({"CAMERAS": {"door": "pattern"}, "USERS": USERS, "STORAGE": str(tmp_path), "LOGIN_ATTEMPTS": 2,
                      "LOCKOUT_SECONDS": 300})
    with Servers() as servers:
        base = servers.start(app)
        # 2 tries per name, 4 x 2 per address: the eighth failure, over four names, locks every name.
        statuses = [Client(base, recorder, basic(f"user{n}", "guess")).get("/api/me").status
                    for n in range(4) for _ in range(2)]
        assert statuses == [401] * 8
        assert Client(base, recorder, basic("vic", PASSWORDS["vic"])).get("/api/me").status == 429
        assert Client(base, recorder).get("/snapshot.jpg?token=cst_guess").status == 429
    assert any("every user locked out from 127.0.0.1 until" in text for text in recorder.texts)


def test_behind_a_trusted_proxy_cookies_are_secure_and_addresses_are_the_clients(tmp_path, recorder):
    config = {"CAMERAS": {"door": "pattern"}, "USERS": USERS, "STORAGE": str(tmp_path), "LOGIN_ATTEMPTS": 2,
              "ALLOWED_HOSTS": ["cams.example.org"]}
    proxied = {"X_Forwarded_For": "203.0.113.7", "X_Forwarded_Proto": "https", "X_Forwarded_Host": "cams.example.org"}
    with Servers() as servers:
        trusting_base = servers.start(create_app({**config, "TRUSTED_PROXIES": ["127.0.0.1"]}))
        trusting = Client(trusting_base, recorder)
        direct = Client(servers.start(create_app(config)), recorder)
        form = urlencode({"username": "vic", "password": PASSWORDS["vic"]}).encode()
        answer = trusting.request("POST", "/login", form, Content_Type="application/x-www-form-urlencoded",
                                  Origin="https://cams.example.org", **proxied)
        assert answer.status == 302
        assert "Secure" in answer.headers["Set-Cookie"] and "HttpOnly" in answer.headers["Set-Cookie"]
        # Not believed from anyone else: the scheme is http, so no Secure cookie.
        answer = direct.request("POST", "/login", form, Content_Type="application/x-www-form-urlencoded", **proxied)
        assert answer.status == 302 and "Secure" not in answer.headers["Set-Cookie"]
        # Only a trusted proxy's host name counts, and it must be an allowed one.
        assert direct.get("/api/me", Authorization=basic("vic", PASSWORDS["vic"]),
                          X_Forwarded_Host="rebound.example").status == 200
        assert trusting.get("/api/me", Authorization=basic("vic", PASSWORDS["vic"]),
                            X_Forwarded_Host="rebound.example").status == 400
        # Lockout counts the forwarded client, not the proxy.
        guessing = Client(trusting_base, recorder, basic("vic", "guess"))
        assert [guessing.get("/api/me", **proxied).status for _ in range(3)] == [401, 401, 429]
        other = {**proxied, "X_Forwarded_For": "203.0.113.8"}
        assert Client(trusting_base, recorder, basic("vic", PASSWORDS["vic"])).get("/api/me", **other).status == 200


def test_an_open_server_needs_no_sign_in_and_has_none_to_end(tmp_path, recorder):
    app = create_app({"CAMERAS": {"door": "pattern"}, "STORAGE": str(tmp_path)})
    with Servers() as servers:
        anyone = Client(servers.start(app), recorder)
        assert anyone.get("/api/me").json() == {"name": None, "role": "admin", "via": "open", "cameras": None}
        assert anyone.get("/login").status == 302 and anyone.request("POST", "/logout").status == 302
        assert "streams" in anyone.get("/healthz").json()
        # Open, but still only to its own host names, and only from its own pages.
        assert anyone.get("/api/me", Host="rebound.example").status == 400
        assert anyone.request("POST", "/api/cameras/door/detect", Origin="http://rebound.example").status == 403
    assert not (tmp_path / "secret_key").exists()


def test_a_damaged_tokens_file_is_set_aside_and_says_so(tmp_path, recorder):
    app = create_app({"CAMERAS": {"door": "pattern"}, "USERS": USERS, "STORAGE": str(tmp_path)})
    with Servers() as servers:
        base = servers.start(app)
        ada = Client(base, Recorder(), basic("ada", PASSWORDS["ada"]))
        token = ada.request("POST", "/api/tokens", b'{"camera": "door"}', Content_Type="application/json").json()["token"]
        assert Client(base, recorder).get(f"/snapshot.jpg?token={token}").status == 200
        (tmp_path / "tokens.json").write_text("{not json")
        assert Client(base, recorder).get(f"/snapshot.jpg?token={token}").status == 401
        made = ada.request("POST", "/api/tokens", b'{"camera": "door"}', Content_Type="application/json")
        assert made.status == 201, "the damaged file was set aside: tokens can be made again"
        assert [path.read_text() for path in tmp_path.glob("tokens.json.damaged-*")] == ["{not json"]
    assert any("tokens.json is damaged" in text and "set aside as tokens.json.damaged-" in text
               for text in recorder.texts)
    assert recorder.leaks([token]) == []
