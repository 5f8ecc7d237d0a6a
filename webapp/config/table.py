"""Every setting of camstream, declared once: its name, kind, range, default, help, and where it may be given.

The rest comes from this table: the defaults (webapp/config/layers.py),
the command line's flags (webapp/cli/parser.py), the keys of a
``camstream.toml`` (webapp/config/tomlfile.py), what a reload can change
(webapp/runtime/lineup.py) and the docs' settings page
(webapp/config/docs.py). A setting's variable is ``CAMSTREAM_`` + its key,
its TOML key the key in lower case, its flag the one given here.

Every number is checked by :func:`camera.limits.checked`, so a NaN, an
infinity or a value out of range is one line naming the setting as the
user wrote it (``--fps``, ``CAMSTREAM_FPS`` or ``FPS``).
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import dataclass
from typing import Any

from camera.base import MAX_IDLE_TIMEOUT, STALL_TIMEOUT
from camera.limits import (
    MAX_FPS,
    MAX_PICTURE_PIXELS,
    MAX_PIXELS,
    MAX_SIDE,
    MIN_FPS,
    MIN_PICTURE_PIXELS,
    checked,
)
from camera.sources.hardware import KINDS as HWACCEL_KINDS

from .values import ConfigError

ENV_PREFIX = "CAMSTREAM_"

# Kinds of setting. INT and FLOAT are checked against low and high.
INT, FLOAT, TEXT, SOURCE, BOOL, NAMES, SIZE, CHOICE = "int", "float", "text", "source", "bool", "names", "size", "choice"
# Lists of NAME=VALUE (a flag repeated), which a TOML file gives as tables instead.
ENTRIES = "entries"
# A camera's zones, masks and object filters: tables and polygons, only in a file (webapp/config/zones.py).
ZONE_TABLES, POLYGONS, OBJECT_FILTERS = "zones", "polygons", "objects"

LOG_LEVELS = ("debug", "info", "warning", "error")
# With socket handoff a viewer costs a descriptor, not a thread.
HANDOFF_MAX_VIEWERS = 1000
# Without it every viewer holds a worker: stay below the default 64 threads,
# and with more threads keep this many beyond the streams for the page, snapshots and status.
THREADED_MAX_VIEWERS = 56
RESERVED_THREADS = 8
RECORD_FORMATS = ("jpeg", "h264")


@dataclass(frozen=True)
class Setting:
    """One setting.

    ``camera``: a camera table may give its own. ``reload``: SIGHUP applies
    a change (else the log says it takes a restart). ``toml``: a key of the
    file's top level. ``flag_value``: what a flag that takes no argument
    sets (``--no-auth`` sets True). ``repeat``: the flag is given once per item.
    """

    key: str
    kind: str
    default: Any
    help: str
    flag: str | None = None
    metavar: str | None = None
    low: float = 0
    high: float = 0
    choices: tuple[str, ...] = ()
    camera: bool = False
    reload: bool = True
    toml: bool = True
    repeat: bool = False
    flag_value: bool | None = None
    # The default as the help says it, where the value alone says too little.
    shown_default: str | None = None
    # What the docs' settings page says beyond the help.
    more: str = ""

    @property
    def variable(self) -> str:
        return ENV_PREFIX + self.key

    @property
    def numeric(self) -> bool:
        return self.kind in (INT, FLOAT)

    @property
    def shown(self) -> str | None:
        """The default as help texts show it; None when there is nothing to say."""
        if self.shown_default is not None:
            return self.shown_default
        if self.default is None or self.kind == BOOL:
            return None
        return f"{self.default:g}" if isinstance(self.default, float) else str(self.default)

    def parse(self, value: object, name: str | None = None) -> int | float:
        """A numeric ``value`` checked and converted; :class:`ConfigError` naming ``name`` (the key by default)."""
        try:
            return checked(name or self.key, value, int if self.kind == INT else float, self.low, self.high)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None

    def argument(self) -> Callable[[str], int | float]:
        """An argparse ``type=`` for a numeric flag: the same check, reported as argparse reports errors."""
        def convert(text: str) -> int | float:
            try:
                return checked("it", text, int if self.kind == INT else float, self.low, self.high)
            except ValueError as exc:
                raise argparse.ArgumentTypeError(str(exc).removeprefix("it ")) from None
        return convert


def _number(key: str, kind: str, low: float, high: float, default: Any, help: str, flag: bool = True,
            **more: Any) -> Setting:
    return Setting(key, kind, default, help, flag=f"--{key.lower().replace('_', '-')}" if flag else None,
                   metavar="N", low=low, high=high, **more)


def _text(key: str, default: Any, help: str, metavar: str | None = None, **more: Any) -> Setting:
    return Setting(key, more.pop("kind", TEXT), default, help, flag=more.pop("flag", f"--{key.lower().replace('_', '-')}"),
                   metavar=metavar, **more)


SETTINGS: tuple[Setting, ...] = (
    Setting("CONFIG", TEXT, None, "read settings from this TOML file; flags and CAMSTREAM_* variables override it "
            "(SIGHUP reads it again)", flag="--config", metavar="FILE", toml=False),
    # Where it listens and how it serves.
    _text("HOST", "127.0.0.1", "address to listen on; 0.0.0.0 for the whole LAN", "ADDR", reload=False,
          more="beyond loopback a user must be set up, or `--no-auth` given"),
    _number("PORT", INT, 0, 65535, 8000, "port to listen on, 0-65535; 0 picks a free one", reload=False,
            more="the log says which port a 0 picked"),
    _number("THREADS", INT, 1, 1024, 64, "worker threads", reload=False),
    _number("MAX_VIEWERS", INT, 1, 100_000, None, "streams served at once; more get 503", reload=False,
            shown_default=f"{HANDOFF_MAX_VIEWERS}, or threads - {RESERVED_THREADS} with --no-handoff"),
    Setting("SOCKET_HANDOFF", BOOL, True, "turn off the socket handoff: stream through waitress's own writes, "
            "one worker thread per viewer", flag="--no-handoff", flag_value=False, reload=False),
    _number("SNAPSHOT_TIMEOUT", FLOAT, 0, 30, 5.0, "seconds a snapshot waits for a frame", flag=False),
    _text("LOG_LEVEL", "info", "how much the log says", kind=CHOICE, choices=LOG_LEVELS, reload=False,
          more="below debug, FFmpeg's and OpenCV's own console lines are silenced: camstream logs the same "
          "trouble once, with the camera's name"),
    # The cameras and their frames.
    _text("SOURCE", "auto", "source of the camera named 'default': auto, pattern, 0, /dev/video0, a video file, "
          "rtsp://..., http://...", "SOURCE", kind=SOURCE, camera=True,
          more="see [Cameras and sources](sources.md)"),
    Setting("CAMERAS", ENTRIES, None, "add a camera; repeat for several", flag="--camera", metavar="NAME=SOURCE",
            repeat=True, toml=False, more="the variable is `name=source,name=source` (a comma inside a source is "
            "`%2C`); a file gives each camera a table `[cameras.NAME]` with its `source`"),
    _number("FPS", FLOAT, MIN_FPS, MAX_FPS, None, f"frame rate cap for every camera, {MIN_FPS:g}-{MAX_FPS:g}",
            camera=True, shown_default="the source's own",
            more="faster frames are dropped before encoding; a source running at the cap loses none"),
    _number("QUALITY", INT, 1, 100, 80, "JPEG quality 1-100", camera=True),
    _number("WIDTH", INT, 1, MAX_SIDE, None, f"resize frames to this width, 1-{MAX_SIDE}", camera=True,
            more="with one of width and height, the other keeps the aspect ratio"),
    _number("HEIGHT", INT, 1, MAX_SIDE, None, f"resize frames to this height, 1-{MAX_SIDE}", camera=True),
    _number("IDLE_TIMEOUT", FLOAT, 0, MAX_IDLE_TIMEOUT, 10.0, "seconds without viewers before a camera is released",
            camera=True),
    _number("STALL_TIMEOUT", FLOAT, 0.1, MAX_IDLE_TIMEOUT, STALL_TIMEOUT,
            "seconds without a picture before a camera's source is reopened", camera=True,
            more="raise it for a camera that sends a picture less often (a time-lapse camera); the camera's "
            "status says `no picture from the source for N s` when it happens"),
    Setting("AUDIO", BOOL, True, "turn off audio: leave a camera's AAC audio out of its passed-through H.264 or "
            "H.265 video (by default it goes along)", flag="--no-audio",
            flag_value=False, camera=True, more="other audio codecs are left out, and the camera's status says so"),
    _text("HWACCEL", "none", "decode a camera's H.264/H.265 pictures on this device (FFmpeg's); auto takes the first "
          "that works", kind=CHOICE, choices=HWACCEL_KINDS, camera=True,
          more="only pictures are decoded (MJPEG viewers, detection); a device that does not work here means "
          "software, said once in the log and in the camera's status (`video.decoding`)"),
    _number("MAX_PICTURE_PIXELS", INT, MIN_PICTURE_PIXELS, MAX_PICTURE_PIXELS, MAX_PIXELS,
            "the biggest picture a camera's stream may claim, in pixels (8K, 7680x4320, is 33177600)",
            camera=True, shown_default=str(MAX_PIXELS),
            more="a stream (RTSP, a network stream, a video file) whose pictures are bigger is refused before "
            "anything is allocated for them: the camera stays down and its status says the size"),
    # Detection.
    Setting("DETECT", ENTRIES, None, "run a detector on a camera: motion, yolo:PATH.onnx or MODULE:ATTR; "
            "SPEC alone for a one-camera server; repeat for several", flag="--detect", metavar="NAME=SPEC",
            repeat=True, camera=True, more="options as `?name=value`; `motion+` before a model runs it only on "
            "motion; the variable is `name=spec,name=spec` (see [Detection](detection.md))"),
    Setting("DETECT_SOURCE", ENTRIES, None, "a camera's second, smaller stream to detect on (an IP camera's "
            "sub-stream); SOURCE alone for a one-camera server", flag="--detect-source", metavar="NAME=SOURCE",
            repeat=True, camera=True, more="detection, motion and events use it, viewers and recording the main "
            "stream; boxes are given in the main stream's pixels (see [Detection](detection.md))"),
    _number("DETECT_CONFIDENCE", FLOAT, 0, 1, 0.5, "lowest score a detection is kept with, 0-1", camera=True),
    _text("DETECT_CLASSES", None, "keep only these labels, comma-separated (person,car)", "LABELS", kind=NAMES,
          camera=True),
    _number("DETECT_FPS", FLOAT, 0.1, MAX_FPS, 5.0, "detector runs per second at most, per camera", camera=True),
    # Tracking, zones, masks and filters: checked by webapp/config/zones.py, followed by camera/track/.
    Setting("ZONES", ZONE_TABLES, None, "named areas of a camera's picture: [cameras.NAME.zones.ZONE] with "
            "coordinates, objects, min_seconds", camera=True, shown_default="none",
            more="see [Tracking, zones and masks](detection.md#tracking-zones-and-masks)"),
    Setting("OBJECT_MASK", POLYGONS, None, "polygons where no object counts (where a box's bottom centre is)",
            camera=True, shown_default="none"),
    Setting("MOTION_MASK", POLYGONS, None, "polygons where no motion counts (a clock burned into the picture)",
            camera=True, shown_default="none"),
    Setting("REQUIRED_ZONES", NAMES, None, "events only for objects that entered one of these zones", camera=True),
    Setting("OBJECTS", OBJECT_FILTERS, None, "per label: [cameras.NAME.objects.LABEL] with min_score, min_area, "
            "max_area", camera=True, shown_default="none"),
    _number("MIN_FRAMES", INT, 1, 1000, 3, "detections of an object before its track counts", flag=False,
            camera=True),
    _number("LOST_SECONDS", FLOAT, 0.1, 3600, 3.0, "seconds unseen before an object's track ends", flag=False,
            camera=True),
    _number("STATIONARY_SECONDS", FLOAT, 0, 86400, 10.0, "seconds without moving before an object is stationary "
            "(it keeps no event open)", flag=False, camera=True),
    _number("DETECT_TIMEOUT", FLOAT, 0.1, 3600, 10.0,
            "seconds a detector may take on a frame before it is restarted", camera=True),
    _number("REMOTE_TIMEOUT", FLOAT, 0.05, 60, 2.0, "seconds a remote:GROUP worker has to answer a frame; a later "
            "answer is dropped and counted", camera=True),
    _number("REMOTE_IN_FLIGHT", INT, 1, 16, 2, "frames a camera has out to remote workers at once; newer frames "
            "wait for a place, the newest first", camera=True),
    _text("BROKER", None, "the NATS server remote:GROUP detectors and workers meet at: "
          "nats://[user:password@]host[:port][?nkey=PATH] (tls:// for TLS)", "URL", reload=False,
          more="needs the nats extra, `pip install '.[nats]'` (see [Detection](detection.md#detectors-on-other-"
          "machines))"),
    Setting("PEERS", ENTRIES, None, "serve the cameras of another camstream as NAME.CAMERA, each relayed once "
            "whoever watches; URL http://[user:password@]host:port[?token=...]; repeat for several",
            flag="--peer", metavar="NAME=URL", repeat=True,
            more="in a config file also `[peers.NAME]` tables, each with `url` and a `token`, or a `user` and "
            "`password`, of that box; the credential is masked wherever the hub shows the URL (see "
            "[Scaling](scaling.md#several-boxes-a-hub))"),
    Setting("MDNS", BOOL, True, "turn off mDNS: neither announce this box (_camstream._tcp) on the interfaces it "
            "listens on nor list the boxes found for an admin to add", flag="--no-mdns", flag_value=False,
            reload=False, more="see [Scaling](scaling.md#finding-boxes)"),
    # Recording.
    Setting("RECORD", ENTRIES, None, "record a camera: 'events' (clips of what the detector finds) or 'continuous' "
            "(everything, in segments); MODE alone for a one-camera server; repeat for several", flag="--record",
            metavar="NAME=MODE", repeat=True, camera=True,
            more="a camera table says `none` to have none (see [Recording and events](recording.md))"),
    _text("RECORD_FORMAT", "jpeg", "jpeg: frames as captured (no CPU); h264: about 10x smaller, costs CPU",
          kind=CHOICE, choices=RECORD_FORMATS, camera=True),
    Setting("RECORD_COPY", BOOL, True, "turn off recording by copy: record a camera's own H.264/H.265 decoded and "
            "encoded in --record-format, not as it came (by default it is copied: no decode, no encode)",
            flag="--no-record-copy", flag_value=False, camera=True,
            more="turned off, such a camera is decoded and recorded in --record-format, as any other: smaller "
            "files from a camera of a high bitrate, at the cost of decoding and encoding every frame"),
    _text("STORAGE", "camstream-data", "where recordings go", "DIR", reload=False, shown_default="./camstream-data"),
    _number("RETAIN_DAYS", FLOAT, 0, 36500, 7.0, "delete recordings and events older than this; 0 keeps them",
            reload=False),
    _text("MAX_STORAGE", None, "most the recordings may take, e.g. 20GB; the oldest go first", "SIZE", kind=SIZE,
          reload=False, shown_default="no cap"),
    _text("MIN_FREE", "1GB", "free space to leave on the disk; recording pauses below it", "SIZE", kind=SIZE,
          reload=False),
    _number("SEGMENT_SECONDS", FLOAT, 1, 3600, 60.0, "length of a continuous recording's files", camera=True),
    _number("PRE_CAPTURE", FLOAT, 0, 60, 5.0, "seconds before an event its clip starts", camera=True),
    _number("POST_CAPTURE", FLOAT, 0, 300, 5.0, "seconds after an event its clip goes on", camera=True),
    _number("EVENT_GAP", FLOAT, 0.1, 3600, 10.0, "seconds with nothing detected that end an event", camera=True),
    _number("EVENT_MAX_LENGTH", FLOAT, 1, 86400, 300.0, "longest an event runs, in seconds; a longer one is closed "
            "and the next goes on from it", camera=True,
            more="so a scene that never stops moving gives clips of a bounded length; the next event's "
            "`continues` names the one it goes on from"),
    _text("EVENT_LABELS", None, "labels that open events, comma-separated", "LABELS", kind=NAMES, camera=True,
          shown_default="any the detector reports"),
    # MQTT.
    _text("MQTT", None, "publish to this MQTT broker: mqtt://[user:password@]host[:port] (mqtts:// for TLS)", "URL",
          reload=False),
    _text("MQTT_PREFIX", "camstream", "topics' prefix", "TOPIC", reload=False),
    _text("MQTT_DISCOVERY_PREFIX", "homeassistant", "Home Assistant's discovery prefix", "TOPIC", reload=False),
    # Who may watch.
    Setting("USERS", ENTRIES, None, "a user who may sign in: HASH from 'camstream hash-password', ROLE admin or "
            "viewer (default), CAMERAS the only ones a viewer sees (door,yard); repeat for several",
            flag="--user", metavar="NAME:HASH[:ROLE[:CAMERAS]]", repeat=True, toml=False,
            more="the variable holds them space-separated; a file gives `[users.NAME]` tables with `password_hash`, "
            "`role`, `cameras` (see [Access control](access.md))"),
    Setting("NO_AUTH", BOOL, False, "turn off sign-in, even beyond loopback: anyone who can reach the port watches",
            flag="--no-auth", flag_value=True),
    _text("SECRET_KEY", None, "the key that signs session cookies", flag=None, reload=False,
          shown_default="made once, kept in the storage"),
    Setting("ALLOWED_HOSTS", NAMES, None, "a host name camstream is reached by (IP addresses always work); "
            "repeat for several", flag="--allowed-host", metavar="NAME", repeat=True, reload=False,
            shown_default="IP addresses, localhost, and beyond loopback this machine's name", more="`*` for any"),
    Setting("TRUSTED_PROXIES", NAMES, None, "a reverse proxy (address or network) whose X-Forwarded-For/-Proto/-Host "
            "are believed", flag="--trusted-proxy", metavar="ADDR", repeat=True, reload=False),
    Setting("CORS_ORIGINS", NAMES, None, "a web app's origin (http://host:port) that may read the API with "
            "credentials", flag="--cors-origin", metavar="ORIGIN", repeat=True, reload=False),
    _number("SESSION_LIFETIME", FLOAT, 1, 366 * 24 * 3600, 7 * 24 * 3600.0, "seconds a sign-in lasts", flag=False,
            reload=False),
    _number("LOGIN_ATTEMPTS", INT, 1, 1000, 5, "failed sign-ins before a user is locked out from an address",
            flag=False, reload=False, more="within `LOCKOUT_SECONDS`; an address alone gets 4 times as many"),
    _number("LOCKOUT_SECONDS", FLOAT, 1, 24 * 3600, 300.0, "how long a lockout lasts", flag=False, reload=False),
    # WebRTC (WHEP).
    Setting("WEBRTC_ICE_SERVERS", NAMES, None, "a STUN or TURN server for WebRTC: stun:HOST[:PORT] or "
            "turn:USER:CREDENTIAL@HOST[:PORT][?transport=udp|tcp]; repeat for several", flag="--webrtc-ice-server",
            metavar="URL", repeat=True, reload=False, shown_default="none: host candidates only (the LAN)",
            more="handed to the server's ICE and to the page's player (a TURN credential reaches whoever may "
            "watch); see [WebRTC](live.md#webrtc-whep)"),
    _text("WEBRTC_PORTS", None, "UDP ports WebRTC may use, LOW-HIGH (a peer connection takes one per address "
          "of the machine)", "LOW-HIGH", reload=False, shown_default="any the system gives"),
    # For embedding: a source or detector that can never work (a missing file or model) raises rather than
    # leaving its camera or detector failed while the others serve. The command line always sets it.
    Setting("STRICT_SOURCES", BOOL, False, "a source or detector that can never work stops the start", toml=False,
            more="rather than leaving its camera or detector `failed` while the others serve; the command line "
            "always sets it"),
    # Flask's own cap on request bodies, for servers other than ours; no endpoint takes more than a few KB.
    Setting("MAX_CONTENT_LENGTH", INT, 64 * 1024, "largest request body, bytes", low=1, high=2**30, toml=False),
)

BY_KEY: dict[str, Setting] = {setting.key: setting for setting in SETTINGS}
DEFAULTS: dict[str, Any] = {setting.key: setting.default for setting in SETTINGS}
NUMBERS: dict[str, Setting] = {setting.key: setting for setting in SETTINGS if setting.numeric}
# What a camera table may give, and what the file's top level may.
CAMERA_KEYS: dict[str, Setting] = {setting.key.lower(): setting for setting in SETTINGS if setting.camera}
GLOBAL_KEYS: dict[str, Setting] = {setting.key.lower(): setting for setting in SETTINGS if setting.toml}
# Read once, when the app starts.
RESTART_KEYS: tuple[str, ...] = tuple(setting.key for setting in SETTINGS if not setting.reload)


def check_numbers(config: MutableMapping[str, Any], given: Mapping[str, Any] | None) -> None:
    """Check every numeric setting in ``config`` and store it converted; None and "" take the default.

    ``given`` is the mapping passed to create_app: a wrong value from it is
    reported by its key, one from the environment by its variable.
    """
    for key, number in NUMBERS.items():
        if key not in config:
            continue
        value = config[key]
        if value is None or value == "":
            config[key] = number.default
            continue
        if (given is None or key not in given) and number.variable in os.environ:
            # Flask parsed the variable as JSON ("Infinity" is a float there); check what was written.
            config[key] = number.parse(os.environ[number.variable], number.variable)
        else:
            config[key] = number.parse(value, key)
