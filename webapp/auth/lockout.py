"""Failed sign-ins counted per client address: too many in a window, and that address waits."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict, deque

# Addresses remembered at most: a flood of addresses cannot grow memory past this.
MAX_ADDRESSES = 10_000


class Lockout:
    """``attempts`` failures within ``window`` seconds lock an address until the oldest of them is that old."""

    def __init__(self, attempts: int = 5, window: float = 300.0, clock=time.monotonic) -> None:
        self.attempts = attempts
        self.window = window
        self.clock = clock
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def retry_after(self, address: str) -> float | None:
        """Seconds until ``address`` may try again, or None if it may now."""
        with self._lock:
            failures = self._recent(address)
            if failures is None or len(failures) < self.attempts:
                return None
            return max(0.0, failures[0] + self.window - self.clock())

    def failed(self, address: str) -> None:
        with self._lock:
            failures = self._recent(address) or deque(maxlen=self.attempts)
            failures.append(self.clock())
            self._failures[address] = failures
            self._failures.move_to_end(address)
            while len(self._failures) > MAX_ADDRESSES:
                self._failures.popitem(last=False)

    def succeeded(self, address: str) -> None:
        with self._lock:
            self._failures.pop(address, None)

    def _recent(self, address: str) -> deque[float] | None:
        failures = self._failures.get(address)
        if failures is None:
            return None
        cutoff = self.clock() - self.window
        while failures and failures[0] <= cutoff:
            failures.popleft()
        if not failures:
            del self._failures[address]
            return None
        return failures
