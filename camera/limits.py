"""The ranges a camera's numbers must lie in, and the one check they all go through.

A NaN slips past every comparison (``nan <= 0`` is False) and an infinity
past most, so each number is checked to be finite and inside its range
here, once, whether it comes from a command line, the environment, a
config mapping or a library caller.
"""

from __future__ import annotations

import math

# Frame rate caps, frames per second.
MIN_FPS = 0.5
MAX_FPS = 240.0
# The largest side of a frame camstream makes, in pixels.
MAX_SIDE = 16384
# The most pixels a frame may have before camstream decodes it (a 7680x4320
# 8K frame is 33 million): a JPEG header can claim 20000x20000, 1.2 GB decoded.
# The default of --max-picture-pixels, which a camera's stream is held to
# before anything is allocated for its pictures (camera/sources/packets.py).
MAX_PIXELS = 40_000_000
# The range --max-picture-pixels may be set in: from a 64x64 picture to 200
# million pixels (16384x12207; six 8K pictures), 600 MB a decoded BGR frame.
MIN_PICTURE_PIXELS = 64 * 64
MAX_PICTURE_PIXELS = 200_000_000


def checked(name: str, value: object, kind: type[int | float], low: float, high: float) -> int | float:
    """``value`` as an int or float, finite and within ``low``..``high``.

    Strings are parsed (they come from the environment and the command
    line); anything else raises :class:`ValueError` with one line naming
    ``name``, the allowed range and the value given.
    """
    what = "a whole number" if kind is int else "a number"
    message = f"{name} must be {what} from {low:g} to {high:g}, not {value!r}"
    try:
        # True and False are not numbers a person meant.
        number = math.nan if isinstance(value, bool) else float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):  # OverflowError: an int too large for a float
        raise ValueError(message) from None
    if not math.isfinite(number) or not low <= number <= high:
        raise ValueError(message)
    if kind is int:
        if number != int(number):
            raise ValueError(message)
        return int(number)
    return number
