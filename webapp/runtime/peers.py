"""A hub's peers: other camstream boxes whose cameras the hub serves as its own, named ``PEER.CAMERA``.

``--peer NAME=URL`` (repeatable; ``CAMSTREAM_PEERS="a=URL,b=URL"``; a file's
``peers = "a=URL"`` or ``[peers.NAME]`` tables with ``url`` and a ``token``
or a ``user`` and ``password``) names a peer. The URL may carry the peer's
credential as ``http://user:password@host:port`` (HTTP Basic, a user of the
peer) or ``?token=...``; both are masked wherever the hub shows the URL
(camera/redact.py). Each peer's events are followed too, when the hub gives
its event log (webapp/runtime/peer_events.py). One thread per peer asks its ``/api/cameras`` every
:data:`POLL_SECONDS` (bounded in time and size) and keeps the hub's
cameras of that peer in step: a new camera is added, a gone one removed,
and a peer that does not answer keeps its cameras, shown down
(camera/sources/peer.py), until it answers again. Nothing here runs
unless a peer is given.
"""

from __future__ import annotations

import http.client
import json
import logging
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from camera.events import EventLog
from camera.redact import Redactor, redact_url, split_userinfo
from camera.sources.peer import PeerCamera, PeerHealth, stream_url
from camera.sources.relay import opener, split_credentials

from ..config.values import NAME_PATTERN, ConfigError
from .peer_events import PeerAccess, PeerEventStream

log = logging.getLogger("camstream.peers")

POLL_SECONDS = 2.0
# Connect and read timeout of one poll: a dead or slow peer is found down within a poll and this.
POLL_TIMEOUT = 3.0
# A peer's /api/cameras is a few KB per camera; more than this is not a camstream's answer.
MAX_CAMERAS_JSON = 1024 * 1024
MAX_PEER_CAMERAS = 256
# A peer's events that go to the hub's MQTT too, as a local recorder's do (detections do not: no sensors of its own).
MQTT_KINDS = ("event_start", "event_end")


@dataclass(frozen=True)
class PeerSpec:
    """A peer as the settings give it: its name and its base URL (with its credential, never shown)."""

    name: str
    url: str

    @property
    def shown(self) -> str:
        return redact_url(self.url)


def parse_peers(value: object) -> dict[str, PeerSpec]:
    """``PEERS`` as peers by name: ``"a=URL,b=URL"``, a list of ``NAME=URL`` or a mapping of name to
    URL or to ``{url, token}``; :class:`ConfigError` naming the first thing wrong (never a secret)."""
    if not value:
        return {}
    if isinstance(value, Mapping):
        pairs = [(str(name), _url_of(str(name), entry)) for name, entry in value.items()]
    else:
        items = value.split(",") if isinstance(value, str) else list(value)  # type: ignore[call-overload]
        pairs = []
        for item in items:
            name, sep, url = str(item).strip().partition("=")
            if not str(item).strip():
                continue
            if not sep or not url.strip():
                raise ConfigError(f"peer {redact_url(name.strip())!r} is not NAME=URL")
            pairs.append((name.strip(), url.strip()))
    peers: dict[str, PeerSpec] = {}
    for name, url in pairs:
        if not NAME_PATTERN.fullmatch(name):
            raise ConfigError(f"peer name {name!r} must start with an ASCII letter or digit, followed by up to "
                              "63 ASCII letters, digits, '-' or '_'")
        if name in peers:
            raise ConfigError(f"peer {name!r} is given twice")
        parts = urlsplit(url)
        if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
            raise ConfigError(f"peer {name!r}: {redact_url(url)} is not an http:// or https:// URL")
        peers[name] = PeerSpec(name, url)
    return peers


