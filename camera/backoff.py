"""How long to wait before trying a source that failed again."""

from __future__ import annotations

import random

INITIAL_DELAY = 0.5
MAX_DELAY = 30.0
JITTER = 0.2


class Backoff:
    """Exponential backoff with jitter: 0.5 s, 1 s, 2 s, ... up to 30 s.

    Each delay is spread by up to ``jitter`` either way, so cameras that
    lost one network together do not all knock on it in the same instant.
    """

    def __init__(self, initial: float = INITIAL_DELAY, maximum: float = MAX_DELAY, jitter: float = JITTER,
                 rng: random.Random | None = None) -> None:
        if not 0 < initial <= maximum:
            raise ValueError("backoff needs 0 < initial <= maximum")
        self.initial = initial
        self.maximum = maximum
        self.jitter = jitter
        self.attempts = 0
        self._rng = rng or random.Random()

    def next_delay(self) -> float:
        """The wait before the next attempt; each call counts one attempt."""
        base = min(self.maximum, self.initial * 2 ** min(self.attempts, 32))
        self.attempts += 1
        return base * self._rng.uniform(1 - self.jitter, 1 + self.jitter)

    def reset(self) -> None:
        """The source works again: the next failure starts from the shortest wait."""
        self.attempts = 0
