"""``X-Forwarded-For/-Proto/-Host`` honoured from the trusted proxies only, ignored from anyone else."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from werkzeug.middleware.proxy_fix import ProxyFix


class TrustedProxy:
    """Wraps a WSGI app: a request from a trusted address is seen as the proxy forwarded it (client, scheme, host)."""

    def __init__(self, app: Callable[..., Iterable[bytes]], trusted: Callable[[str | None], bool]) -> None:
        self.app = app
        self.trusted = trusted
        self.forwarded = ProxyFix(app, x_for=1, x_proto=1, x_host=1)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if self.trusted(environ.get("REMOTE_ADDR")):
            return self.forwarded(environ, start_response)
        return self.app(environ, start_response)