def _url_of(name: str, entry: object) -> str:
    if isinstance(entry, str):
        return entry
    if isinstance(entry, Mapping) and isinstance(entry.get("url"), str):
        url, token, user = entry["url"], entry.get("token"), entry.get("user")
        parts = urlsplit(url)
        if user is not None:
            if split_userinfo(url) is not None:
                raise ConfigError(f"peer {name!r}: a user and password in the table, or in the url, not both")
            userinfo = f"{quote(str(user), safe='')}:{quote(str(entry.get('password', '')), safe='')}@"
            parts = parts._replace(netloc=userinfo + parts.netloc)
        if token is not None:
            parts = parts._replace(query=urlencode([*parse_qsl(parts.query), ("token", str(token))]))
        return urlunsplit(parts)
    raise ConfigError(f"peer {name!r} must be a URL or a table with url (and token, or user and password)")


def _split(url: str) -> tuple[str, str]:
    """``(base URL without its query, its query)``: the query (a token) goes on every URL asked of the peer."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(query="", fragment="")), parts.query


class PeerLink:
    """One peer: its poll thread, its health, and the hub cameras it made."""

    def __init__(self, spec: PeerSpec, lock: threading.Lock, add: Callable[[list[PeerCamera]], None],
                 remove: Callable[[list[str]], None], options: Mapping[str, object],
                 publish: Callable[[str, str, dict], object] | None = None) -> None:
        self.spec = spec
        self._lock = lock
        self.health = PeerHealth(spec.name)
        self.cameras: dict[str, str] = {}  # hub name -> the peer's name
        self.made: dict[str, PeerCamera] = {}  # hub name -> the camera, told what each poll finds of it
        self._add, self._remove, self._options = add, remove, dict(options)
        self._base, self._query = _split(spec.url)
        self._redactor = Redactor(spec.url)
        self.access = PeerAccess(spec.name, self._base, self._query, self._redactor)
        # The peer's events pushed into the hub's log, when the hub has one (webapp/runtime/peer_events.py).
        self.events = PeerEventStream(self.access, publish) if publish is not None else None
        self.stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"peer-{spec.name}", daemon=True)

    def start(self) -> None:
        self._thread.start()
        if self.events is not None:
            self.events.start()

    def stop(self) -> None:
        """Stop polling (the thread ends by itself; its cameras are removed by whoever stops it)."""
        self.stopped.set()
        if self.events is not None:
            self.events.stop()

    def _run(self) -> None:
        while not self.stopped.is_set():
            self.poll()
            self.stopped.wait(POLL_SECONDS)

    def poll(self) -> None:
        """Ask the peer for its cameras once and bring the hub's in step; a failure marks the peer down."""
        try:
            entries = self._cameras()
        except PeerError as exc:
            if self.health.set(False, str(exc)):
                log.warning("peer %s (%s) is down: %s", self.spec.name, self.spec.shown, exc)
            return
        if self.health.set(True):
            log.info("peer %s (%s) is up: %d camera(s)", self.spec.name, self.spec.shown, len(entries))
        wanted = {f"{self.spec.name}.{name}": name for name in entries}
        gone = [hub for hub in self.cameras if hub not in wanted]
        new = [PeerCamera(hub, stream_url(self._base, name, self._query), self.health, name,
                          media_url=stream_url(self._base, name, self._query, route="mse"), **self._options)
               for hub, name in wanted.items() if hub not in self.cameras]
        for camera in new:
            camera.note(entries[camera.remote_name])
        with self._lock:  # the lineup's: a reload that stops this peer removes exactly what it added
            if self.stopped.is_set():
                return
            if gone:
                self._remove(gone)
            self.cameras = wanted  # before adding: the hub lists its cameras in this order
            if new:
                self._add(new)
            self.made.update({camera.name: camera for camera in new})
            for hub in gone:
                self.made.pop(hub, None)
        for hub, camera in list(self.made.items()):
            camera.note(entries.get(camera.remote_name, {}))

    def _cameras(self) -> dict[str, dict]:
        url, headers = split_credentials(self._base + "/api/cameras" + (f"?{self._query}" if self._query else ""))
        headers.update({"User-Agent": "camstream-hub", "Accept": "application/json"})
        try:
            with opener.open(urllib.request.Request(url, headers=headers), timeout=POLL_TIMEOUT) as response:
                body = response.read(MAX_CAMERAS_JSON + 1)
        except urllib.error.HTTPError as exc:
            exc.close()
            raise PeerError(f"it answered HTTP {exc.code} {exc.reason}") from None
        except http.client.HTTPException as exc:  # not HTTP at all (urllib does not wrap it)
            raise PeerError(f"it answered garbage ({type(exc).__name__})") from None
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
            raise PeerError(f"could not reach it: {self._redactor.redact(str(reason))}") from None
        if len(body) > MAX_CAMERAS_JSON:
            raise PeerError(f"its camera list is over {MAX_CAMERAS_JSON} bytes")
        try:
            cameras = json.loads(body)["cameras"]
            names = [camera["name"] for camera in cameras]
            if not all(isinstance(camera, dict) for camera in cameras):
                raise TypeError
        except (ValueError, KeyError, TypeError):
            raise PeerError("its camera list is not a camstream's JSON") from None
        if len(names) > MAX_PEER_CAMERAS:
            raise PeerError(f"it has over {MAX_PEER_CAMERAS} cameras")
        bad = next((name for name in names if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name)), None)
        if bad is not None:
            raise PeerError(f"it names a camera {str(bad)[:70]!r}, which is not a camera name")
        return {camera["name"]: camera for camera in cameras}


