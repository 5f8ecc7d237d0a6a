"""A camera of another camstream (a peer), relayed by a hub once however many watch it there.

A peer camera is an :class:`~camera.sources.relay.HttpCamera` on the
peer's ``/video_feed/CAMERA``: it runs only while someone at the hub
watches, holds one connection to the peer, and relays the peer's JPEGs
byte for byte to every viewer at the hub (the capture thread's fan-out).
What it adds is the peer's health, as the hub's poll of the peer last
found it (:class:`PeerHealth`), so a tile nobody watches still says the
peer is down, which peer, since when and why.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from urllib.parse import quote

from ..base import FAILED, IDLE
from .relay import HttpCamera


@dataclass(frozen=True)
class PeerState:
    """What the hub last found of a peer: ``up``, since when (wall clock) and, when down, why (no secrets)."""

    up: bool | None  # None: not asked yet
    since: float
    error: str | None = None


class PeerHealth:
    """A peer's state, set by the hub's poll of it and read by each of its cameras' status."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._lock = threading.Lock()
        self._state = PeerState(None, time.time())

    def set(self, up: bool, error: str | None = None) -> bool:
        """Note the outcome of one poll; True when the peer went up or down with it."""
        with self._lock:
            changed = self._state.up != up
            if changed or self._state.error != error:
                self._state = PeerState(up, time.time() if changed else self._state.since, error)
            return changed

    @property
    def state(self) -> PeerState:
        return self._state

    def as_dict(self) -> dict:
        state = self._state
        return {"name": self.name, "up": state.up, "since": round(state.since, 3), "error": state.error}


def stream_url(base: str, camera: str, query: str = "") -> str:
    """The peer's MJPEG URL of ``camera`` from its ``base`` URL (which may carry ``user:password@``)."""
    return f"{base.rstrip('/')}/video_feed/{quote(camera, safe='')}" + (f"?{query}" if query else "")


class PeerCamera(HttpCamera):
    """Camera ``camera`` of peer ``health.name``, named ``PEER.CAMERA`` at the hub."""

    def __init__(self, name: str, source: str, health: PeerHealth, remote_name: str, **options) -> None:
        super().__init__(name, source, audio=False, **options)
        self.health = health
        self.remote_name = remote_name

    def status(self) -> dict:
        """The camera's status with its ``peer`` block; a peer that is down fails a tile nobody watches."""
        status = super().status()
        peer = self.health.as_dict()
        status["peer"] = {**peer, "camera": self.remote_name}
        if peer["up"] is False and status["state"] == IDLE:
            status["state"] = str(FAILED)
            status["last_error"] = f"peer {self.health.name} is down: {peer['error']}"
            status["offline_since"] = peer["since"]
        return status
