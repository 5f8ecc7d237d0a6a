"""A systemd unit that runs this camstream as a service: ``camstream --print-systemd-unit [flags]``."""

from __future__ import annotations

import os
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

UNIT = """\
# camstream as a systemd service. Install:
#   camstream --print-systemd-unit {flags_comment} | sudo tee /etc/systemd/system/camstream.service
#   sudo mkdir -p /etc/camstream && sudo cp examples/camstream.toml {config}   # then edit it
#   sudo systemctl daemon-reload && sudo systemctl enable --now camstream
# Settings: flags in ExecStart, over CAMSTREAM_* lines in /etc/camstream/camstream.env (if it
# exists), over {config}. Check them: camstream --config {config} --check-config
# After editing the file: sudo systemctl reload camstream (cameras not changed keep their viewers).
# Logs: journalctl -u camstream

[Unit]
Description=camstream: cameras in the browser
After=network-online.target
Wants=network-online.target

[Service]
Type=simple
ExecStart={exec_start}
ExecReload=/bin/kill -HUP $MAINPID
EnvironmentFile=-/etc/camstream/camstream.env
# A user of its own, made by systemd; in the video group for USB and Raspberry Pi cameras.
DynamicUser=yes
SupplementaryGroups=video
# Recordings and the index go to /var/lib/camstream/camstream-data unless --storage says otherwise.
StateDirectory=camstream
WorkingDirectory=/var/lib/camstream
Restart=on-failure
RestartSec=5
TimeoutStopSec=15
NoNewPrivileges=yes
ProtectSystem=strict
ProtectHome=read-only
PrivateTmp=yes

[Install]
WantedBy=multi-user.target
"""


DEFAULT_CONFIG = "/etc/camstream/camstream.toml"


# Folders the unit's service cannot read from: PrivateTmp gives it an empty /tmp, and its DynamicUser, no one's
# home (ProtectHome, and a home's own permissions).
HIDDEN = {"/tmp": "PrivateTmp=yes gives the service an empty /tmp", "/var/tmp": "PrivateTmp=yes hides /var/tmp",
          "/home": "the service's own user cannot read a home folder (ProtectHome)",
          "/root": "the service's own user cannot read /root"}


def systemd_unit(flags: Sequence[str], python: str = sys.executable) -> tuple[str, list[str]]:
    """The unit file, running this installation's camstream with ``flags`` (given beside --print-systemd-unit),
    and warnings: paths in it the service will not be able to read.

    The ``camstream`` command beside the interpreter when it is installed
    there, else ``python -m webapp``. The service reads ``--config`` (made
    absolute and clean: the service runs elsewhere), :data:`DEFAULT_CONFIG` unless given.
    """
    script = Path(python).parent / "camstream"
    program = [str(script)] if script.is_file() else [python, "-m", "webapp"]
    config, rest = _config_flag(list(flags))
    command = shlex.join([*program, "--config", config, *rest])
    warnings = [f"{path} is under {folder}, and {why}: install camstream (python3 -m venv /opt/camstream && "
                f"/opt/camstream/bin/pip install .) and its config (under /etc/camstream) elsewhere"
                for path in (program[0], config) for folder, why in HIDDEN.items()
                if Path(path).is_relative_to(folder)]
    unit = UNIT.format(exec_start=command, config=shlex.quote(config), flags_comment=shlex.join(flags) or "[flags]")
    return unit, warnings


def _config_flag(flags: list[str]) -> tuple[str, list[str]]:
    """The ``--config`` path among ``flags`` (absolute), and the other flags."""
    config, rest = DEFAULT_CONFIG, []
    words = iter(flags)
    for flag in words:
        if flag == "--config":
            config = next(words, DEFAULT_CONFIG)
        elif flag.startswith("--config="):
            config = flag.removeprefix("--config=")
        else:
            rest.append(flag)
    return os.path.abspath(config), rest
