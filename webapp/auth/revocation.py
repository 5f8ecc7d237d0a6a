"""Cutting streams whose sign-in no longer holds: a session signed out, a password changed, a user removed or
changed, a token revoked.

A stream's request is checked when it opens, like any other; a stream then
runs for hours. So each open stream of a signed-in requester is kept here
with a check of what let it in, and a thread runs the checks every
:data:`CHECK_SECONDS` (and at once after a logout, a revoked token or a
reload), cutting the streams whose check fails.
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections.abc import Callable

log = logging.getLogger("camstream.auth")

CHECK_SECONDS = 2.0


class StreamWatch:
    """Open streams, each with ``check`` (still allowed?) and ``cut`` (end it now)."""

    def __init__(self) -> None:
        self._streams: dict[int, tuple[Callable[[], bool], Callable[[], None]]] = {}
        self._ids = itertools.count()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self.cut_count = 0

    def watch(self, check: Callable[[], bool], cut: Callable[[], None]) -> Callable[[], None]:
        """Keep an eye on one stream; call what this returns when the stream ends."""
        key = next(self._ids)
        with self._lock:
            self._streams[key] = (check, cut)
            if self._thread is None and not self._stopping:
                self._thread = threading.Thread(target=self._run, name="stream-watch", daemon=True)
                self._thread.start()
        return lambda: self._forget(key)

    def check_now(self) -> None:
        """Something was revoked: look at every stream soon rather than within the next round."""
        self._wake.set()

    def stop(self) -> None:
        with self._lock:
            self._stopping = True
            thread = self._thread
        self._wake.set()
        if thread is not None:
            thread.join(2.0)

    @property
    def count(self) -> int:
        return len(self._streams)

    def _forget(self, key: int) -> None:
        with self._lock:
            self._streams.pop(key, None)

    def _run(self) -> None:
        while not self._stopping:
            self._wake.wait(CHECK_SECONDS)
            self._wake.clear()
            self.sweep()

    def sweep(self) -> int:
        """Cut every stream whose check fails; how many."""
        with self._lock:
            streams = list(self._streams.items())
        cut = 0
        for key, (check, end) in streams:
            try:
                allowed = check()
            except Exception:  # a check that fails to decide decides no
                log.warning("could not check a stream's sign-in; cutting it", exc_info=True)
                allowed = False
            if not allowed:
                self._forget(key)
                try:
                    end()
                except Exception:
                    log.warning("could not cut a stream", exc_info=True)
                cut += 1
        if cut:
            self.cut_count += cut
            log.info("cut %d stream(s) whose sign-in was revoked", cut)
        return cut
