"""Who may watch: users and roles, sessions, HTTP Basic, tokens for embedding, lockout, hosts, CORS, proxies.

- :func:`start_auth` reads the settings into an app; :func:`install` puts
  the guard in front of every route.
- :func:`principal` says who the current request comes from.
- ``bp``: ``/login``, ``/logout``, ``/api/me`` and ``/api/tokens``.
"""

from .guard import Principal, install, principal, still_allowed
from .proxy import TrustedProxy
from .state import AUTH, Auth, auth_of, is_loopback, start_auth
from .users import hash_password
from .views import bp

__all__ = [
           "AUTH",
           "Auth",
           "Principal",
           "TrustedProxy",
           "auth_of",
           "bp",
           "hash_password",
           "install",
           "is_loopback",
           "principal",
           "start_auth",
           "still_allowed",
]
