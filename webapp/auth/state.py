"""An app's sign-in state: who may sign in, the lockout, the tokens, and the names and origins it answers.

Built from the settings by :func:`start_auth`; a reload (SIGHUP) replaces
the users with :meth:`Auth.update`. With no user and on loopback, or with
``NO_AUTH``, everyone is let in as an admin, as before there were users.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import secrets
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flask import Flask, request
from flask.sessions import SecureCookieSessionInterface

from ..config.values import ConfigError, names_list
from .lockout import Lockout
from .revocation import StreamWatch
from .sessions import SessionStore
from .tokens import TokenStore
from .users import PLACEHOLDER, Passwords, User, users_from

AUTH = "camstream.auth"
SECRET_FILE = "secret_key"
TOKENS_FILE = "tokens.json"
SESSIONS_FILE = "sessions.json"
LOOPBACK_NAMES = ("localhost", "localhost.localdomain", "ip6-localhost")

log = logging.getLogger("camstream.auth")


def auth_of(app: Flask) -> Auth:
    return app.extensions[AUTH]


def is_loopback(host: str) -> bool:
    """Whether listening on ``host`` keeps camstream to this machine."""
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass
class Auth:
    users: dict[str, User]
    open: bool
    tokens: TokenStore
    lockout: Lockout
    allowed_hosts: frozenset[str]
    any_host: bool
    trusted_proxies: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]
    cors_origins: frozenset[str]
    sessions: SessionStore
    passwords: Passwords = field(default_factory=Passwords)
    streams: StreamWatch = field(default_factory=StreamWatch)

    def update(self, config: Mapping[str, Any], tables: Mapping[str, Any], cameras: list[str]) -> None:
        """Take the users of reloaded settings (the rest is read at start); end the sessions of users removed
        or given a new password, and cut their streams."""
        users = read_users(config, tables, cameras)
        if (not users or config["NO_AUTH"]) != self.open:
            raise ConfigError("turning sign-in on or off (the first user, the last, NO_AUTH) takes a restart")
        old, self.users = self.users, users
        kept = lambda name: name in users and (name not in old or old[name].password_hash == users[name].password_hash)
        if self.sessions.end_users(kept):
            log.info("sessions of removed users and of users with a new password ended")
        self.streams.check_now()

    def trusted(self, address: str | None) -> bool:
        try:
            ip = ipaddress.ip_address(address or "")
        except ValueError:
            return False
        return any(ip in network for network in self.trusted_proxies)


def read_users(config: Mapping[str, Any], tables: Mapping[str, Any], cameras: list[str]) -> dict[str, User]:
    users = users_from(config.get("USERS"), tables)
    for user in users.values():
        for camera in sorted(user.cameras or ()):
            if camera not in cameras and "." not in camera:  # PEER.CAMERA: known once its peer answers
                raise ConfigError(f"user {user.name!r} may see camera {camera!r}, but there is no camera of that name")
    return users


def start_auth(app: Flask, config: Mapping[str, Any], tables: Mapping[str, Any], cameras: list[str],
               data: Path) -> Auth:
    """Read the sign-in settings into ``app``: its users, session secret, tokens, hosts, proxies and origins."""
    users = read_users(config, tables, cameras)
    for user in users.values():
        if user.placeholder:
            log.warning("user %s has no password yet (its password_hash is %s): nobody signs in as %s", user.name,
                        PLACEHOLDER, user.name)
    open_ = not users or bool(config["NO_AUTH"])
    host = str(config.get("HOST") or "127.0.0.1")
    allowed = {name.lower() for name in names_list(config.get("ALLOWED_HOSTS"))}
    if not is_loopback(host):
        machine = socket.gethostname().lower()
        allowed |= {machine, f"{machine}.local", socket.getfqdn().lower()}
    proxies, origins = proxies_and_origins(config)
    auth = Auth(users, open_, TokenStore(data / TOKENS_FILE),
                Lockout(int(config["LOGIN_ATTEMPTS"]), float(config["LOCKOUT_SECONDS"])),
                frozenset(allowed | set(LOOPBACK_NAMES)), "*" in allowed, proxies,
                frozenset(origin.rstrip("/") for origin in origins),
                SessionStore(data / SESSIONS_FILE, float(config["SESSION_LIFETIME"])))
    app.extensions[AUTH] = auth
    app.session_interface = SecureWhenHttps()
    app.secret_key = config.get("SECRET_KEY") or (None if open_ else session_secret(data))
    app.config.update(
        SESSION_COOKIE_NAME="camstream_session", SESSION_COOKIE_SAMESITE="Lax", SESSION_COOKIE_HTTPONLY=True,
        SESSION_REFRESH_EACH_REQUEST=False, PERMANENT_SESSION_LIFETIME=float(config["SESSION_LIFETIME"]))
    if not open_:
        log.info("sign-in required: %d user(s)%s", len(users),
                 f", proxies trusted: {', '.join(map(str, proxies))}" if proxies else "")
    return auth


def proxies_and_origins(config: Mapping[str, Any]) -> tuple[tuple[Any, ...], list[str]]:
    """``TRUSTED_PROXIES`` as networks and ``CORS_ORIGINS`` checked; :class:`ConfigError` naming a wrong one."""
    try:
        proxies = tuple(ipaddress.ip_network(proxy, strict=False) for proxy in names_list(config.get("TRUSTED_PROXIES")))
    except ValueError as exc:
        raise ConfigError(f"TRUSTED_PROXIES: {exc}") from None
    origins = names_list(config.get("CORS_ORIGINS"))
    for origin in origins:
        if origin == "*" or not origin.startswith(("http://", "https://")) or origin.rstrip("/").count("/") != 2:
            raise ConfigError(f"CORS_ORIGINS: {origin!r} is not an origin such as http://192.168.1.5:5173 "
                              "(no wildcard: the API is read with credentials)")
    return proxies, origins


class SecureWhenHttps(SecureCookieSessionInterface):
    """The session cookie is ``Secure`` when the request came over HTTPS (through a trusted proxy)."""

    def get_cookie_secure(self, app: Flask) -> bool:
        return request.is_secure


def session_secret(data: Path) -> bytes:
    """The key sessions are signed with: made once, kept in the data folder, so restarts keep everyone signed in."""
    path = data / SECRET_FILE
    try:
        data.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            secret = path.read_bytes()
            if len(secret) < 32:
                raise ConfigError(f"{path} is too short to be a session key; delete it to make a new one") from None
            return secret
        with os.fdopen(fd, "wb") as out:
            out.write(secrets.token_bytes(32))
        return path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot keep the session key in {data}: {exc.strerror or exc}") from None
