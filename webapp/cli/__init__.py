"""The command line: ``camstream`` (serve), ``--check-config``, ``hash-password``, ``token``, the systemd unit."""

from .parser import build_parser, config_from_args
from .serve import main

__all__ = ["build_parser", "config_from_args", "main"]
