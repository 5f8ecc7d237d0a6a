"""Keeping the secrets in source URLs out of logs, pages, JSON and errors.

Camera URLs carry secrets in two places: the userinfo before the host
(``rtsp://admin:pa#ss@cam/``, ``http://t0ken@cam/``) and the query
(``?user=admin&pwd=...``). People type them unencoded, so a ``#``, ``/`` or
``?`` in a password is common, and :func:`urllib.parse.urlsplit` then puts
part of the password in the fragment or the path and reports none. So the
userinfo is found here by where the host is, not by the URL grammar, and a
doubtful case is masked rather than shown.
"""

from __future__ import annotations

import re
from urllib.parse import unquote

MASK = "***"

# A host (name, IPv4 or [IPv6]) with an optional port, then the end or a path, query or fragment.
_HOST_AFTER = re.compile(r"(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(?::\d*)?(?=[/?#]|$)")
# Query parameters whose names say they hold a secret.
_SECRET_NAME = re.compile(r"pass|pwd|token|key|auth|secret|sig|cred|session|ticket", re.IGNORECASE)
_QUERY_PARAMETER = re.compile(r"([?&;])([^=&;#]*)=([^&;#]*)")


def _userinfo(source: str) -> tuple[int, int | None] | None:
    """Where the userinfo of ``scheme://userinfo@host...`` starts and ends (its "@", or None without one).

    None for a string that is not ``scheme://...``. The last "@" that a host
    follows ends the userinfo, so an "@" in the password is covered; an "@"
    in the path or query may be taken for it, which masks too much, never
    too little.
    """
    scheme, sep, _ = source.partition("://")
    if not sep or not re.fullmatch(r"[A-Za-z][A-Za-z0-9+.-]*", scheme):
        return None
    start = len(scheme) + len(sep)
    for at in range(len(source) - 1, start - 1, -1):
        if source[at] == "@" and _HOST_AFTER.match(source, at + 1):
            return start, at
    return start, None


def redact_url(source: str) -> str:
    """``source`` with the password (or a user-only token) and secret query values replaced by ``***``.

    ``scheme://user:password@host`` keeps the user name; anything that is
    not ``scheme://...`` comes back unchanged.
    """
    span = _userinfo(source)
    if span is None:
        return source
    start, end = span
    if end is not None:
        user, colon, _ = source[start:end].partition(":")
        source = source[:start] + (f"{user}:{MASK}" if colon else MASK) + source[end:]
    return _QUERY_PARAMETER.sub(_mask_secret_value, source)


def _mask_secret_value(match: re.Match[str]) -> str:
    separator, name, value = match.groups()
    if value and _SECRET_NAME.search(unquote(name)):
        value = MASK
    return f"{separator}{name}={value}"


def split_userinfo(url: str) -> tuple[str, str] | None:
    """``(url without its userinfo, the userinfo)``, or None for a URL without one."""
    span = _userinfo(url)
    if span is None or span[1] is None:
        return None
    start, end = span
    return url[:start] + url[end + 1:], url[start:end]


def secrets_of(source: str) -> list[str]:
    """The secret strings in ``source``, raw and percent-decoded, longest first."""
    span = _userinfo(source)
    if span is None:
        return []
    start, end = span
    secrets: set[str] = set()
    if end is not None:
        user, colon, password = source[start:end].partition(":")
        secrets.add(password if colon else user)
    for _, name, value in _QUERY_PARAMETER.findall(source):
        if value and _SECRET_NAME.search(unquote(name)):
            secrets.add(value)
    secrets |= {unquote(secret) for secret in secrets}
    secrets.discard("")
    return sorted(secrets, key=len, reverse=True)


class Redactor:
    """Scrubs one source's secrets from any text, such as an error message from FFmpeg."""

    def __init__(self, source: str) -> None:
        self._secrets = secrets_of(source)

    def redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, MASK)
        return text
