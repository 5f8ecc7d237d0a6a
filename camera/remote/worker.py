"""``camstream worker``: a detector that answers the frames of a worker group, on any machine.

Any number of workers join GROUP's queue group on the broker; NATS hands each request to one of them. A
worker runs one frame at a time (in a thread, so the connection keeps answering pings), and skips a frame
whose deadline has passed before its turn came: its camera stopped waiting for it. NATS holds at most a few
requests for a busy worker and drops the rest, so a slow worker never builds a backlog. A worker that loses
the broker reconnects by itself, and one that crashes is simply missing until it is started again: the
cameras' requests go to the others.
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
from .link import CONNECT_TIMEOUT, MAX_PINGS, PENDING_MESSAGES, PING_SECONDS, RETRY_SECONDS
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

    attempt = 0
    while True:
        try:
            client = await nats.connect(url, name=f"camstream worker {me}", connect_timeout=CONNECT_TIMEOUT,
                                        allow_reconnect=True, max_reconnect_attempts=-1,
                                        reconnect_time_wait=RETRY_SECONDS[0], ping_interval=PING_SECONDS,
                                        max_outstanding_pings=MAX_PINGS)
            break
        except Exception as exc:  # noqa: BLE001 - "not now", whatever nats-py calls it
            if attempt == 0:
                log.warning("the broker cannot be reached (%s); trying again", " ".join(str(exc).split())[:200])
            await asyncio.sleep(RETRY_SECONDS[min(attempt, len(RETRY_SECONDS) - 1)])
            attempt += 1
    await client.subscribe(subject(group), queue=group, cb=handle, pending_msgs_limit=PENDING_MESSAGES)
    await client.flush()
    log.info("worker %s answers group %r with %s (%s)", me, group, spec.text, detector.description)
    if ready is not None:
        ready.set()
    try:
        while True:
            await asyncio.sleep(60)
            log.info("worker %s: %d frames answered, %d skipped past their deadline", me, answered, skipped)
    finally:
        await client.close()


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
    finally:
        loop.close()
    return 0
