"""camstream's numeric settings: their ranges, and where a wrong one is reported.

Every number a user can set, as a flag, a ``CAMSTREAM_*`` variable or a
key of the mapping given to :func:`~webapp.create_app`, is listed once in
:data:`NUMBERS` and checked by :func:`camera.limits.checked`, so a NaN, an
infinity or a value out of range is one line naming the setting as the
user wrote it (``--fps``, ``CAMSTREAM_FPS`` or ``FPS``).
"""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import dataclass
from typing import Any

from camera.base import MAX_IDLE_TIMEOUT
from camera.limits import MAX_FPS, MAX_SIDE, MIN_FPS, checked

ENV_PREFIX = "CAMSTREAM_"

# Camera names appear in URLs and in X-Camera header lines.
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}", re.ASCII)
NAME_RULE = ("must start with an ASCII letter or digit, followed by up to 63 ASCII letters, digits, "
             "'-' or '_'")


class ConfigError(ValueError):
    """A setting that cannot be used; the message names it."""


@dataclass(frozen=True)
class Number:
    """One numeric setting: its config key, command-line flag and allowed range."""

    key: str
    kind: type[int | float]
    low: float
    high: float
    flag: str | None = None

    def parse(self, value: object, name: str | None = None) -> int | float:
        """``value`` checked and converted; :class:`ConfigError` naming ``name`` (the key by default)."""
        try:
            return checked(name or self.key, value, self.kind, self.low, self.high)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None

    def argument(self) -> Callable[[str], int | float]:
        """An argparse ``type=`` for the flag: the same check, reported as argparse reports errors."""
        def convert(text: str) -> int | float:
            try:
                return checked("it", text, self.kind, self.low, self.high)
            except ValueError as exc:
                raise argparse.ArgumentTypeError(str(exc).removeprefix("it ")) from None
        return convert


NUMBERS = {number.key: number for number in (
    Number("FPS", float, MIN_FPS, MAX_FPS, "--fps"),
    Number("QUALITY", int, 1, 100, "--quality"),
    Number("WIDTH", int, 1, MAX_SIDE, "--width"),
    Number("HEIGHT", int, 1, MAX_SIDE, "--height"),
    Number("IDLE_TIMEOUT", float, 0, MAX_IDLE_TIMEOUT, "--idle-timeout"),
    Number("SNAPSHOT_TIMEOUT", float, 0, 30),
    Number("MAX_VIEWERS", int, 1, 100_000, "--max-viewers"),
    Number("DETECT_CONFIDENCE", float, 0, 1, "--detect-confidence"),
    Number("DETECT_FPS", float, 0.1, MAX_FPS, "--detect-fps"),
    Number("DETECT_TIMEOUT", float, 0.1, 3600, "--detect-timeout"),
    Number("RETAIN_DAYS", float, 0, 36500, "--retain-days"),
    Number("SEGMENT_SECONDS", float, 1, 3600, "--segment-seconds"),
    Number("PRE_CAPTURE", float, 0, 60, "--pre-capture"),
    Number("POST_CAPTURE", float, 0, 300, "--post-capture"),
    Number("EVENT_GAP", float, 0.1, 3600, "--event-gap"),
    Number("SESSION_LIFETIME", float, 1, 366 * 24 * 3600),
    Number("LOGIN_ATTEMPTS", int, 1, 1000),
    Number("LOCKOUT_SECONDS", float, 1, 24 * 3600),
    # Only the command line sets these; waitress-serve has its own flags.
    Number("PORT", int, 0, 65535, "--port"),
    Number("THREADS", int, 1, 1024, "--threads"),
)}


def check_numbers(config: MutableMapping[str, Any], given: Mapping[str, Any] | None,
                  defaults: Mapping[str, Any]) -> None:
    """Check every numeric setting in ``config`` and store it converted; None and "" take the default.

    ``given`` is the mapping passed to create_app: a wrong value from it is
    reported by its key, one from the environment by its variable.
    """
    for key, number in NUMBERS.items():
        if key not in config:
            continue
        value = config[key]
        if value is None or value == "":
            config[key] = defaults.get(key)
            continue
        variable = ENV_PREFIX + key
        if (given is None or key not in given) and variable in os.environ:
            # Flask parsed the variable as JSON ("Infinity" is a float there); check what was written.
            config[key] = number.parse(os.environ[variable], variable)
        else:
            config[key] = number.parse(value, key)
