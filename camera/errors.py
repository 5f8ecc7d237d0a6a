"""Errors the camera package raises for sources."""


class SourceError(Exception):
    """A source string that cannot work, or a source that cannot be opened or read.

    The message is one readable line and never contains a password.
    """
