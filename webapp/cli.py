"""``python -m webapp`` / ``camstream``: serve cameras with waitress."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NoReturn

from camera import SourceError, create_camera
from camera.detect.spec import GATED, YOLO, parse_spec
from camera.limits import MAX_FPS, MAX_SIDE, MIN_FPS
from camera.redact import redact_url
from camera.sources.opencv import quiet_native_logs

from .app import create_app, shutdown
from .auth.state import is_loopback, proxies_and_origins, read_users
from .commands import COMMANDS
from .config import HANDOFF_MAX_VIEWERS, Settings, cameras_of, gather, max_viewers
from .configfile import LOG_LEVELS
from .lineup import reload_logged
from .mqtt import parse_broker
from .plan import make_plan
from .recording import parse_size
from .server import (
    DEFAULT_THREADS,
    RESERVED_THREADS,
    listen,
    make_server,
    raise_open_file_limit,
    streaming_settings,
)
from .service import systemd_unit
from .settings import NUMBERS, ConfigError

log = logging.getLogger("camstream")

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000


class Parser(argparse.ArgumentParser):
    """argparse, but a wrong argument is one line on stderr and exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="camstream",
        description="Serve cameras as MJPEG streams any browser can show.",
    )

    def number(key: str, **options: Any) -> None:
        setting = NUMBERS[key]
        parser.add_argument(setting.flag, type=setting.argument(), metavar="N", **options)

    parser.add_argument("--config", metavar="FILE",
                        help="read settings from this TOML file; flags and CAMSTREAM_* variables override it "
                        "(SIGHUP reads it again)")
    parser.add_argument("--check-config", action="store_true",
                        help="check the settings (file, variables and flags) and exit: 0 if they are good, else 2")
    parser.add_argument("--host", help=f"address to listen on; 0.0.0.0 for the whole LAN (default: {DEFAULT_HOST})")
    number("PORT", help=f"port to listen on, 0-65535; 0 picks a free one (default: {DEFAULT_PORT})")
    parser.add_argument("--source", help="source of the camera named 'default': auto, pattern, 0, "
                        "/dev/video0, a video file, rtsp://..., http://... (default: auto)")
    parser.add_argument("--camera", action="append", default=[], metavar="NAME=SOURCE",
                        help="add a camera; repeat for several")
    number("FPS", help=f"frame rate cap for every camera, {MIN_FPS:g}-{MAX_FPS:g}")
    number("QUALITY", help="JPEG quality 1-100 (default: 80)")
    number("WIDTH", help=f"resize frames to this width, 1-{MAX_SIDE}")
    number("HEIGHT", help=f"resize frames to this height, 1-{MAX_SIDE}")
    number("IDLE_TIMEOUT", help="seconds without viewers before a camera is released (default: 10)")
    number("THREADS", help=f"worker threads (default: {DEFAULT_THREADS})")
    number("MAX_VIEWERS", help=f"streams served at once; more get 503 (default: {HANDOFF_MAX_VIEWERS}, "
           f"or threads - {RESERVED_THREADS} with --no-handoff)")
    parser.add_argument("--detect", action="append", default=[], metavar="NAME=SPEC",
                        help="run a detector on a camera: motion, yolo:PATH.onnx or MODULE:ATTR; "
                        "SPEC alone for a one-camera server; repeat for several")
    number("DETECT_CONFIDENCE", help="lowest score a detection is kept with, 0-1 (default: 0.5)")
    parser.add_argument("--detect-classes", metavar="LABELS",
                        help="keep only these labels, comma-separated (person,car)")
    number("DETECT_FPS", help="detector runs per second at most, per camera (default: 5)")
    number("DETECT_TIMEOUT", help="seconds a detector may take on a frame before it is restarted (default: 10)")
    parser.add_argument("--record", action="append", default=[], metavar="NAME=MODE",
                        help="record a camera: 'events' (clips of what the detector finds) or 'continuous' "
                        "(everything, in segments); MODE alone for a one-camera server; repeat for several")
    parser.add_argument("--record-format", choices=["jpeg", "h264"],
                        help="jpeg: frames as captured (no CPU); h264: about 10x smaller, costs CPU "
                        "(default: jpeg)")
    parser.add_argument("--storage", metavar="DIR", help="where recordings go (default: ./camstream-data)")
    number("RETAIN_DAYS", help="delete recordings and events older than this; 0 keeps them (default: 7)")
    parser.add_argument("--max-storage", metavar="SIZE", type=_size,
                        help="most the recordings may take, e.g. 20GB; the oldest go first (default: no cap)")
    parser.add_argument("--min-free", metavar="SIZE", type=_size,
                        help="free space to leave on the disk; recording pauses below it (default: 1GB)")
    number("SEGMENT_SECONDS", help="length of a continuous recording's files (default: 60)")
    number("PRE_CAPTURE", help="seconds before an event its clip starts (default: 5)")
    number("POST_CAPTURE", help="seconds after an event its clip goes on (default: 5)")
    number("EVENT_GAP", help="seconds with nothing detected that end an event (default: 10)")
    parser.add_argument("--event-labels", metavar="LABELS",
                        help="labels that open events, comma-separated (default: any the detector reports)")
    parser.add_argument("--no-handoff", dest="handoff", action="store_false", default=None,
                        help="stream through waitress's own writes, one worker thread per viewer")
    parser.add_argument("--mqtt", metavar="URL",
                        help="publish to this MQTT broker: mqtt://[user:password@]host[:port] (mqtts:// for TLS)")
    parser.add_argument("--mqtt-prefix", metavar="TOPIC", help="topics' prefix (default: camstream)")
    parser.add_argument("--mqtt-discovery-prefix", metavar="TOPIC",
                        help="Home Assistant's discovery prefix (default: homeassistant)")
    parser.add_argument("--user", action="append", default=[], metavar="NAME:HASH[:ROLE[:CAMERAS]]",
                        help="a user who may sign in: HASH from 'camstream hash-password', ROLE admin or viewer "
                        "(default), CAMERAS the only ones a viewer sees (door,yard); repeat for several")
    parser.add_argument("--no-auth", action="store_true", default=None,
                        help="no sign-in, even beyond loopback: anyone who can reach the port watches")
    parser.add_argument("--allowed-host", action="append", default=[], metavar="NAME",
                        help="a host name camstream is reached by (IP addresses always work); repeat for several")
    parser.add_argument("--trusted-proxy", action="append", default=[], metavar="ADDR",
                        help="a reverse proxy (address or network) whose X-Forwarded-For/-Proto/-Host are believed")
    parser.add_argument("--cors-origin", action="append", default=[], metavar="ORIGIN",
                        help="a web app's origin (http://host:port) that may read the API with credentials")
    parser.add_argument("--print-systemd-unit", action="store_true",
                        help="print a systemd unit that runs camstream with the other flags given, and exit")
    parser.add_argument("--log-level", choices=LOG_LEVELS, help="(default: info)")
    return parser


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
    if args.config is not None:
        config["CONFIG"] = args.config
    cameras = list(args.camera)
    if args.source is not None:
        if cameras:
            cameras.insert(0, f"default={args.source}")
        else:
            config["SOURCE"] = args.source
    if cameras:
        config["CAMERAS"] = cameras
    if args.detect:
        config["DETECT"] = list(args.detect)
    if args.record:
        config["RECORD"] = list(args.record)
    for key in ("host", "port", "threads", "log_level", "fps", "quality", "width", "height", "idle_timeout", "max_viewers", "detect_confidence",
                "detect_classes", "detect_fps", "detect_timeout", "record_format", "storage", "retain_days",
                "max_storage", "min_free", "segment_seconds", "pre_capture", "post_capture", "event_gap",
                "event_labels", "mqtt", "mqtt_prefix", "mqtt_discovery_prefix"):
        value = getattr(args, key)
        if value is not None:
            config[key.upper()] = value
    if args.handoff is False:
        config["SOCKET_HANDOFF"] = False
    for key, values in (("USERS", args.user), ("ALLOWED_HOSTS", args.allowed_host),
                        ("TRUSTED_PROXIES", args.trusted_proxy), ("CORS_ORIGINS", args.cors_origin)):
        if values:
            config[key] = list(values)
    if args.no_auth:
        config["NO_AUTH"] = True
    return config


