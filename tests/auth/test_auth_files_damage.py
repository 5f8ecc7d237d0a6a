"""A damaged ``sessions.json`` or ``tokens.json`` (nested too deeply, numbers too large, the wrong types,
gigabytes) never stops the server nor answers 500: it is set aside, said in one log line, and the server goes
on; what the files may hold is bounded. A real server on a real socket, and the real command line."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from tests.auth_helpers import PASSWORDS, USERS, Client, Recorder, basic
from tests.config.test_cli import run_cli
from tests.conftest import Servers
from webapp import create_app
from webapp.auth import auth_of
from webapp.auth.sessions import MAX_PER_USER, MAX_SESSIONS, SessionStore

DIGEST = "ab" * 32
DAMAGE = {
    "nested too deeply": "[" * 200_000 + "]" * 200_000,
    "an expiry of 10^400": json.dumps([[DIGEST, "ada", 10**400]]),
    "wrong types": json.dumps({"ada": [1, 2, 3]}),
    "a wrong row": json.dumps([[DIGEST, ["ada"], "tomorrow"]]),
    "not text": "\udcff",
    "huge": "[" + " " * (5 * 1024 * 1024) + "]",
}
TOKEN_DAMAGE = {
    **DAMAGE,
    "a creation time of 10^400": json.dumps([{"id": "1", "camera": "door", "label": "", "created": 10**400,
                                               "digest": DIGEST}]),
    "a token of the wrong shape": json.dumps([{"id": ["1"], "camera": "door", "label": "", "created": 1,
                                               "digest": DIGEST, "extra": 1}]),
}


def write(path: Path, text: str) -> None:
    path.write_bytes(text.encode(errors="surrogateescape"))


def set_aside(folder: Path, name: str) -> list[Path]:
    return sorted(folder.glob(f"{name}.damaged-*"))


def error_lines(caplog, name: str) -> list[str]:
    return [record.getMessage() for record in caplog.records
            if record.levelno >= logging.ERROR and name in record.getMessage()]


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_a_damaged_sessions_file_is_set_aside_and_the_server_goes_on(tmp_path, caplog, damage):
    write(tmp_path / "sessions.json", DAMAGE[damage])
    with caplog.at_level(logging.ERROR, "camstream.auth"):
        app = create_app({"CAMERAS": {"door": "pattern"}, "USERS": USERS, "STORAGE": str(tmp_path), "WIDTH": 160})
    [line] = error_lines(caplog, "sessions.json")
    assert "is damaged" in line and "set aside as sessions.json.damaged-" in line and "\n" not in line
    [aside] = set_aside(tmp_path, "sessions.json")
    assert aside.read_bytes() == DAMAGE[damage].encode(errors="surrogateescape"), "kept as it was"
    with Servers() as servers:
        browser = Client(servers.start(app), Recorder())
        assert browser.login("ada", PASSWORDS["ada"]).status == 302
        assert browser.get("/api/me").json()["name"] == "ada"
    assert len(json.loads((tmp_path / "sessions.json").read_text())) == 1, "a new file, with the new session"


def test_the_sessions_a_file_may_hold_are_bounded(tmp_path):
    now = 1_800_000_000.0
    rows = [[f"{i:064x}", f"user{i % 150}", now + 100 + i] for i in range(20_000)]
    rows.append([f"{20_000:064x}", "mallory", 1e300])  # an expiry no session of this server has
    (tmp_path / "sessions.json").write_text(json.dumps(rows))
    store = SessionStore(tmp_path / "sessions.json", 3600.0, clock=lambda: now)
    assert store.count == MAX_SESSIONS, "the newest, at most MAX_SESSIONS"
    store.open("mallory")
    kept = json.loads((tmp_path / "sessions.json").read_text())
    assert len(kept) == MAX_SESSIONS
    per_user: dict[str, int] = {}
    for _, name, expires in kept:
        per_user[name] = per_user.get(name, 0) + 1
        assert expires <= now + 3600 + 60 + 0.001, "no session outlives the lifetime"
    assert max(per_user.values()) <= MAX_PER_USER and per_user["mallory"] == 2
    assert kept[-1][1] == "mallory" and kept[-1][2] == pytest.approx(now + 3600 + 60), "the new one last"


@pytest.mark.parametrize("damage", list(TOKEN_DAMAGE))
def test_a_damaged_tokens_file_answers_no_500_and_is_set_aside(tmp_path, caplog, damage):
    app = create_app({"CAMERAS": {"door": "pattern"}, "USERS": USERS, "STORAGE": str(tmp_path), "WIDTH": 160})
    with Servers() as servers, caplog.at_level(logging.ERROR, "camstream.auth"):
        base = servers.start(app)
        ada = Client(base, Recorder(), basic("ada", PASSWORDS["ada"]))
        old = ada.request("POST", "/api/tokens", b'{"camera": "door"}', Content_Type="application/json")
        assert old.status == 201
        write(tmp_path / "tokens.json", TOKEN_DAMAGE[damage])
        assert Client(base, Recorder()).get(f"/snapshot.jpg?token={old.json()['token']}").status == 401
        listed = ada.get("/api/tokens")
        assert listed.status == 200 and listed.json()["tokens"] == []
        [aside] = set_aside(tmp_path, "tokens.json")
        assert aside.read_bytes() == TOKEN_DAMAGE[damage].encode(errors="surrogateescape")
        made = ada.request("POST", "/api/tokens", b'{"camera": "door"}', Content_Type="application/json")
        assert made.status == 201, "tokens can be made again"
        assert Client(base, Recorder()).get(f"/snapshot.jpg?token={made.json()['token']}").status == 200
    [line] = error_lines(caplog, "tokens.json")
    assert "is damaged" in line and "set aside as tokens.json.damaged-" in line
    assert auth_of(app).tokens.damaged_as == aside


@pytest.mark.parametrize("damage", ["nested too deeply", "an expiry of 10^400", "wrong types"])
def test_token_list_with_a_damaged_file_says_so_in_one_line(tmp_path, damage):
    write(tmp_path / "tokens.json", TOKEN_DAMAGE[damage])
    result = run_cli("token", "list", "--storage", str(tmp_path))
    assert result.returncode != 0 and "Traceback" not in result.stderr, result.stderr
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("camstream: error: the tokens file") and "set aside as tokens.json.damaged-" in line
    assert result.stdout == ""
    made = run_cli("token", "create", "default", "--storage", str(tmp_path))
    assert made.returncode == 0 and made.stdout.startswith("token "), made.stderr


def test_the_sign_in_files_are_never_read_or_written_through_a_symlink(tmp_path):
    """The data folder is the storage folder, which others may write to: a link there is set aside, and the
    files are written new, never through a link left where they go."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    kept = {name: elsewhere / name for name in ("sessions", "sessions.tmp", "tokens", "tokens.tmp", "tokens.lock")}
    for path in kept.values():
        path.write_text("someone else's file\n")
    data = tmp_path / "data"
    data.mkdir()
    (data / "sessions.json").symlink_to(kept["sessions"])
    (data / "tokens.json").symlink_to(kept["tokens"])
    for name in ("sessions.tmp", "tokens.tmp", "tokens.lock"):
        (data / name).symlink_to(kept[name])
    app = create_app({"CAMERAS": {"door": "pattern"}, "USERS": USERS, "STORAGE": str(data), "WIDTH": 160})
    with Servers() as servers:
        base = servers.start(app)
        browser = Client(base, Recorder())
        assert browser.login("ada", PASSWORDS["ada"]).status == 302
        made = Client(base, Recorder(), basic("ada", PASSWORDS["ada"])).request(
            "POST", "/api/tokens", b'{"camera": "door"}', Content_Type="application/json")
        assert made.status == 201, made.body
    assert all(path.read_text() == "someone else's file\n" for path in kept.values())
    assert [path.is_symlink() for path in set_aside(data, "sessions.json")] == [True]
    assert [path.is_symlink() for path in set_aside(data, "tokens.json")] == [True]
    assert len(json.loads((data / "tokens.json").read_text())) == 1
    assert not (data / "sessions.json").is_symlink() and len(json.loads((data / "sessions.json").read_text())) == 1
