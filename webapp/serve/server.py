"""Serving the app with waitress, set up for long-lived streaming responses."""

from __future__ import annotations

import logging
import resource
import socket
import warnings

from flask import Flask
from waitress.adjustments import Adjustments

from camera.viewers.sender import NOTSENT_LOWAT, STALL_TIMEOUT

from ..config.table import DEFAULTS
from ..runtime.registry import runtime_of
from .connections import IDLE_TIMEOUT, GuardedServer

DEFAULT_THREADS: int = DEFAULTS["THREADS"]

# Bodies and request heads are bounded: no endpoint takes more than a few
# KB, and waitress would otherwise spool up to 1 GB a request to disk.
MAX_BODY_BYTES = 64 * 1024
MAX_HEADER_BYTES = 32 * 1024
# Connections beyond the workers and the streams, for page loads, snapshots
# and status polls waiting for a worker.
SPARE_CONNECTIONS = 100


def streaming_settings(threads: int = DEFAULT_THREADS, max_viewers: int = 0) -> dict[str, object]:
    """Waitress settings for MJPEG: every viewer holds a worker thread for as long as it watches.

    - ``threads``: one per concurrent viewer plus a few for pages and
      snapshots (waitress's default of 4 hangs the fifth viewer).
    - ``connection_limit``: room for every viewer (streams through WSGI
      stay waitress connections), every worker and requests waiting for one.
    - ``send_bytes=1``: flush each write at once; by default waitress
      holds back writes under 18000 bytes, delaying small frames.
    - ``channel_request_lookahead``: keeps reading the socket while a
      response runs, so a stream sees ``waitress.client_disconnected``.
    - ``asyncore_use_poll``: poll() instead of select(), which cannot watch
      descriptors past 1024.
    - ``outbuf_high_watermark``: a worker writing to a connection with this
      much unsent waits until it drains, then takes the newest frame.
      Waitress's 16 MB would let a slow viewer fall minutes behind, and
      keeps up to 16 MB per viewer. (Only streams not handed to the
      sender, see webapp/serve/handoff.py, go through waitress's buffers.)
    - ``channel_timeout``, ``cleanup_interval``: idle connections are
      closed after 15 s, looked for every second (waitress: 120 s, 30 s).
    - ``max_request_body_size``, ``max_request_header_size``: see above.
    - ``clear_untrusted_proxy_headers``: off, so ``X-Forwarded-*`` reach the
      app, which believes them from ``--trusted-proxy`` addresses only
      (webapp/auth/proxy.py); waitress's own check knows one address.
    """
    return {
        "threads": threads,
        "connection_limit": max_viewers + threads + SPARE_CONNECTIONS,
        "send_bytes": 1,
        "channel_request_lookahead": 1,
        "asyncore_use_poll": True,
        "outbuf_high_watermark": 64 * 1024,
        "channel_timeout": int(IDLE_TIMEOUT),
        "cleanup_interval": 1,
        "max_request_body_size": MAX_BODY_BYTES,
        "max_request_header_size": MAX_HEADER_BYTES,
        "clear_untrusted_proxy_headers": False,
        "ident": "camstream",
    }


def listen(host: str, port: int, client_timeout: float = STALL_TIMEOUT) -> socket.socket:
    """A listening socket with :func:`socket_options` set, for waitress to serve on."""
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        for level, option, value in socket_options(client_timeout):
            sock.setsockopt(level, option, value)
        sock.bind(address)
        sock.listen(1024)
    except OSError:
        sock.close()
        raise
    return sock


def socket_options(client_timeout: float = STALL_TIMEOUT) -> list[tuple[int, int, int]]:
    """Options for the listening socket, which accepted connections inherit.

    ``TCP_NODELAY`` is waitress's own default. ``TCP_NOTSENT_LOWAT`` keeps
    the kernel from queueing more than a little unsent data per connection;
    without it Linux grows a slow viewer's send buffer to 4 MB, seconds of
    stale video, before waitress's own buffer limit even starts to act.
    ``TCP_USER_TIMEOUT`` drops a connection whose client has acknowledged
    nothing for ``client_timeout`` seconds: a phone that left the Wi-Fi
    without closing anything. Waitress never times out a connection with a
    response running, so without it such a viewer would hold its worker
    for the 15 minutes of TCP's own retries.
    """
    options = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]
    if hasattr(socket, "TCP_NOTSENT_LOWAT"):
        options.append((socket.IPPROTO_TCP, socket.TCP_NOTSENT_LOWAT, NOTSENT_LOWAT))
    if hasattr(socket, "TCP_USER_TIMEOUT"):
        options.append((socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, int(client_timeout * 1000)))
    return options


def make_server(app: Flask, host: str, port: int, threads: int = DEFAULT_THREADS,
                client_timeout: float = STALL_TIMEOUT, sock: socket.socket | None = None) -> GuardedServer:
    """A waitress server listening on ``host:port`` (port 0 picks a free one), or on ``sock`` made by
    :func:`listen` already, not yet running.

    A client that takes no data for ``client_timeout`` seconds is dropped;
    idle and unfinished connections are handled as webapp/serve/connections.py says.
    """
    if sock is None:
        sock = listen(host, port, client_timeout)
    settings = streaming_settings(threads, runtime_of(app).slots.limit)
    try:
        with warnings.catch_warnings():
            # Deprecated, but waitress 3.0 still holds back smaller writes without it.
            warnings.filterwarnings("ignore", "send_bytes", DeprecationWarning)
            adjustments = Adjustments(**settings)
        return GuardedServer(app, sock, adjustments, runtime_of(app).connections)
    except Exception:
        sock.close()
        raise


def raise_open_file_limit(wanted: int) -> None:
    """Raise this process's soft limit on open files towards ``wanted`` (never past the hard limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    if hard != resource.RLIM_INFINITY and hard < wanted:
        logging.getLogger("camstream").warning(
            "open file limit is %d; fewer than %d viewers fit (raise it with ulimit -n)", hard, wanted)
