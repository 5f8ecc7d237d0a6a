"""camstream's settings in layers: defaults, a config file, the environment, the given mapping.

Settings are gathered (lowest first) from their defaults (see
webapp/config/table.py), a config file (``CONFIG``, see
webapp/config/tomlfile.py), ``CAMSTREAM_*`` environment variables and the
mapping given to :func:`~webapp.create_app`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from flask import Config

from camera.suggest import closest

from . import tomlfile
from .table import DEFAULTS, ENV_PREFIX, HANDOFF_MAX_VIEWERS, THREADED_MAX_VIEWERS, check_numbers
from .values import yes_no

log = logging.getLogger("camstream")


@dataclass(frozen=True)
class Settings:
    """An app's settings from all their layers, and what a camera's own settings need to be resolved.

    ``config`` is the defaults, the config file's top level, the environment
    and the given mapping, each over the one before; ``tables`` are the
    file's camera tables; ``forced`` are the keys a flag or variable set,
    which beat the camera tables too.
    """

    config: Mapping[str, Any]
    tables: Mapping[str, Mapping[str, Any]]
    forced: frozenset[str]
    file: str | None
    # The file's [users.NAME] tables, unless USERS came from a flag or variable.
    users: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


def gather(given: Mapping[str, Any] | None) -> Settings:
    """Read every layer: defaults < config file (``CONFIG``) < ``CAMSTREAM_*`` variables < ``given``."""
    given = dict(given or {})
    path = given.get("CONFIG") or os.environ.get(ENV_PREFIX + "CONFIG") or None
    file = tomlfile.load(path) if path else tomlfile.ConfigFile()
    config = Config(os.getcwd())
    config.from_mapping(DEFAULTS)
    config.from_mapping(file.settings)
    config.from_prefixed_env(ENV_PREFIX.rstrip("_"))
    config.from_mapping(given)
    variables = {name.removeprefix(ENV_PREFIX) for name in os.environ if name.startswith(ENV_PREFIX)}
    for name in sorted(variables - set(DEFAULTS)):
        meant = closest(name, DEFAULTS)
        hint = f" (did you mean {ENV_PREFIX}{meant}?)" if meant else ""
        log.warning("%s%s is not a camstream setting%s; it is left alone", ENV_PREFIX, name, hint)
    check_numbers(config, given)
    config["SOCKET_HANDOFF"] = socket_handoff(config)
    config["NO_AUTH"] = yes_no("NO_AUTH", config.get("NO_AUTH"))
    forced = frozenset(variables | set(given))
    return Settings(config, file.cameras, forced, str(path) if path else None,
                    {} if "USERS" in forced else file.users)


def max_viewers(config: Mapping[str, Any]) -> int:
    """How many streams may run at once (``MAX_VIEWERS``)."""
    limit = config.get("MAX_VIEWERS")
    if limit is None:
        return HANDOFF_MAX_VIEWERS if socket_handoff(config) else THREADED_MAX_VIEWERS
    return int(limit)


def socket_handoff(config: Mapping[str, Any]) -> bool:
    """``SOCKET_HANDOFF`` as a bool (on unless set)."""
    return yes_no("SOCKET_HANDOFF", config.get("SOCKET_HANDOFF", True))
