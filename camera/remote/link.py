"""The process's connection to a NATS server (``--broker``), kept up by itself.

nats-py speaks asyncio and camstream's threads do not: the link runs an event loop in a thread of its own
and hands callers :class:`concurrent.futures.Future` objects. It connects in the background and keeps trying
(every second at first, then every 5 s) while the server is down, at start as later; a request meanwhile
fails at once ("the broker is down"), so nobody waits on a broker that is not there. The URL's password goes
to NATS and nowhere else: logs, errors and the status show the URL with it masked.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import importlib.util
import logging
import threading
import time
from typing import Any
from urllib.parse import urlsplit

from ..redact import redact_url

log = logging.getLogger("camstream.broker")

SCHEMES = ("nats", "tls")
CONNECT_TIMEOUT = 2.0
# A server that stops answering pings is taken for gone after about PING_SECONDS * (MAX_PINGS + 1).
PING_SECONDS, MAX_PINGS = 2, 2
RETRY_SECONDS = (1.0, 2.0, 5.0)
# Messages a subscriber may hold before NATS drops newer ones for it (a worker never builds a backlog).
PENDING_MESSAGES = 8

CONNECTING, CONNECTED, DOWN, CLOSED = "connecting", "connected", "down", "closed"


class BrokerDown(ConnectionError):
    """The broker is not connected now."""


def parse_broker_url(url: str) -> str:
    """``url`` checked: ``nats://[user:password@]host[:port]`` or ``tls://...``, with nats-py installed;
    :class:`ValueError` (with the URL masked) otherwise."""
    shown = redact_url(url)
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not one
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in SCHEMES or not parts.hostname or parts.path not in ("", "/"):
        raise ValueError(f"BROKER must be nats://[user:password@]host[:port] or tls://..., not {shown!r}")
    if importlib.util.find_spec("nats") is None:
        raise ValueError("BROKER needs nats-py: install camstream with its nats extra, "
                         "pip install '.[nats]' in camstream's folder")
    return url


class BrokerLink:
    """One connection to the NATS server at ``url``, shared by every camera of the process."""

    def __init__(self, url: str, name: str = "camstream") -> None:
        self.url = parse_broker_url(url)
        self.shown = redact_url(url)
        self.name = name
        self.state = CONNECTING
        self.last_error: str | None = None
        self.connects = 0
        self._since = time.time()
        self._client: Any = None
        self._closing = False
        self._keeping: concurrent.futures.Future | None = None
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="broker", daemon=True)

    # -- lifecycle -----------------------------------------------------

    def start(self) -> None:
        """Connect in the background (and keep connected)."""
        self._thread.start()
        self._keeping = asyncio.run_coroutine_threadsafe(self._keep_connected(), self._loop)

    def close(self, timeout: float = 2.0) -> None:
        self._closing = True
        if not self._thread.is_alive():
            return
        if self._keeping is not None:
            self._keeping.cancel()  # still trying to connect: stop trying
        future = asyncio.run_coroutine_threadsafe(self._close(), self._loop)
        try:
            future.result(timeout)
        except Exception as exc:  # noqa: BLE001 - closing, whatever state it was in
            log.debug("closing the broker link: %s", self.words(exc))
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout)

    async def _close(self) -> None:
        client, self._client = self._client, None
        self._set(CLOSED)
        if client is not None:
            await client.close()

    async def _keep_connected(self) -> None:
        import nats

        attempt = 0
        while not self._closing:
            try:
                self._client = await nats.connect(
                    self.url, name=self.name, connect_timeout=CONNECT_TIMEOUT, allow_reconnect=True,
                    max_reconnect_attempts=-1, reconnect_time_wait=RETRY_SECONDS[0], ping_interval=PING_SECONDS,
                    max_outstanding_pings=MAX_PINGS, error_cb=self._error, disconnected_cb=self._disconnected,
                    reconnected_cb=self._reconnected, closed_cb=self._closed)
            except Exception as exc:  # noqa: BLE001 - nats-py raises many kinds; each means "not now"
                self._failed(exc)
                await asyncio.sleep(RETRY_SECONDS[min(attempt, len(RETRY_SECONDS) - 1)])
                attempt += 1
                continue
            self._connected()
            return

    # -- nats-py's callbacks (on the loop) -------------------------------

    def _connected(self) -> None:
        self.connects += 1
        self.last_error = None
        self._set(CONNECTED)
        log.info("connected to the broker %s", self.shown)

    async def _reconnected(self) -> None:
        self._connected()

    async def _disconnected(self) -> None:
        if not self._closing and self.state == CONNECTED:
            self._set(DOWN)
            log.warning("lost the broker %s; reconnecting", self.shown)

    async def _closed(self) -> None:
        if not self._closing:
            self._set(DOWN)

    async def _error(self, exc: Exception) -> None:
        self.last_error = self.words(exc)

    def _failed(self, exc: BaseException) -> None:
        first = self.state != DOWN or self.last_error is None
        self.last_error = self.words(exc)
        self._set(DOWN)
        if first:
            log.warning("the broker %s cannot be reached (%s); trying again", self.shown, self.last_error)

    def _set(self, state: str) -> None:
        if state != self.state:
            self.state, self._since = state, time.time()

    def words(self, exc: BaseException) -> str:
        text = " ".join(str(exc).split()) or type(exc).__name__
        # nats-py may say the server's URL, password and all.
        return text.replace(self.url, self.shown)[:300]

    # -- for the cameras (any thread) -------------------------------------

    def request(self, subject: str, payload: bytes, headers: dict[str, str],
                timeout: float) -> concurrent.futures.Future:
        """Send ``payload`` to one subscriber of ``subject``; the future's result is the reply's bytes. It fails
        with :class:`BrokerDown`, :class:`TimeoutError` past ``timeout``, or :class:`LookupError` when nobody
        subscribes (no worker in the group)."""
        if self.state != CONNECTED or self._client is None:
            future: concurrent.futures.Future = concurrent.futures.Future()
            future.set_exception(BrokerDown(f"the broker {self.shown} is {self.state}"))
            return future
        return asyncio.run_coroutine_threadsafe(self._request(subject, payload, headers, timeout), self._loop)

    async def _request(self, subject: str, payload: bytes, headers: dict[str, str], timeout: float) -> bytes:
        from nats import errors

        client = self._client
        if client is None:
            raise BrokerDown(f"the broker {self.shown} is {self.state}")
        try:
            message = await client.request(subject, payload, timeout=timeout, headers=headers)
        except errors.NoRespondersError:
            raise LookupError("no worker answers in this group") from None
        except errors.TimeoutError:
            raise TimeoutError(f"no answer within {timeout:g} s") from None
        except (errors.ConnectionClosedError, errors.ConnectionReconnectingError, errors.StaleConnectionError,
                errors.OutboundBufferLimitError) as exc:
            raise BrokerDown(f"the broker {self.shown}: {self.words(exc)}") from None
        return message.data

    def status(self) -> dict:
        return {"url": self.shown, "state": self.state, "since": round(self._since, 3), "connects": self.connects,
                "last_error": self.last_error}
