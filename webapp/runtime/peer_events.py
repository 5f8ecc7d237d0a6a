"""A hub's peers' events: pushed as they happen, listed with the hub's own, their snapshots and clips fetched.

Each peer's ``/events`` (Server-Sent Events) is read once, by a thread of
its own (:class:`PeerEventStream`), and its detections and the opening and
closing of its events are published again in the hub's event log, camera
named ``PEER.CAMERA`` and event ids ``PEER.ID``: the hub's ``/events``,
``/ws`` and whatever follows its log push them like the hub's own. Its
``state`` and ``status`` events are not: the hub's camera of the peer
makes its own. A reconnect sends ``Last-Event-ID``, so nothing is missed
or pushed twice while the peer keeps it.

``/api/events`` at the hub asks each peer's (:func:`listed`) in parallel,
bounded in time and size, and merges them with its own, newest first. A
peer event's snapshot and clip are fetched from the peer when asked
(:func:`fetch_file`) and handed on as they come, never kept at the hub.
A peer that is down or slow is left out of a list, never stalls it.
"""

from __future__ import annotations

import http.client
import json
import logging
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Collection, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import quote, urlencode

from flask import Response, abort

from camera.redact import Redactor
from camera.sources.relay import opener, split_credentials

from ..config.values import NAME_PATTERN

log = logging.getLogger("camstream.peers")

# The kinds of a peer's events pushed again at the hub.
RELAYED = ("detection", "event_start", "event_end")
# A peer sends a status event every 2 s while read; this long with nothing and the stream is opened again.
STREAM_TIMEOUT = 15.0
RETRY_SECONDS = (1.0, 2.0, 5.0, 10.0, 30.0)
MAX_LINE = 256 * 1024
MAX_EVENT = 1024 * 1024
# Asking a peer for its events, or for a stored file's first bytes.
LIST_TIMEOUT = 3.0
MAX_LIST_JSON = 8 * 1024 * 1024
FILE_TIMEOUT = 10.0
CHUNK = 64 * 1024


