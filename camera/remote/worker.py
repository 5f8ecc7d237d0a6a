"""``camstream worker``: a detector that answers the frames of a worker group, on any machine.

Any number of workers join GROUP's queue group on the broker; NATS hands each request to one of them. A
worker runs one frame at a time (in a thread, so the connection keeps answering pings), and skips a frame
whose deadline has passed before its turn came: its camera stopped waiting for it. NATS holds at most a few
requests for a busy worker and drops the rest, so a slow worker never builds a backlog. A worker that loses
the broker reconnects by itself, and one that crashes is simply missing until it is started again: the
cameras' requests go to the others.

A worker whose login the broker refuses says so ("the broker refused the credentials") and keeps trying; one
the broker does not let take its group's frames (its user's subscribe permissions) stops with that reason, as
it could never answer anything. The URL's password is never logged.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import time
from collections.abc import Sequence

from ..detect.build import build_detector
from ..detect.spec import DetectorSpec
from ..redact import redact_url
from .link import (
    MAX_DENIALS_SAID,
    PENDING_MESSAGES,
    REFUSED_WORDS,
    RETRY_SECONDS,
    closed_on,
    connect_auth,
    connect_options,
    denial,
    quiet_tls_close,
    refused,
)
from .protocol import DEADLINE, reply_body, subject

log = logging.getLogger("camstream.worker")


def worker_id() -> str:
    """How this worker names itself in replies (and so in the cameras' ``workers_seen``)."""
    return f"{socket.gethostname()}:{os.getpid()}"


async def serve(url: str, group: str, spec: DetectorSpec, confidence: float = 0.5,
                classes: Sequence[str] = (), ready: asyncio.Event | None = None) -> None:
    """Answer GROUP's frames with ``spec`` until cancelled."""
    import nats

    detector = build_detector(spec, confidence, classes)
    me = worker_id()
    answered = skipped = 0
    loop = asyncio.get_running_loop()

    async def handle(message) -> None:
        nonlocal answered, skipped
        headers = message.headers or {}
        try:
            deadline = float(headers.get(DEADLINE, "inf"))
        except ValueError:
            deadline = float("inf")
        if time.time() >= deadline:
            skipped += 1
            return
        before = detector.gated
        started = time.perf_counter()
        try:
            detections = await loop.run_in_executor(None, detector.run_jpeg, message.data)
        except Exception as exc:  # noqa: BLE001 - whatever a detector raises goes back to the camera
            body = reply_body(headers, me, error=f"{type(exc).__name__}: {' '.join(str(exc).split())}"[:300])
        else:
            body = reply_body(headers, me, detections, (time.perf_counter() - started) * 1000,
                              gated=detector.gated > before)
        if time.time() < deadline and message.reply:
            await message.respond(body)
            answered += 1

    said = _Said(url)
    server, auth = connect_auth(url)
    quiet_tls_close()
    attempt = 0
    while True:
        try:
            client = await nats.connect(server, **connect_options(f"camstream worker {me}"), **auth,
                                        error_cb=said.error, disconnected_cb=said.disconnected,
                                        reconnected_cb=said.reconnected)
            break
        except Exception as exc:  # noqa: BLE001 - "not now", whatever nats-py calls it
            await said.error(exc)
            await asyncio.sleep(RETRY_SECONDS[min(attempt, len(RETRY_SECONDS) - 1)])
            attempt += 1
    said.reconnected_now()
    said.watch(subject(group))
    await client.subscribe(subject(group), queue=group, cb=handle, pending_msgs_limit=PENDING_MESSAGES)
    # nats-server may answer the first ping before it refuses the subscription: after a second round trip its
    # word has come (and should it come later still, the loop below stops all the same).
    await client.flush()
    await client.flush()
    try:
        if not said.shut.is_set():
            log.info("worker %s answers group %r with %s (%s)", me, group, spec.text, detector.description)
            if ready is not None:
                ready.set()
        while not said.shut.is_set():
            try:
                await asyncio.wait_for(said.shut.wait(), 60)
            except TimeoutError:
                log.info("worker %s: %d frames answered, %d skipped past their deadline", me, answered, skipped)
        raise BrokerRefused(f"the broker does not let this worker take the frames of group {group!r}: "
                            f"{said.denied} (see the broker's permissions for this user)")
    finally:
        await client.close()


class BrokerRefused(RuntimeError):
    """The broker will never hand this worker a frame: its permissions say no."""


class _Said:
    """nats-py's errors as a worker's log says them: each kind once until connected again, the password
    masked, a refused login as such."""

    def __init__(self, url: str) -> None:
        self.url, self.shown = url, redact_url(url)
        self.server = connect_auth(url)[0]
        self.last: str | None = None
        self.connected = False
        self.denied: str | None = None
        self.denials = 0
        # Set when the broker refuses the subscription to the group's frames (whenever its word comes).
        self.shut = asyncio.Event()
        self._subscription = ""

    def watch(self, subject: str) -> None:
        self._subscription = f'subscription to "{subject}"'

    async def error(self, exc: BaseException) -> None:
        denied = denial(exc)
        if denied is not None:
            self.denied = denied
            self.denials += 1
            if self.denials <= MAX_DENIALS_SAID:
                log.error("the broker %s: %s", self.shown, denied)
            if self._subscription and self._subscription.lower() in denied.lower():
                self.shut.set()
            return
        if type(exc).__name__ == "SlowConsumerError":
            return  # a busy worker's frames beyond PENDING_MESSAGES, dropped by design: their cameras go on
        if refused(exc):
            words = REFUSED_WORDS
        elif self.last == REFUSED_WORDS and closed_on(exc):
            return  # the server closing on the refused login, before nats-py read why
        else:
            words = (" ".join(str(exc).split()) or type(exc).__name__).replace(self.url, self.shown)
            words = words.replace(self.server, redact_url(self.server))[:200]
        if words != self.last:
            self.last = words
            if words == REFUSED_WORDS:
                log.error("%s (%s); trying again", REFUSED_WORDS, self.shown)
            elif self.connected:
                log.warning("the broker %s: %s", self.shown, words)
            else:
                log.warning("the broker %s cannot be reached (%s); trying again", self.shown, words)

    async def disconnected(self) -> None:
        self.connected = False

    async def reconnected(self) -> None:
        self.reconnected_now()
        log.info("connected to the broker %s again", self.shown)

    def reconnected_now(self) -> None:
        self.last, self.connected = None, True


def run_worker(url: str, group: str, spec: DetectorSpec, confidence: float = 0.5, classes: Sequence[str] = ()) -> int:
    """``camstream worker``: serve until SIGINT or SIGTERM; the exit status."""
    loop = asyncio.new_event_loop()
    task = loop.create_task(serve(url, group, spec, confidence, classes))
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, task.cancel)
    try:
        loop.run_until_complete(task)
    except asyncio.CancelledError:
        log.info("worker stopped")
    except BrokerRefused as exc:
        log.error("%s", exc)
        return 1
    finally:
        loop.close()
    return 0