class EventPublisher(Protocol):
    """What a peer's events are handed to besides the event log (webapp/integrations/mqtt.py's publisher)."""

    def publish_event(self, kind: str, event: dict) -> None: ...


class PeerError(Exception):
    """Why a peer could not be asked; the message names no secret."""


class Peers:
    """Every peer of a hub; :meth:`update` applies a change of ``PEERS`` (start, reload).

    ``add`` and ``remove`` change the hub's cameras; they are called with ``lock`` (the lineup's) held.
    """

    def __init__(self, lock: threading.Lock, add: Callable[[list[PeerCamera]], None],
                 remove: Callable[[list[str]], None]) -> None:
        self._lock, self._add, self._remove = lock, add, remove
        self.links: dict[str, PeerLink] = {}
        # The hub's event log, which the peers' events are pushed into; set before the first update.
        self.events: EventLog | None = None
        # The hub's MQTT publisher, which a peer's event_start and event_end go to as well (set with events).
        self.mqtt: EventPublisher | None = None

    def update(self, specs: Mapping[str, PeerSpec], options: Mapping[str, object]) -> None:
        """Stop the peers no longer given (or given anew), removing their cameras, and start the new ones.

        Called with the lineup's lock held: it never waits for a poll thread.
        """
        for name in [name for name, link in self.links.items() if specs.get(name) != link.spec]:
            link = self.links.pop(name)
            link.stop()
            if link.cameras:
                self._remove(list(link.cameras))
            log.info("peer %s removed", name)
        for name, spec in specs.items():
            if name not in self.links:
                publish = self._publish if self.events is not None or self.mqtt is not None else None
                link = self.links[name] = PeerLink(spec, self._lock, self._add, self._remove, options, publish)
                log.info("peer %s: %s", name, spec.shown)
                link.start()

    def _publish(self, kind: str, camera: str, data: dict) -> None:
        """A peer's event (renamed, webapp/runtime/peer_events.py) told as the hub's own: in its event log
        (``/events``, ``/ws``) and, for an event's start and end, on its MQTT like a recorder's."""
        if self.events is not None:
            self.events.publish(kind, camera, data)
        if self.mqtt is not None and kind in MQTT_KINDS:
            self.mqtt.publish_event(kind, data)

    def accesses(self) -> list[PeerAccess]:
        """How to ask each peer (its events, their files)."""
        return [link.access for link in list(self.links.values())]

    def access(self, name: str) -> PeerAccess | None:
        link = self.links.get(name)
        return link.access if link is not None else None

    def names(self) -> list[str]:
        """The hub cameras of every peer, peer by peer."""
        return [name for link in self.links.values() for name in link.cameras]

    def stop(self) -> None:
        for link in self.links.values():
            link.stop()
