"""Failed sign-ins counted per client address and user name: too many in a window, and that name waits there.

Counting per name as well as per address means a household behind one
router is not locked out of every account by one phone with an old password,
and a right password for one account buys no guesses at another: a success
clears only its own name's count. The address as a whole has a higher
ceiling (:data:`ADDRESS_FACTOR` times as many), so trying many names from one
place is stopped too.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict, deque
from dataclasses import dataclass

# Keys (address and name, or address alone) remembered at most: a flood of them cannot grow memory past this.
MAX_KEYS = 20_000
# An address may fail this many times the per-name number before every name waits there.
ADDRESS_FACTOR = 4


@dataclass(frozen=True)
class Locked:
    """A lock that a failure just started: who (a name, or None for every name at ``address``) and for how long."""

    address: str
    name: str | None
    seconds: float


class Lockout:
    """``attempts`` failures of one name (``attempts * ADDRESS_FACTOR`` of any) within ``window`` seconds lock it
    out from that address until the oldest of them is that old."""

    def __init__(self, attempts: int = 5, window: float = 300.0, clock=time.monotonic) -> None:
        self.attempts = attempts
        self.window = window
        self.clock = clock
        self._failures: OrderedDict[tuple[str, str | None], deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def retry_after(self, address: str, name: str) -> float | None:
        """Seconds until ``name`` may try again from ``address``, or None if it may now."""
        with self._lock:
            waits = [wait for key in ((address, name), (address, None)) if (wait := self._wait(key)) is not None]
        return max(waits) if waits else None

    def failed(self, address: str, name: str) -> Locked | None:
        """Count a failure; the lock it starts, if it starts one (for the log)."""
        with self._lock:
            started = None
            for key in ((address, name), (address, None)):  # the address's lock, being broader, is the one told
                was_locked = self._wait(key) is not None
                failures = self._failures.get(key) or deque(maxlen=self._limit(key))
                failures.append(self.clock())
                self._failures[key] = failures
                self._failures.move_to_end(key)
                wait = self._wait(key)
                if wait is not None and not was_locked:
                    started = Locked(address, key[1], wait)
            while len(self._failures) > MAX_KEYS:
                self._failures.popitem(last=False)
            return started

    def succeeded(self, address: str, name: str) -> None:
        """A right password: that name's failures are forgiven, the address's count stays."""
        with self._lock:
            self._failures.pop((address, name), None)

    def _limit(self, key: tuple[str, str | None]) -> int:
        return self.attempts * (ADDRESS_FACTOR if key[1] is None else 1)

    def _wait(self, key: tuple[str, str | None]) -> float | None:
        failures = self._failures.get(key)
        if failures is None:
            return None
        cutoff = self.clock() - self.window
        while failures and failures[0] <= cutoff:
            failures.popleft()
        if not failures:
            del self._failures[key]
            return None
        if len(failures) < self._limit(key):
            return None
        return max(0.0, failures[0] + self.window - self.clock())
