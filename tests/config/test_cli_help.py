"""``--help`` says what every flag does: a ``--no-...`` flag turns something off, and its help says what (it
once described the setting it turns off, which read as the opposite)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.config.test_cli import run_cli
from webapp.config.table import BOOL, SETTINGS


def flag_helps(help_text: str) -> dict[str, str]:
    """Each option of an argparse help text with its help, joined across the lines it wraps onto."""
    helps: dict[str, str] = {}
    current = None
    for line in help_text.splitlines():
        found = re.match(r"  (--[\w-]+)(?: \S+)?(?:  +(.*))?$", line)
        if found:
            current = found[1]
            helps[current] = found[2] or ""
        elif current and line.startswith(" " * 10) and line.strip():
            helps[current] = f"{helps[current]} {line.strip()}".strip()
        else:
            current = None
    return helps


@pytest.mark.parametrize("command", [(), ("worker",)])
def test_every_no_flag_says_what_it_turns_off(command):
    result = run_cli(*command, "--help")
    assert result.returncode == 0, result.stderr
    helps = flag_helps(result.stdout)
    negative = {flag: text for flag, text in helps.items() if flag.startswith("--no-")}
    if not command:
        assert set(negative) >= {"--no-audio", "--no-record-copy", "--no-handoff", "--no-auth"}, helps
    for flag, text in negative.items():
        assert text.startswith("turn off "), f"{flag}: {text!r} does not say what it turns off"


def test_a_flag_that_turns_a_setting_off_is_said_so_in_the_table():
    for setting in SETTINGS:
        if setting.kind == BOOL and setting.flag and setting.flag.startswith("--no-"):
            assert setting.help.startswith("turn off "), setting.key


def test_the_docs_server_has_a_port_of_its_own():
    """``mkdocs serve`` (README) beside a running camstream: not camstream's default port, not a crash."""
    text = (Path(__file__).resolve().parents[2] / "mkdocs.yml").read_text()
    [address] = re.findall(r"^dev_addr:\s*(\S+)\s*$", text, re.MULTILINE)
    host, port = address.rsplit(":", 1)
    [default] = [setting.default for setting in SETTINGS if setting.key == "PORT"]
    assert host == "127.0.0.1" and int(port) != default
