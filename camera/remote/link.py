"""The process's connection to a NATS server (``--broker``), kept up by itself.

nats-py speaks asyncio and camstream's threads do not: the link runs an event loop in a thread of its own
and hands callers :class:`concurrent.futures.Future` objects. It connects in the background and keeps trying
(every second at first, then every 5 s) while the server is down, at start as later; a request meanwhile
fails at once ("the broker is down"), so nobody waits on a broker that is not there. The URL's password goes
to NATS and nowhere else: logs, errors and the status show the URL with it masked.

A login the server turns down is said as such ("the broker refused the credentials", state ``refused``), not
as the connection reset nats-py may see right after it; a request the server's permissions drop (a user that
may not publish frames, or not receive replies) is remembered as :attr:`BrokerLink.denied`, so a timeout can
say why. Replies come back on subjects under :data:`~.protocol.REPLY_PREFIX`, not NATS's shared ``_INBOX``, so
a broker's permissions can keep them for camstream's own users (examples/nats/nats-server.conf).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import importlib.util
import logging
import os
import threading
import time
from typing import Any
from urllib.parse import parse_qs, urlsplit, urlunsplit

from ..redact import redact_url
from .protocol import REPLY_PREFIX

log = logging.getLogger("camstream.broker")

SCHEMES = ("nats", "tls")
CONNECT_TIMEOUT = 2.0
# A server that stops answering pings is taken for gone after about PING_SECONDS * (MAX_PINGS + 1).
PING_SECONDS, MAX_PINGS = 2, 2
RETRY_SECONDS = (1.0, 2.0, 5.0)
# Messages a subscriber may hold before NATS drops newer ones for it (a worker never builds a backlog).
PENDING_MESSAGES = 8

CONNECTING, CONNECTED, DOWN, REFUSED, CLOSED = "connecting", "connected", "down", "refused", "closed"
REFUSED_WORDS = "the broker refused the credentials"
# What the NATS server says when it turns a login down, or ends one (nats-py passes its words on).
_REFUSALS = ("authorization violation", "authentication expired", "authentication revoked", "authorization error")
# Distinct permission refusals said in the log at most (each names a subject; a new inbox is a new one).
MAX_DENIALS_SAID = 20


class BrokerDown(ConnectionError):
    """The broker is not connected now."""


class _QuietTlsClose(logging.Filter):
    """Drops asyncio's "returning true from eof_received() has no effect when using ssl": said at every TLS
    connection nats-py sees closed, so once a second for as long as a broker refuses the login over TLS."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "eof_received()" not in record.getMessage()


_QUIET_TLS_CLOSE = _QuietTlsClose()


def quiet_tls_close() -> None:
    """Install :class:`_QuietTlsClose` on asyncio's logger (once, whoever asks)."""
    logging.getLogger("asyncio").addFilter(_QUIET_TLS_CLOSE)  # a filter already there is not added again


def refused(exc: BaseException) -> bool:
    """Whether ``exc`` is the server turning the credentials down: nats-py raises a plain ``Error("nats:
    'Authorization Violation'")`` while it connects and an ``AuthorizationError`` once connected."""
    if type(exc).__name__ == "AuthorizationError":
        return True
    text = str(exc).lower()
    return any(words in text for words in _REFUSALS)


def closed_on(exc: BaseException) -> bool:
    """Whether ``exc`` is a server that took the connection and then closed it (a reset, a broken pipe, TLS
    cut short): what a refused login looks like when nats-py writes before it reads the refusal. A server that
    is not listening (connection refused) or not there is something else."""
    import ssl

    return isinstance(exc, ssl.SSLError | ConnectionError) and not isinstance(exc, ConnectionRefusedError)


def denial(exc: BaseException) -> str | None:
    """The server's words if ``exc`` is a permissions violation (a publish or subscription it dropped)."""
    text = " ".join(str(exc).split())
    return text.removeprefix("nats: ")[:300] if "permissions violation" in text.lower() else None


def connect_options(name: str) -> dict[str, Any]:
    """What both ends give ``nats.connect``: keep trying forever, notice a dead server within seconds, and
    take replies on camstream's own prefix."""
    return {"name": name, "connect_timeout": CONNECT_TIMEOUT, "allow_reconnect": True,
            "max_reconnect_attempts": -1, "reconnect_time_wait": RETRY_SECONDS[0], "ping_interval": PING_SECONDS,
            "max_outstanding_pings": MAX_PINGS, "inbox_prefix": REPLY_PREFIX}


