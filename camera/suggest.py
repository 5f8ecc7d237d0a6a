""""Did you mean ...?": the closest of the names a mistyped one could have been, for one-line errors."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def closest(word: str, choices: Iterable[str]) -> str | None:
    """The choice ``word`` most likely meant, or None if none is close.

    A slip of a key or two (``rstp``, ``fsp``) first, the earlier choice on a tie, so list the likelier ones
    first; then a word much like one (``--src``, ``--detection``); then the one choice it begins.
    """
    choices = list(choices)
    typed = _bare(word)
    # A slip keeps the first letter: "ftp" is no slip of "rtp" or "tcp".
    likely = [(index, _bare(choice)) for index, choice in enumerate(choices) if _bare(choice)[:1] == typed[:1]]
    distances = [(_slips(typed, bare), index) for index, bare in likely]
    if distances:
        slips, index = min(distances)
        if slips <= max(1, len(typed) // 4):
            return choices[index]
    found = difflib.get_close_matches(typed, [bare for _, bare in likely], n=1, cutoff=0.6)
    if found:
        return next(choices[index] for index, bare in likely if bare == found[0])
    starting = [choices[index] for index, bare in likely if len(typed) >= 3 and bare.startswith(typed)]
    return starting[0] if len(starting) == 1 else None


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the error about ``word``, or nothing if no choice is close."""
    found = closest(word, choices)
    return f" (did you mean {found!r}?)" if found is not None else ""


def _bare(name: str) -> str:
    """A name as compared: lower case, without a flag's dashes."""
    return name.lower().lstrip("-")


def _slips(typed: str, meant: str) -> int:
    """Keys added, left out, changed or swapped with the next to type ``meant`` as ``typed``."""
    previous2: list[int] = []
    previous = list(range(len(meant) + 1))
    for row, letter in enumerate(typed, 1):
        current = [row]
        for column, other in enumerate(meant, 1):
            cost = min(previous[column] + 1, current[column - 1] + 1, previous[column - 1] + (letter != other))
            if row > 1 and column > 1 and letter == meant[column - 2] and typed[row - 2] == other:
                cost = min(cost, previous2[column - 2] + 1)
            current.append(cost)
        previous2, previous = previous, current
    return previous[-1]
