"""A systemd unit that runs this camstream as a service: ``camstream --print-systemd-unit [flags]``."""

from __future__ import annotations

import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

UNIT = """\
# camstream as a systemd service. Install:
#   camstream --print-systemd-unit {flags_comment} | sudo tee /etc/systemd/system/camstream.service
#   sudo systemctl daemon-reload && sudo systemctl enable --now camstream
# Settings also come from CAMSTREAM_* lines in /etc/camstream/camstream.env, if it exists.
# Logs: journalctl -u camstream

[Unit]
Description=camstream: cameras in the browser
After=network-online.target
Wants=network-online.target

[Service]
Type=simple
ExecStart={exec_start}
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


def systemd_unit(flags: Sequence[str], python: str = sys.executable) -> str:
    """The unit file, running this installation's camstream with ``flags`` (given beside --print-systemd-unit).

    The ``camstream`` command beside the interpreter when it is installed there, else ``python -m webapp``.
    """
    script = Path(python).parent / "camstream"
    program = [str(script)] if script.is_file() else [python, "-m", "webapp"]
    command = shlex.join([*program, *flags])
    return UNIT.format(exec_start=command, flags_comment=shlex.join(flags) or "[flags]")