def server_settings(config: Mapping[str, Any]) -> tuple[str, int, int, str]:
    """Host, port, threads and log level: from a flag, a variable or the config file, else their defaults."""
    level = str(config.get("LOG_LEVEL") or "info").lower()
    if level not in LOG_LEVELS:
        raise ConfigError(f"LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}, not {level!r}")
    return (str(config.get("HOST") or DEFAULT_HOST), int(config.get("PORT", DEFAULT_PORT) or 0),
            int(config.get("THREADS") or DEFAULT_THREADS), level)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in COMMANDS:
        return COMMANDS[argv[0]](argv[1:])
    args = build_parser().parse_args(argv)
    if args.print_systemd_unit:
        print(systemd_unit([flag for flag in argv if flag != "--print-systemd-unit"]), end="")
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
        return _fail(str(exc))
    logging.basicConfig(level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if level != "debug":
        quiet_native_logs()
    if not settings.config["SOCKET_HANDOFF"] and "MAX_VIEWERS" not in settings.forced:
        # Workers beyond the streams keep the page, snapshots and status answering.
        config["MAX_VIEWERS"] = max(1, threads - RESERVED_THREADS)
    config["HOST"] = host  # which host names it answers to (see webapp/auth/)
    # The port first: a second instance must stop before it starts workers or touches the storage.
    try:
        sock = listen(host, port)
    except OSError as exc:
        return _fail(f"cannot listen on {host}:{port}: {exc.strerror or exc} (is camstream running already?)")
    try:
        app = create_app(config)
    except (SourceError, ValueError) as exc:
        sock.close()
        return _fail(str(exc))
    # Every viewer is a socket, and so is every connection waitress holds.
    viewers = max_viewers(app.config)
    raise_open_file_limit(viewers + int(streaming_settings(threads, viewers)["connection_limit"]) + 256)
    server = make_server(app, host, port, threads, sock=sock)

    cameras = cameras_of(app)
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
                      "(--user NAME:HASH, the hash from 'camstream hash-password'), or pass --no-auth to accept that")


