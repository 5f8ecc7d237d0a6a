"""The command line's flags, made from the settings table, and what they turn into.

Each setting with a flag in webapp/config/table.py becomes one argparse
option here: its type checks what the setting's checks would, its help
ends with the setting's default. :func:`config_from_args` gives back the
settings the flags set, keyed as the app's config is.
"""

from __future__ import annotations

import argparse
import re
import sys
from typing import Any, NoReturn

from camera.suggest import closest

from ..config.table import BOOL, CHOICE, SETTINGS, SIZE, Setting
from ..config.values import parse_size

# Short flags people type out of habit, and the flag each means here.
HABITS = {"-p": "--port", "-c": "--config", "-s": "--source", "-v": "--log-level debug", "-d": "--detect",
          "-r": "--record", "-u": "--user", "-H": "--host", "-b": "--host"}


class Parser(argparse.ArgumentParser):
    """argparse, but a wrong argument is one line on stderr (with the flag it may have meant) and exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}{self._suggestion(message)}\n")

    def _suggestion(self, message: str) -> str:
        """`` (did you mean --camera?)`` for an unknown flag, and where to read about every flag."""
        match = re.match(r"unrecognized arguments: (\S+)", message)
        if match is None:
            return ""
        word = match[1].split("=", 1)[0]
        flags = [flag for action in self._actions for flag in action.option_strings if flag.startswith("--")]
        found = HABITS.get(word) if not word.startswith("--") else closest(word, flags)
        hint = f" (did you mean {found}?)" if found else ""
        return f"{hint}; {self.prog} --help lists them all"


def fail(message: str) -> int:
    """Say what is wrong in one line; the exit status for it."""
    print(f"camstream: error: {message}", file=sys.stderr)
    return 2


COMMANDS_HELP = """\
commands (each takes --help):
  camstream hash-password             make the hash of a password for --user NAME:HASH
  camstream token create|list|revoke  read-only tokens for embedding one camera (?token=)
  camstream worker                    a detector for remote:GROUP cameras, on any machine (NATS)
"""


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="camstream", description="Serve cameras as MJPEG streams any browser can show.",
                    epilog=COMMANDS_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    for setting in SETTINGS:
        if setting.flag is not None:
            add_flag(parser, setting)
        if setting.key == "CONFIG":
            parser.add_argument("--check-config", action="store_true",
                                help="check the settings (file, variables and flags) and exit: 0 if they are good, "
                                "else 2")
    parser.add_argument("--print-systemd-unit", action="store_true",
                        help="print a systemd unit that runs camstream with the other flags given, and exit")
    return parser


def add_flag(parser: argparse.ArgumentParser, setting: Setting) -> None:
    """``setting``'s flag on ``parser``, with its help, default and checks (the server's and the worker's)."""
    parser.add_argument(setting.flag, dest=setting.key, help=_help(setting), **_options(setting))


def _options(setting: Setting) -> dict[str, Any]:
    if setting.kind == BOOL:
        return {"action": "store_const", "const": setting.flag_value, "default": None}
    if setting.repeat:
        return {"action": "append", "default": [], "metavar": setting.metavar}
    if setting.numeric:
        return {"type": setting.argument(), "metavar": setting.metavar}
    if setting.kind == CHOICE:
        return {"choices": setting.choices}
    if setting.kind == SIZE:
        return {"type": _size, "metavar": setting.metavar}
    return {"metavar": setting.metavar}


def _help(setting: Setting) -> str:
    shown = setting.shown if setting.kind != BOOL else None
    return f"{setting.help} (default: {shown})" if shown is not None and not setting.repeat else setting.help


def _size(text: str) -> str:
    """An argparse ``type=`` for sizes: checked here, passed on as written."""
    try:
        parse_size("it", text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("it ")) from None
    return text


def config_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """The app config the command line asks for; unset options leave the environment's."""
    # A wrong source on the command line is reported at once.
    config: dict[str, Any] = {"STRICT_SOURCES": True}
    for setting in SETTINGS:
        if setting.flag is None:
            continue
        value = getattr(args, setting.key)
        if value is not None and value != []:
            config[setting.key] = list(value) if setting.repeat else value
    if "SOURCE" in config and "CAMERAS" in config:
        # --source names the camera 'default', the first of several.
        config["CAMERAS"].insert(0, f"default={config.pop('SOURCE')}")
    return config
