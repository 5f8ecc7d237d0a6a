"""Keeping passwords in source URLs out of logs, pages and JSON."""

from __future__ import annotations

from urllib.parse import unquote, urlsplit, urlunsplit

MASK = "***"


def redact_url(source: str) -> str:
    """Replace the password in ``scheme://user:password@host/...`` with ``***``.

    Anything that is not a URL with a password comes back unchanged.
    """
    try:
        parts = urlsplit(source)
    except ValueError:
        return source
    if not parts.scheme or parts.password is None:
        return source
    userinfo, _, hostport = parts.netloc.rpartition("@")
    user = userinfo.partition(":")[0]
    return urlunsplit(parts._replace(netloc=f"{user}:{MASK}@{hostport}"))


class Redactor:
    """Scrubs one source's password from any text, such as an error message."""

    def __init__(self, source: str) -> None:
        self._secrets: list[str] = []
        try:
            password = urlsplit(source).password
        except ValueError:
            password = None
        if password:
            # Longest first, so the raw form is gone before its decoded part is.
            self._secrets = sorted({password, unquote(password)}, key=len, reverse=True)

    def redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, MASK)
        return text
