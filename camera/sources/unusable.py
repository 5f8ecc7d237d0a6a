"""A stand-in for a camera whose source string can never work."""

from __future__ import annotations

from collections.abc import Iterator

from ..base import FAILED, BaseCamera
from ..errors import SourceError


class UnusableCamera(BaseCamera):
    """Takes the place of a camera with a missing file or an unknown scheme.

    It never starts. Its status says ``failed`` and why, so a server with
    several cameras serves the others and shows what is wrong with this one.
    """

    usable = False

    def __init__(self, name: str, source: str, reason: str, **options) -> None:
        super().__init__(name, source=source, **options)
        self._state = FAILED
        self._last_error = self._redactor.redact(reason)

    def frames(self) -> Iterator[bytes]:
        raise SourceError(self._last_error or "unusable source")

    def start(self) -> None:
        """Nothing to start: the source string itself is wrong."""
