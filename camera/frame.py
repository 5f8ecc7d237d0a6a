"""The unit the capture thread hands to viewers: one encoded frame."""

from __future__ import annotations

from dataclasses import dataclass, field

from . import mjpeg


@dataclass(frozen=True)
class Frame:
    """One JPEG frame with its MJPEG part already built.

    ``seq`` grows by one per published frame of a camera (across restarts),
    so a viewer can tell a new frame from one it has already sent.
    ``timestamp`` is the capture time in seconds since the epoch.
    ``live`` is False for the "no signal" frames sent while the source is
    gone, which snapshots and detectors must not take for a picture.
    """

    seq: int
    jpeg: bytes
    timestamp: float
    width: int
    height: int
    live: bool = True
    part: bytes = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "part", mjpeg.encode_part(self.jpeg, self.timestamp))