class PeerRequestError(Exception):
    """A peer could not be asked; the message names no secret. ``status``: the peer's HTTP status, if it answered."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class PeerAccess:
    """How the hub asks one peer: its name, base URL (with its credential) and query (a token), and what masks
    them in anything shown."""

    name: str
    base: str
    query: str
    redactor: Redactor

    def url(self, path: str, params: Mapping[str, str] | None = None) -> str:
        query = "&".join(part for part in (self.query, urlencode(params or {})) if part)
        return self.base.rstrip("/") + path + (f"?{query}" if query else "")

    def open(self, path: str, params: Mapping[str, str] | None = None, timeout: float = LIST_TIMEOUT,
             headers: Mapping[str, str] | None = None):  # type: ignore[no-untyped-def]
        """A response from the peer; :class:`PeerRequestError` (why, without secrets) for any failure."""
        url, sent = split_credentials(self.url(path, params))
        sent.update({"User-Agent": "camstream-hub", **(headers or {})})
        try:
            return opener.open(urllib.request.Request(url, headers=sent), timeout=timeout)
        except urllib.error.HTTPError as exc:
            exc.close()
            raise PeerRequestError(f"peer {self.name} answered HTTP {exc.code}", exc.code) from None
        except http.client.HTTPException as exc:  # what urllib does not wrap: an answer that is not HTTP
            raise PeerRequestError(f"peer {self.name} answered garbage ({type(exc).__name__})") from None
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = self.redactor.redact(str(getattr(exc, "reason", exc)))
            raise PeerRequestError(f"could not reach peer {self.name}: {reason}") from None


def renamed(peer: str, kind: str, data: Mapping[str, Any]) -> dict[str, Any] | None:
    """A peer's event as the hub tells it: camera ``PEER.CAMERA``, event id ``PEER.ID`` and the hub's URLs of
    its snapshot and clip; None for one that names no camera a peer may have."""
    camera = data.get("camera")
    if not isinstance(camera, str) or not NAME_PATTERN.fullmatch(camera):
        return None
    found = {**data, "camera": f"{peer}.{camera}", "peer": peer}
    event_id = data.get("id") if kind != "detection" else None
    if kind != "detection":
        if not isinstance(event_id, int) or isinstance(event_id, bool) or event_id < 0:
            return None
        hub_id = f"{peer}.{event_id}"
        found.update(id=hub_id, snapshot=f"/api/events/{hub_id}/snapshot.jpg", clip=f"/api/events/{hub_id}/clip.mp4")
        if isinstance(data.get("continues"), int):
            found["continues"] = f"{peer}.{data['continues']}"
    return found


class PeerEventStream:
    """A peer's ``/events``, read on a thread of its own and handed, renamed, to ``publish(kind, camera, data)``."""

    def __init__(self, access: PeerAccess, publish: Callable[[str, str, dict[str, Any]], None]) -> None:
        self.access = access
        self._publish = publish
        self.stopped = threading.Event()
        self.last_id: str | None = None
        self.relayed = 0
        self.connected = False
        self._thread = threading.Thread(target=self._run, name=f"peer-events-{access.name}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop; the thread ends with its next line or timeout, and publishes nothing from now on."""
        self.stopped.set()

    def _run(self) -> None:
        failures = 0
        while not self.stopped.is_set():
            try:
                self._read()
                failures = 0
            except PeerRequestError as exc:
                log.debug("%s: events: %s", self.access.name, exc)
                failures += 1
            except (OSError, ValueError) as exc:
                log.debug("peer %s: its events stream ended: %s", self.access.name, self.access.redactor.redact(str(exc)))
                failures += 1
            self.connected = False
            self.stopped.wait(RETRY_SECONDS[min(failures, len(RETRY_SECONDS) - 1)])

    def _read(self) -> None:
        headers = {"Accept": "text/event-stream"}
        if self.last_id is not None:
            headers["Last-Event-ID"] = self.last_id
        response = self.access.open("/events", timeout=STREAM_TIMEOUT, headers=headers)
        try:
            if not response.headers.get("Content-Type", "").startswith("text/event-stream"):
                raise PeerRequestError(f"peer {self.access.name}'s /events is not an event stream")
            self.connected = True
            for event_id, kind, data in _records(response):
                if self.stopped.is_set():
                    return
                if event_id is not None:
                    self.last_id = event_id
                if kind in RELAYED:
                    self._relay(kind, data)
        finally:
            response.close()

    def _relay(self, kind: str, text: str) -> None:
        try:
            data = json.loads(text)
        except ValueError:
            return
        if not isinstance(data, dict):
            return
        data.pop("event", None)  # the log adds the kind again
        found = renamed(self.access.name, kind, data)
        if found is not None and not self.stopped.is_set():
            self._publish(kind, found["camera"], found)
            self.relayed += 1


def _records(stream: Any) -> Iterator[tuple[str | None, str, str]]:
    """Server-Sent Events records as ``(id, event, data)``, each line and record bounded."""
    event_id: str | None = None
    kind, data, size = "message", [], 0
    while True:
        line = stream.readline(MAX_LINE + 1)
        if not line:
            return
        if len(line) > MAX_LINE:
            raise ValueError("a line of its events is too long")
        text = line.decode("utf-8", "replace").rstrip("\r\n")
        if not text:
            if data:
                yield event_id, kind, "\n".join(data)
            kind, data, size = "message", [], 0
            continue
        field, _, value = text.partition(":")
        value = value.removeprefix(" ")
        if field == "id":
            event_id = value[:40]
        elif field == "event":
            kind = value[:40]
        elif field == "data":
            size += len(value)
            if size > MAX_EVENT:
                raise ValueError("an event is too large")
            data.append(value)


# -- listing and fetching ----------------------------------------------------


def listed(accesses: Collection[PeerAccess], params: Mapping[str, str], limit: int,
           visible: Collection[str] | None) -> list[dict[str, Any]]:
    """The peers' events for ``/api/events`` (``params``: camera, label, zone, after, before), renamed, those of
    cameras the requester may see only; a peer that fails is left out. ``camera`` names a hub camera."""
    camera = params.get("camera")
    asked = {access.name: dict(params) for access in accesses}
    if camera:
        peer, dot, remote = camera.partition(".")
        asked = {peer: {**params, "camera": remote}} if dot and peer in asked else {}
    by_name = {access.name: access for access in accesses}
    if not asked:
        return []

    def ask(name: str) -> list[dict[str, Any]]:
        try:
            return _events_of(by_name[name], {**asked[name], "limit": str(limit)})
        except PeerRequestError as exc:
            log.debug("events of %s", exc)
            return []

    with ThreadPoolExecutor(max_workers=min(8, len(asked)), thread_name_prefix="peer-events-list") as pool:
        found = [event for events in pool.map(ask, list(asked)) for event in events]
    return [event for event in found if visible is None or event["camera"] in visible]


def _events_of(access: PeerAccess, params: Mapping[str, str]) -> list[dict[str, Any]]:
    events = list_of(access, "/api/events", params, "events")
    found = [renamed(access.name, "event", event) for event in events]
    return [event for event in found if event is not None and isinstance(event.get("start"), int | float)]


def list_of(access: PeerAccess, path: str, params: Mapping[str, str], key: str) -> list[dict[str, Any]]:
    """The objects of the list ``key`` of a peer's JSON at ``path`` (``/api/events``: ``events``), read
    within MAX_LIST_JSON bytes; a PeerRequestError, naming no credential, for anything else."""
    response = access.open(path, {name: value for name, value in params.items() if value})
    try:
        body = response.read(MAX_LIST_JSON + 1)
    except (OSError, http.client.HTTPException) as exc:
        raise PeerRequestError(f"peer {access.name}: {access.redactor.redact(str(exc))}") from None
    finally:
        response.close()
    if len(body) > MAX_LIST_JSON:
        raise PeerRequestError(f"peer {access.name}'s {key} are over {MAX_LIST_JSON} bytes")
    try:
        found = json.loads(body)[key]
        if not isinstance(found, list):
            raise TypeError
    except (ValueError, KeyError, TypeError):
        raise PeerRequestError(f"peer {access.name}'s {key} are not a camstream's JSON") from None
    return [item for item in found if isinstance(item, dict)]


def merged(local: list[dict[str, Any]], remote: list[dict[str, Any]], limit: int) -> list[dict[str, Any]]:
    """One timeline, newest first, at most ``limit``."""
    return sorted(local + remote, key=lambda event: event["start"], reverse=True)[:limit]


def split_id(hub_id: str) -> tuple[str, int] | None:
    """``PEER.ID`` as ``(peer, id)``; None for anything else."""
    peer, dot, number = hub_id.partition(".")
    if not dot or not NAME_PATTERN.fullmatch(peer) or not (number.isascii() and number.isdigit()) or len(number) > 18:
        return None
    return peer, int(number)


def fetch_file(access: PeerAccess, event_id: int, file: str, params: Mapping[str, str],
               visible: Collection[str] | None) -> tuple[int, str, dict[str, str], Iterator[bytes]]:
    """A peer event's ``snapshot.jpg`` or ``clip.mp4`` as ``(status, content type, headers, body)``, the body
    read from the peer as it is sent on. The event's camera is looked up first, so a requester who may not
    see it gets the 404 of an event that is not there. :class:`PeerRequestError` when the peer fails."""
    response = access.open(f"/api/events/{event_id}")
    try:
        event = json.loads(response.read(MAX_EVENT + 1))
    except (ValueError, OSError, http.client.HTTPException):
        raise PeerRequestError(f"peer {access.name}'s event is not a camstream's JSON") from None
    finally:
        response.close()
    camera = event.get("camera") if isinstance(event, dict) else None
    if not isinstance(camera, str) or (visible is not None and f"{access.name}.{camera}" not in visible):
        raise PeerRequestError(f"no event {access.name}.{event_id}", 404)
    response = access.open(f"/api/events/{event_id}/{quote(file)}", params, timeout=FILE_TIMEOUT)
    headers = {key: value for key in ("Content-Length", "Content-Disposition", "Cache-Control")
               if (value := response.headers.get(key))}
    content_type = response.headers.get("Content-Type", "application/octet-stream")

    def body() -> Iterator[bytes]:
        try:
            while chunk := response.read(CHUNK):
                yield chunk
        except (OSError, http.client.HTTPException):
            return  # the peer went away mid-file: the client sees a short file, as from any upstream
        finally:
            response.close()
    return response.status, content_type, headers, body()


# -- what webapp/api/events.py calls -------------------------------------------


class Peers(Protocol):
    """What is asked here of a hub's peers (webapp/runtime/peers.py, which imports this module)."""

    @property
    def links(self) -> Mapping[str, object]: ...

    def accesses(self) -> list[PeerAccess]: ...

    def access(self, name: str) -> PeerAccess | None: ...


def events_with_peers(peers: Peers | None, local: list[dict[str, Any]], params: Mapping[str, str], limit: int,
                      visible: Collection[str] | None) -> list[dict[str, Any]]:
    """``/api/events``'s list: the hub's own (``local``, as JSON) and its peers', newest first."""
    if peers is None or not peers.links:
        return local
    wanted = {key: params[key] for key in ("camera", "label", "zone", "after", "before") if params.get(key)}
    return merged(local, listed(peers.accesses(), wanted, limit, visible), limit)


def peer_file_response(peers: Peers | None, hub_id: str, file: str, params: Mapping[str, str],
                       visible: Collection[str] | None) -> Response:
    """``/api/events/PEER.ID/snapshot.jpg`` or ``clip.mp4``: fetched from the peer as it is sent on; 404 JSON
    for an event that is not there (or not to be seen), 502 JSON for a peer that fails."""
    found = split_id(hub_id)
    access = peers.access(found[0]) if peers is not None and found is not None else None
    if access is None or found is None:
        abort(404, description=f"no event {hub_id[:80]!r}")
    try:
        status, content_type, headers, body = fetch_file(
            access, found[1], file, {key: params[key] for key in ("boxes",) if key in params}, visible)
    except PeerRequestError as exc:
        if exc.status == 404:
            abort(404, description=f"no event {hub_id} (or it has no {file})")
        abort(502, description=str(exc))
    return Response(body, status=status, content_type=content_type, headers=headers, direct_passthrough=True)
