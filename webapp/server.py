"""Serving the app with waitress, set up for long-lived streaming responses."""

from __future__ import annotations

import logging
import resource
import warnings

from flask import Flask
from waitress.server import BaseWSGIServer, MultiSocketServer, create_server

DEFAULT_THREADS = 64
# Worker threads kept free of streams for the page, snapshots and status.
RESERVED_THREADS = 8


def streaming_settings(threads: int = DEFAULT_THREADS) -> dict[str, object]:
    """Waitress settings for MJPEG: every viewer holds a worker thread for as long as it watches.

    - ``threads``: one per concurrent viewer plus a few for pages and
      snapshots (waitress's default of 4 hangs the fifth viewer).
    - ``connection_limit``: room for every worker plus waiting requests.
    - ``send_bytes=1``: flush each write at once; by default waitress
      holds back writes under 18000 bytes, delaying small frames.
    - ``channel_request_lookahead``: keeps reading the socket while a
      response runs, so a stream sees ``waitress.client_disconnected``.
    - ``asyncore_use_poll``: poll() instead of select(), which cannot watch
      descriptors past 1024.
    """
    return {
        "threads": threads,
        "connection_limit": threads + 100,
        "send_bytes": 1,
        "channel_request_lookahead": 1,
        "asyncore_use_poll": True,
        "ident": "camstream",
    }


def make_server(app: Flask, host: str, port: int, threads: int = DEFAULT_THREADS) -> BaseWSGIServer | MultiSocketServer:
    """A waitress server bound to ``host:port`` (port 0 picks a free one), not yet running."""
    with warnings.catch_warnings():
        # Deprecated, but waitress 3.0 still holds back smaller writes without it.
        warnings.filterwarnings("ignore", "send_bytes", DeprecationWarning)
        return create_server(app, host=host, port=port, **streaming_settings(threads))


def raise_open_file_limit(wanted: int) -> None:
    """Raise this process's soft limit on open files towards ``wanted`` (never past the hard limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    if hard != resource.RLIM_INFINITY and hard < wanted:
        logging.getLogger("camstream").warning(
            "open file limit is %d; fewer than %d viewers fit (raise it with ulimit -n)", hard, wanted)
