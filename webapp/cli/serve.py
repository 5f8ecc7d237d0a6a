"""``python -m webapp`` / ``camstream``: serve cameras with waitress."""

from __future__ import annotations

import logging
import signal
import sys
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from camera import SourceError
from camera.sources.opencv import quiet_native_logs
from camera.sources.packets import show_ffmpeg_logs

from ..app import create_app, shutdown
from ..auth.state import is_loopback
from ..config.layers import Settings, gather, max_viewers
from ..config.table import DEFAULTS, LOG_LEVELS, RESERVED_THREADS
from ..config.values import ConfigError, command
from ..runtime import mdns
from ..runtime.lineup import reload_logged
from ..runtime.registry import runtime_of
from ..serve.server import listen, make_server, raise_open_file_limit, streaming_settings
from .accounts import COMMANDS as ACCOUNTS
from .check import check
from .parser import build_parser, config_from_args, fail
from .systemd import systemd_unit
from .worker import worker_command

log = logging.getLogger("camstream")

COMMANDS = {**ACCOUNTS, "worker": worker_command}

def server_settings(config: Mapping[str, Any]) -> tuple[str, int, int, str]:
    """Host, port, threads and log level: from a flag, a variable or the config file, else their defaults."""
    level = str(config.get("LOG_LEVEL") or DEFAULTS["LOG_LEVEL"]).lower()
    if level not in LOG_LEVELS:
        raise ConfigError(f"LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}, not {level!r}")
    return (str(config.get("HOST") or DEFAULTS["HOST"]), int(config.get("PORT", DEFAULTS["PORT"]) or 0),
            int(config.get("THREADS") or DEFAULTS["THREADS"]), level)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in COMMANDS:
        return COMMANDS[argv[0]](argv[1:])
    args = build_parser().parse_args(argv)
    if args.print_systemd_unit:
        unit, warnings = systemd_unit([flag for flag in argv if flag != "--print-systemd-unit"])
        print(unit, end="")
        for warning in warnings:
            print(f"camstream: warning: {warning}", file=sys.stderr)
        return 0
    config = config_from_args(args)
    try:
        settings = gather(config)
        host, port, threads, level = server_settings(settings.config)
        refuse_open_network(host, settings)
        if args.check_config:
            print(check(settings))
            return 0
    except (SourceError, ValueError) as exc:
        return fail(str(exc))
    logging.basicConfig(level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if level != "debug":
        quiet_native_logs()
    else:
        show_ffmpeg_logs()
    if not settings.config["SOCKET_HANDOFF"] and "MAX_VIEWERS" not in settings.forced:
        # Workers beyond the streams keep the page, snapshots and status answering.
        config["MAX_VIEWERS"] = max(1, threads - RESERVED_THREADS)
    config["HOST"] = host  # which host names it answers to (see webapp/auth/)
    # The port first: a second instance must stop before it starts workers or touches the storage.
    try:
        sock = listen(host, port)
    except OSError as exc:
        return fail(f"cannot listen on {host}:{port}: {exc.strerror or exc} (is camstream running already?)")
    try:
        app = create_app(config)
    except (SourceError, ValueError) as exc:
        sock.close()
        return fail(str(exc))
    # Every viewer is a socket, and so is every connection waitress holds.
    viewers = max_viewers(app.config)
    raise_open_file_limit(viewers + int(streaming_settings(threads, viewers)["connection_limit"]) + 256)
    server = make_server(app, host, port, threads, sock=sock)
    mdns.start(app, host, int(server.effective_port))

    cameras = runtime_of(app).cameras
    shown = "localhost" if host in ("127.0.0.1", "::1", "localhost") else host
    if host in ("0.0.0.0", "::"):
        shown = "<this machine's address>"
    log.info("serving %d camera(s) (%s) with %d threads", len(cameras), ", ".join(cameras), threads)
    log.info("open http://%s:%d/ in a browser", shown, int(server.effective_port))

    def stop(signum: int, frame: object) -> None:
        # End the streams first: waitress, once interrupted, waits up to 5 s
        # for worker threads that are still writing them.
        log.info("shutting down")
        shutdown(app)
        raise KeyboardInterrupt

    def hangup(signum: int, frame: object) -> None:
        # Not here: the server's loop runs in this thread, and a reload waits for cameras to stop.
        threading.Thread(target=reload_logged, args=(app,), name="reload", daemon=True).start()

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGHUP, hangup)
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        shutdown(app)
        server.close()
    return 0


def refuse_open_network(host: str, settings: Settings) -> None:
    """Beyond loopback, someone must sign in, unless NO_AUTH says that anyone may watch."""
    if is_loopback(host) or settings.config.get("USERS") or settings.users or settings.config["NO_AUTH"]:
        return
    raise ConfigError(f"--host {host} lets anyone on the network watch, and no user is set up: add one "
                      f"(--user 'NAME:HASH', the hash from {command('hash-password')}), or pass --no-auth to "
                      "accept that")



