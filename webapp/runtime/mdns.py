"""Finding boxes: each camstream announces itself over mDNS / DNS-SD, and a hub lists the boxes it has not added.

A served camstream registers ``_camstream._tcp`` (its name, port, path and
version in the TXT record) with python-zeroconf, the library Home Assistant
uses, and browses for the others'. It announces and listens only where it
listens for HTTP: ``--host 127.0.0.1`` (the default) keeps it on loopback,
another address to that address's interface, ``0.0.0.0`` to every
interface. ``--no-mdns`` (``MDNS = false``) turns both off. An admin of a
hub sees the boxes found that are not yet its peers (``/api/boxes/found``,
listed on the page by static/boxes-found.js), with the ``--peer`` line and
the ``[peers.NAME]`` table that would add each; the credential (a user of
that box, or a peer token made on that box: ``camstream token create
--peer``) is the admin's to fill in, never announced.

Nothing here runs without a served port (:func:`start`, called once the
server listens): a test's ``create_app`` announces nothing. Resolving a
found box runs on zeroconf's own threads, bounded by :data:`RESOLVE_MS`,
and at most :data:`MAX_FOUND` boxes are kept, so a noisy LAN cannot grow it.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import re
import socket
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, Flask, abort, current_app, jsonify

from ..auth.guard import principal
from .registry import runtime_of

log = logging.getLogger("camstream.mdns")

SERVICE = "_camstream._tcp.local."
EXTENSION = "camstream.mdns"
RESOLVE_MS = 3000
MAX_FOUND = 64
MAX_TEXT = 63  # a TXT value and an instance name kept to DNS's label size
ALL_HOSTS = ("0.0.0.0", "::", "")

bp = Blueprint("mdns", __name__)


@dataclass(frozen=True)
class Found:
    """A box that announced itself: its instance name, where it answers and what it says of itself."""

    instance: str
    name: str
    address: str
    port: int
    path: str
    version: str

    @property
    def url(self) -> str:
        host = f"[{self.address}]" if ":" in self.address else self.address
        return f"http://{host}:{self.port}{self.path}"

    def as_json(self) -> dict[str, Any]:
        peer = suggested_name(self.name)
        return {"name": self.name, "url": self.url, "version": self.version, "peer": peer,
                "flag": f"--peer {peer}={self.url}",
                "table": f'[peers.{peer}]\nurl = "{self.url}"\nuser = "..."\npassword = "..."'}


def suggested_name(name: str) -> str:
    """A peer name (webapp/config/values.py's NAME_PATTERN) made of a box's announced name."""
    cleaned = re.sub(r"[^A-Za-z0-9_-]+", "-", name.split(".")[0]).strip("-_")[:64]
    return cleaned or "box"


def _version() -> str:
    try:
        return version("camstream")
    except PackageNotFoundError:
        return "unknown"


def _text(properties: dict[bytes, bytes | None], key: str) -> str:
    value = properties.get(key.encode())
    return value.decode("utf-8", "replace")[:MAX_TEXT] if value else ""


class Mdns:
    """This box's announcement and the other boxes found, on the interfaces of ``host``."""

    def __init__(self, host: str, port: int, name: str | None = None, path: str = "/") -> None:
        self.host, self.port, self.path = host, port, path
        self.name = (name or socket.gethostname().split(".")[0])[:MAX_TEXT - 8]
        # Unique on the LAN however many camstreams one machine runs: the port is part of it.
        self.instance = f"{self.name}-{port}"
        self._found: dict[str, Found] = {}
        self._resolving: set[str] = set()
        self._lock = threading.Lock()
        self._zeroconf: Any = None
        self._info: Any = None
        self._browser: Any = None
        self._stopped = threading.Event()

    def start(self) -> None:
        """Register and browse, zeroconf's loop on a thread of its own (made in a thread of ours: zeroconf
        would otherwise take over a loop the caller runs, as Playwright's sync API does, and wait on it forever)."""
        with ThreadPoolExecutor(1, thread_name_prefix="mdns-start") as starting:
            starting.submit(self._begin).result()  # its error raised here

    def _begin(self) -> None:
        from zeroconf import IPVersion, ServiceBrowser, ServiceInfo, Zeroconf, get_all_addresses

        listening = "127.0.0.1" if self.host == "localhost" else self.host
        everywhere = listening in ALL_HOSTS
        if everywhere:
            self._zeroconf = Zeroconf(ip_version=IPVersion.All if listening == "::" else IPVersion.V4Only)
            addresses = [address for address in get_all_addresses() if not address.startswith("127.")]
        else:
            six = ipaddress.ip_address(listening).version == 6
            self._zeroconf = Zeroconf(interfaces=[listening], ip_version=IPVersion.V6Only if six else IPVersion.V4Only)
            addresses = [listening]
        self._info = ServiceInfo(SERVICE, f"{self.instance}.{SERVICE}", port=self.port, server=f"{self.instance}.local.",
                                 properties={"name": self.name, "path": self.path, "version": _version()},
                                 parsed_addresses=addresses)
        asyncio.run_coroutine_threadsafe(self._register(), self._zeroconf.loop)
        self._browser = ServiceBrowser(self._zeroconf, SERVICE, handlers=[self._changed])
        log.info("announcing %s over mDNS (%s) on %s", self.instance, SERVICE,
                 "every interface" if everywhere else listening)

    async def _register(self) -> None:
        """On zeroconf's own loop: probe, then announce; never waited for, so a busy machine delays
        nothing (the blocking ``register_service`` gives up when its loop is slow to answer)."""
        from zeroconf import Error

        try:
            await (await self._zeroconf.async_register_service(self._info, allow_name_change=True))
        except (Error, OSError, RuntimeError) as exc:  # none may stop the server
            if not self._stopped.is_set():
                log.warning("could not announce this box over mDNS: %r", exc)

    def _changed(self, zeroconf: Any, service_type: str, name: str, state_change: Any) -> None:
        """zeroconf's browser thread: a box came, changed or went."""
        from zeroconf import ServiceStateChange

        if self._stopped.is_set() or self._info is not None and name == self._info.name:
            return
        if state_change is ServiceStateChange.Removed:
            with self._lock:
                self._found.pop(name, None)
            return
        with self._lock:  # one resolving thread per name, and a bounded number of them at once
            if name in self._resolving or len(self._resolving) >= MAX_FOUND:
                return
            self._resolving.add(name)
        threading.Thread(target=self._resolve, args=(name,), name="mdns-resolve", daemon=True).start()

    def _resolve(self, name: str) -> None:
        from zeroconf import Error

        try:
            self._resolve_once(name)
        except (Error, OSError, RuntimeError) as exc:  # closed while resolving, or a loop too busy to answer
            log.debug("mDNS: could not resolve %s: %r", name[:80], exc)
        finally:
            with self._lock:
                self._resolving.discard(name)

    def _resolve_once(self, name: str) -> None:
        info = self._zeroconf.get_service_info(SERVICE, name, timeout=RESOLVE_MS)
        if info is None or not info.port or self._stopped.is_set():
            return
        addresses = info.parsed_addresses()
        if not addresses:
            return
        properties = info.properties or {}
        path = _text(properties, "path") or "/"
        found = Found(name, _text(properties, "name") or name.removesuffix("." + SERVICE), addresses[0],
                      int(info.port), path if path.startswith("/") else "/" + path, _text(properties, "version"))
        with self._lock:
            if name in self._found or len(self._found) < MAX_FOUND:
                self._found[name] = found

    def found(self) -> list[Found]:
        """The boxes found, by name."""
        with self._lock:
            return sorted(self._found.values(), key=lambda found: (found.name, found.port))

    def stop(self) -> None:
        """Say goodbye (so other boxes drop this one at once) and close."""
        if self._stopped.is_set():
            return
        self._stopped.set()
        if self._zeroconf is None:
            return
        from zeroconf import Error

        try:
            if self._browser is not None:
                self._browser.cancel()
            self._zeroconf.unregister_all_services()
        except (Error, OSError, RuntimeError) as exc:  # nothing here may stop a shutdown
            log.debug("mDNS goodbye: %s", exc)
        finally:
            self._zeroconf.close()


def start(app: Flask, host: str, port: int) -> Mdns | None:
    """Announce and browse for a served ``app`` (its port known, once it listens); None with ``MDNS`` off,
    without zeroconf installed, or when it cannot start (logged: finding boxes is a convenience)."""
    if not app.config.get("MDNS", True) or app.extensions.get(EXTENSION) is not None:
        return app.extensions.get(EXTENSION)
    try:
        mdns = Mdns(host, port)
        mdns.start()
    except ImportError:
        log.info("not announcing over mDNS: python-zeroconf is not installed")
        return None
    except (OSError, ValueError) as exc:
        log.warning("not announcing over mDNS: %s", exc)
        return None
    app.extensions[EXTENSION] = mdns
    return mdns


def stop(app: Flask) -> None:
    mdns = app.extensions.pop(EXTENSION, None)
    if mdns is not None:
        mdns.stop()


def _peer_places(app: Flask) -> set[tuple[str, int]]:
    """``(host, port)`` of every peer the hub has, to leave out of the boxes found."""
    peers = runtime_of(app).peers
    places = set()
    for access in peers.accesses() if peers is not None else []:
        parts = urlsplit(access.base)
        if parts.hostname:
            places.add((parts.hostname.lower(), parts.port or (443 if parts.scheme == "https" else 80)))
    return places


def not_added(app: Flask) -> list[Found]:
    """The boxes found that are not peers of this hub yet (by address or announced host name, and port)."""
    mdns: Mdns | None = app.extensions.get(EXTENSION)
    if mdns is None:
        return []
    places = _peer_places(app)
    return [found for found in mdns.found()
            if (found.address, found.port) not in places
            and (f"{found.instance.removesuffix('.' + SERVICE)}.local", found.port) not in places]


@bp.get("/api/boxes/found")
def boxes_found():  # type: ignore[no-untyped-def]
    """An admin's list of the boxes found on the LAN and not yet added, with how to add each."""
    if not principal().admin:
        abort(403, description="only an admin may see the boxes found")
    mdns: Mdns | None = current_app.extensions.get(EXTENSION)
    return jsonify({"announcing": mdns is not None,
                    "boxes": [found.as_json() for found in not_added(current_app)]})
