"""The one asyncio loop aiortc runs on, in a thread of its own for the whole process.

aiortc is asyncio through and through; camstream's server is threads. All
peer connections of every app in the process live on this one loop, and
the rest of camstream hands it work with :func:`call` (wait for a result,
bounded) or :func:`soon` (never waits: what the capture thread uses).

Two things aioice (aiortc's ICE) has no option for are done here:

- UDP ports from a range (``--webrtc-ports``): the loop binds a socket that
  asks for port 0 to the first free port of the range instead, so a
  firewall can let just those in.
- A host candidate on 127.0.0.1, which aioice leaves out: a browser on the
  box itself (a kiosk) reaches camstream over loopback even with no network.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import threading
from collections.abc import Callable, Coroutine
from concurrent.futures import Future
from typing import Any, TypeVar

log = logging.getLogger("camstream.webrtc")

T = TypeVar("T")
LOOPBACK = "127.0.0.1"


class PortRangeLoop(asyncio.SelectorEventLoop):
    """A loop whose UDP sockets asked for "any port" get one of ``ports`` (when set), tried in turn."""

    def __init__(self) -> None:
        super().__init__()
        self.ports: range | None = None
        self._next = itertools.count()

    async def create_datagram_endpoint(self, protocol_factory, local_addr=None, remote_addr=None,  # type: ignore[override]
                                       **kwargs: Any):
        ports = self.ports
        if ports is None or local_addr is None or local_addr[1] != 0:
            return await super().create_datagram_endpoint(protocol_factory, local_addr, remote_addr, **kwargs)
        start = next(self._next)
        last: OSError | None = None
        for step in range(len(ports)):
            port = ports[(start + step) % len(ports)]
            try:
                return await super().create_datagram_endpoint(protocol_factory, (local_addr[0], port),
                                                              remote_addr, **kwargs)
            except OSError as exc:
                last = exc
        raise OSError(f"no free UDP port in {ports.start}-{ports.stop - 1} on {local_addr[0]}") from last


_lock = threading.Lock()
_loop: PortRangeLoop | None = None


def loop() -> PortRangeLoop:
    """The loop, started on first use."""
    global _loop
    with _lock:
        if _loop is None:
            _include_loopback()
            started = threading.Event()
            made = PortRangeLoop()

            def run() -> None:
                asyncio.set_event_loop(made)
                made.call_soon(started.set)
                made.run_forever()

            threading.Thread(target=run, name="webrtc", daemon=True).start()
            started.wait(10)
            _loop = made
        return _loop


def set_ports(ports: range | None) -> None:
    """UDP ports for WebRTC from now on (None: any the system gives)."""
    loop().ports = ports


def call(coroutine: Coroutine[Any, Any, T], timeout: float) -> T:
    """Run ``coroutine`` on the loop and wait up to ``timeout`` seconds for its result (TimeoutError beyond,
    the coroutine cancelled)."""
    future: Future[T] = asyncio.run_coroutine_threadsafe(coroutine, loop())
    try:
        return future.result(timeout)
    except TimeoutError:
        future.cancel()
        raise


def soon(callback: Callable[..., object], *args: object) -> None:
    """Have the loop run ``callback(*args)``; returns at once, from any thread."""
    target = loop()
    if not target.is_closed():
        target.call_soon_threadsafe(callback, *args)


def _include_loopback() -> None:
    """Have aioice offer 127.0.0.1 as a host candidate too (it leaves it out on purpose)."""
    from aioice import ice

    original = ice.get_host_addresses
    if getattr(original, "camstream", False):
        return

    def with_loopback(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        addresses = original(use_ipv4=use_ipv4, use_ipv6=use_ipv6)
        if use_ipv4 and LOOPBACK not in addresses:
            addresses.append(LOOPBACK)
        return addresses

    with_loopback.camstream = True  # type: ignore[attr-defined]
    ice.get_host_addresses = with_loopback