def parse_broker_url(url: str) -> str:
    """``url`` checked: ``nats://[user:password@]host[:port][?nkey=PATH]`` or ``tls://...``, with nats-py
    installed (and its nkeys package for an NKey); :class:`ValueError` (with the URL masked) otherwise."""
    shown = redact_url(url)
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not one
        query = parse_qs(parts.query, keep_blank_values=True, strict_parsing=bool(parts.query))
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in SCHEMES or not parts.hostname or parts.path not in ("", "/") \
            or parts.fragment:
        raise ValueError(f"BROKER must be nats://[user:password@]host[:port] or tls://..., not {shown!r}")
    if set(query) - {"nkey"} or any(len(values) != 1 or not values[0] for values in query.values()):
        raise ValueError(f"BROKER takes one query parameter, ?nkey=PATH (a file with an NKey seed), not {shown!r}")
    if importlib.util.find_spec("nats") is None:
        raise ValueError("BROKER needs nats-py: install camstream with its nats extra, "
                         "pip install '.[nats]' in camstream's folder")
    if "nkey" in query:
        if importlib.util.find_spec("nkeys") is None:
            raise ValueError("BROKER's ?nkey= needs nats-py's nkeys package: pip install nkeys")
        path = query["nkey"][0]
        if not os.access(path, os.R_OK) or not os.path.isfile(path):
            raise ValueError(f"BROKER's ?nkey= file cannot be read: {path[:200]!r}")
    return url


def connect_auth(url: str) -> tuple[str, dict[str, Any]]:
    """``url`` (checked) as nats-py takes it: the server's URL without the query, and its NKey seed file
    (``?nkey=PATH``, signed with at each connect; the seed itself never leaves nats-py)."""
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    server = urlunsplit(parts._replace(path="", query=""))
    return server, ({"nkeys_seed": query["nkey"][0]} if "nkey" in query else {})


class BrokerLink:
    """One connection to the NATS server at ``url``, shared by every camera of the process."""

    def __init__(self, url: str, name: str = "camstream") -> None:
        self.url = parse_broker_url(url)
        self.shown = redact_url(url)
        self._server, self._auth = connect_auth(self.url)
        self.name = name
        self.state = CONNECTING
        self.last_error: str | None = None
        # The server's last permissions violation on this connection, e.g. a publish of frames it dropped.
        self.denied: str | None = None
        self._denials_said: set[str] = set()
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
        quiet_tls_close()
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
                    self._server, **connect_options(self.name), **self._auth, error_cb=self._error,
                    disconnected_cb=self._disconnected, reconnected_cb=self._reconnected, closed_cb=self._closed)
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
        self.last_error = self.denied = None
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
        """nats-py's word on anything that went wrong: while it connects (it keeps trying by itself) as later."""
        denied = denial(exc)
        if denied is not None:
            self.denied = denied
            if denied not in self._denials_said and len(self._denials_said) < MAX_DENIALS_SAID:
                self._denials_said.add(denied)
                log.warning("the broker %s: %s (see its permissions for this user)", self.shown, denied)
        elif self.state != CONNECTED or refused(exc):
            self._failed(exc)
        else:
            self.last_error = self.words(exc)

    def _failed(self, exc: BaseException) -> None:
        if refused(exc):
            if self.state != REFUSED:
                log.error("%s (%s); trying again", REFUSED_WORDS, self.shown)
            self.last_error = REFUSED_WORDS
            self._set(REFUSED)
            return
        if self.state == REFUSED and closed_on(exc):
            return  # the server closing on the refused login, before nats-py read why
        first = self.state != DOWN or self.last_error is None
        self.last_error = self.words(exc)
        self._set(DOWN)
        if first:
            log.warning("the broker %s cannot be reached (%s); trying again", self.shown, self.last_error)

    def reason(self) -> str:
        """Why a request cannot go now, in the words the status shows."""
        if self.state == REFUSED:
            return f"{REFUSED_WORDS}: {self.shown}"
        return f"the broker {self.shown} is {self.state}"

    def _set(self, state: str) -> None:
        if state != self.state:
            self.state, self._since = state, time.time()

    def words(self, exc: BaseException) -> str:
        text = " ".join(str(exc).split()) or type(exc).__name__
        # nats-py may say the server's URL, password and all.
        return text.replace(self.url, self.shown).replace(self._server, redact_url(self._server))[:300]

    # -- for the cameras (any thread) -------------------------------------

    def request(self, subject: str, payload: bytes, headers: dict[str, str],
                timeout: float) -> concurrent.futures.Future:
        """Send ``payload`` to one subscriber of ``subject``; the future's result is the reply's bytes. It fails
        with :class:`BrokerDown`, :class:`TimeoutError` past ``timeout``, or :class:`LookupError` when nobody
        subscribes (no worker in the group)."""
        if self.state != CONNECTED or self._client is None:
            future: concurrent.futures.Future = concurrent.futures.Future()
            future.set_exception(BrokerDown(self.reason()))
            return future
        return asyncio.run_coroutine_threadsafe(self._request(subject, payload, headers, timeout), self._loop)

    async def _request(self, subject: str, payload: bytes, headers: dict[str, str], timeout: float) -> bytes:
        from nats import errors

        client = self._client
        if client is None:
            raise BrokerDown(self.reason())
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