def check(settings: Settings) -> str:
    """What ``--check-config`` says about good settings; :class:`ConfigError` or SourceError for bad ones.

    Everything is checked that can be without starting: the values, the
    cameras' names and sources (a missing file, an unknown scheme), the
    detectors' specs and the broker's URL. Devices and URLs are not opened.
    """
    plan = make_plan(settings)
    for name, camera in plan.cameras.items():
        if isinstance(camera.source, str):
            try:
                create_camera(name, camera.source, **dict(camera.options))
            except SourceError as exc:
                raise ConfigError(f"camera {name!r}: {exc}") from None
        spec = parse_spec(camera.detector.spec) if camera.detector else None
        model = spec.inner if spec and spec.kind == GATED else spec
        if model and model.kind == YOLO and not Path(model.target).is_file():
            raise ConfigError(f"camera {name!r}: detector {spec.text!r}: no such model file: {model.target}")
    if settings.config.get("MQTT"):
        parse_broker(str(settings.config["MQTT"]))
    users = read_users(settings.config, settings.users, list(plan.cameras))
    proxies_and_origins(settings.config)
    lines = [f"{settings.file or 'the settings'}: good, {len(plan.cameras)} camera(s)"]
    for name, camera in plan.cameras.items():
        options = dict(camera.options)
        parts = [redact_url(str(camera.source)), f"{options['fps']:g} fps" if options["fps"] else "source's fps",
                 f"detect {camera.detector.spec}" if camera.detector else "",
                 f"record {camera.record.mode} ({camera.record.format})" if camera.record else ""]
        lines.append(f"  {name}: " + ", ".join(part for part in parts if part))
    admins = sum(user.role == "admin" for user in users.values())
    lines.append(f"  sign-in: {len(users)} user(s), {admins} admin(s)" if users and not settings.config["NO_AUTH"]
                 else "  sign-in: none (anyone who reaches the port watches)")
    return "\n".join(lines)


def _fail(message: str) -> int:
    print(f"camstream: error: {message}", file=sys.stderr)
    return 2
