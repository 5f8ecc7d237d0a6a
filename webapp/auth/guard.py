"""Who is asking, and may they: run before every request, ahead of every route.

In order: the ``Host`` is one camstream answers to (DNS rebinding); a CORS
preflight from an allowed origin is answered; the requester is found (a
session cookie, HTTP Basic, or a token as ``?token=`` or ``Authorization:
Bearer``); the endpoint is one that requester may use (a camera's token:
its live video; a peer token, which a hub holds: every camera, read only);
a request that changes something comes from camstream's own page.
Cameras a requester may not see are filtered out where cameras are listed
(:func:`webapp.api.common.all_cameras`).
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from flask import Flask, Response, current_app, g, redirect, request, session, url_for

from ..api.errors import json_error
from .lockout import Locked
from .state import Auth, auth_of
from .tokens import Token
from .users import ADMIN, USER_PATTERN, VIEWER, User

log = logging.getLogger("camstream.auth")

OPEN, SESSION, BASIC, TOKEN, PEER, NOBODY = "open", "session", "basic", "token", "peer token", "nobody"
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
# The name token guesses are counted under (no user name can look like it).
TOKEN_TRIES = "(token)"

# Anyone may use these.
PUBLIC = {"static", "auth.login_form", "auth.login", "auth.logout", "status.healthz", "page.favicon"}
# Live video: all a token opens (and, with ?action=, mjpg-streamer's URLs on the page's paths).
LIVE = {"streams.video_feed", "streams.snapshot", "streams.streams", "compat.stream", "compat.snapshot",
        "push.events", "push.websocket", "push.not_upgraded", "media.mse", "media.mse_not_upgraded",
        "media.playlist", "media.segment", "webrtc.whep", "webrtc.whep_options", "webrtc.whep_end",
        "webrtc.whep_patch", "webrtc.settings"}
WEBSOCKETS = {"push.websocket", "push.not_upgraded", "media.mse", "media.mse_not_upgraded"}
ACTION_PAGES = {"page.index", "compat.octopi_page"}
# Pages a browser opens: without a session, the login form instead of a 401.
PAGES = {"page.index", "compat.octopi_page", "events.page"}
# Only an admin: what changes or deletes, and the server-wide numbers.
ADMIN_ONLY = {"metrics.metrics", "events.delete", "auth.tokens", "auth.create_token", "auth.revoke_token",
              "zones.zones", "zones.save_zones"}
# What a peer token (a hub's credential) reads besides live video: the camera list and status, the events and
# their files, recordings; all of it GET or HEAD. Never a page (it signs no browser in), nor what is an admin's.
PEER_READS = {"status.cameras_status", "status.camera_status", "events.events", "events.event", "events.snapshot",
              "events.clip", "events.peer_event_file", "recordings.recordings", "recordings.download",
              "detection.detections", "webrtc.webrtc_status", "compat.state", "auth.me"}
PEER_METHODS = ("GET", "HEAD")
CORS_METHODS = "GET, HEAD"
CORS_HEADERS = "Authorization, Last-Event-ID, Cache-Control"


@dataclass(frozen=True)
class Principal:
    """Who a request comes from: ``role`` is admin, viewer, token or nobody; ``cameras`` None for all.

    ``proof`` is what let them in, to check again while a stream runs: the
    session id, the password hash's fingerprint (Basic), or the token's id.
    """

    name: str | None
    role: str
    cameras: frozenset[str] | None
    via: str
    proof: str = field(default="", repr=False, compare=False)

    @property
    def admin(self) -> bool:
        return self.role == ADMIN

    @property
    def anonymous(self) -> bool:
        return self.role == NOBODY


EVERYONE = Principal(None, ADMIN, None, OPEN)
ANONYMOUS = Principal(None, NOBODY, frozenset(), NOBODY)


def principal() -> Principal:
    """Who the current request comes from (everyone is an admin on an open server)."""
    return g.get("principal", EVERYONE)


def install(app: Flask) -> None:
    """Run :func:`guard` before anything else, and add CORS headers to what goes back."""
    app.before_request_funcs.setdefault(None, []).insert(0, guard)
    app.after_request(add_cors_headers)


def fingerprint(user: User) -> str:
    """Ties a session to the password it was opened with: a new password ends the old sessions."""
    return hashlib.sha256(user.password_hash.encode()).hexdigest()[:16]


def guard() -> Response | None:
    """The answer for a request that may not go on to its route; None lets it through."""
    refused = wrong_host()
    if refused is not None:
        return refused
    origin = request.headers.get("Origin")
    g.extra_headers = cors_headers(origin)
    if request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers:
        return preflight(origin)
    who = identify()
    if isinstance(who, Response):
        if request.endpoint not in PUBLIC:
            return who
        who = ANONYMOUS  # credentials that fail are none at all where none are needed
    g.principal = who
    refused = authorize(who) or foreign_websocket(origin)
    if refused is None and request.method not in SAFE_METHODS:
        refused = check_same_site(who)
    return refused


def wrong_host() -> Response | None:
    """A 400 for a ``Host`` camstream is not reached by (what DNS rebinding would send)."""
    if host_allowed(request.host):
        return None
    host = request.host if request.host.endswith("]") else request.host.rsplit(":", 1)[0]
    return json_error(400, f"camstream does not answer to the host name {host[:80]!r}; if this box is "
                           f"reached by that name, start it with --allowed-host {host[:80]}")


def foreign_websocket(origin: str | None) -> Response | None:
    """Browsers apply no CORS to WebSockets: one opened by another site's page is refused here."""
    if request.endpoint not in WEBSOCKETS or origin is None or same_origin(origin):
        return None
    if origin.rstrip("/") in auth_of_app().cors_origins:
        return None
    return json_error(403, "a WebSocket from another site's page is refused")


def auth_of_app() -> Auth:
    return auth_of(current_app)


def host_allowed(host: str) -> bool:
    auth = auth_of_app()
    name = host.lower()
    if name.startswith("["):
        name = name[1:name.find("]")] if "]" in name else name
        return _is_ip(name)
    name = name.rsplit(":", 1)[0]
    return auth.any_host or _is_ip(name) or name in auth.allowed_hosts


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
        return True
    except ValueError:
        return False


def identify() -> Principal | Response:
    """The requester, from the session, HTTP Basic or a token; a 401 or 429 for credentials that fail."""
    auth = auth_of_app()
    if auth.open:
        return EVERYONE
    name = session.get("user")
    if name is not None:
        user = auth.users.get(name)
        session_id = session.get("sid")
        if user is not None and session.get("fp") == fingerprint(user) and auth.sessions.user_of(session_id) == name:
            return Principal(user.name, user.role, user.cameras, SESSION, session_id)
        session.clear()
    credentials = request.authorization
    if credentials is not None and credentials.type == "basic":
        address = request.remote_addr or "?"
        name = (credentials.username or "")[:200]
        waiting = auth.lockout.retry_after(address, name)
        if waiting is not None:
            return too_many(waiting)
        user = auth.passwords.check(auth.users, name, credentials.password or "")
        if user is None:
            failed_sign_in(address, name, "HTTP Basic")
            return unauthorized("wrong user name or password")
        auth.lockout.succeeded(address, name)
        return Principal(user.name, user.role, user.cameras, BASIC, fingerprint(user))
    token = credentials.token if credentials is not None and credentials.type == "bearer" else None
    token = token or request.args.get("token")
    if token:
        address = request.remote_addr or "?"
        waiting = auth.lockout.retry_after(address, TOKEN_TRIES)
        if waiting is not None:
            return too_many(waiting)
        found = auth.tokens.find(token)
        if found is None:
            log.warning("a token that is not one (or was revoked) was tried from %s", address)
            log_lock(auth.lockout.failed(address, TOKEN_TRIES))
            return unauthorized("this token is not valid (revoked, or never made)")
        return token_principal(found)
    return ANONYMOUS


def token_principal(token: Token) -> Principal:
    """A camera's token sees that camera; a peer token is a viewer of every camera (what it may ask: :func:`authorize`)."""
    if token.peer:
        return Principal(f"peer token {token.id}", VIEWER, None, PEER, token.id)
    return Principal(f"token {token.id}", TOKEN, frozenset({token.camera}), TOKEN, token.id)


def still_allowed(who: Principal) -> Callable[[], bool] | None:
    """A check that what let ``who`` in still holds, for a stream to run on; None where nothing can end it."""
    auth = auth_of_app()
    if who.via in (TOKEN, PEER):
        return lambda: auth.tokens.alive(who.proof)
    if who.via not in (SESSION, BASIC):
        return None

    def same_user() -> bool:
        user = auth.users.get(who.name or "")
        if user is None or (user.role, user.cameras) != (who.role, who.cameras):
            return False
        if who.via == SESSION:
            return auth.sessions.user_of(who.proof) == user.name
        return fingerprint(user) == who.proof
    return same_user


def failed_sign_in(address: str, name: str, how: str) -> None:
    """Count and log a failure: the name if it could be one (a password typed into it is not logged), never the password."""
    log.warning("sign-in failed (%s) for user %s from %s", how, shown_name(name), address)
    log_lock(auth_of_app().lockout.failed(address, name))


def shown_name(name: str) -> str:
    return repr(name) if USER_PATTERN.fullmatch(name) else "(a name that cannot be a user's)"


def log_lock(locked: Locked | None) -> None:
    """One line when a lock starts: who waits, from where, until when."""
    if locked is None:
        return
    who = ("every user" if locked.name is None else "token tries" if locked.name == TOKEN_TRIES
           else f"user {shown_name(locked.name)}")
    until = time.strftime("%H:%M:%S", time.localtime(time.time() + locked.seconds))
    log.warning("too many failed sign-ins: %s locked out from %s until %s", who, locked.address, until)


def authorize(who: Principal) -> Response | None:
    endpoint = request.endpoint or ""
    if endpoint in PUBLIC:
        return None
    live = endpoint in LIVE or (endpoint in ACTION_PAGES and "action" in request.args)
    if who.anonymous:
        if endpoint in PAGES and not live and request.method == "GET":
            return redirect(url_for("auth.login_form", next=request.full_path.rstrip("?")))
        return unauthorized("sign in first: a session, HTTP Basic, or a token for this camera")
    if who.via == TOKEN and not live:
        return json_error(403, "a token opens only its camera's streams and snapshots")
    if who.via == PEER and (request.method not in PEER_METHODS or endpoint in ADMIN_ONLY
                            or not (live or endpoint in PEER_READS)):
        return json_error(403, "a peer token only reads this box's cameras, streams and events")
    if endpoint in ADMIN_ONLY and not who.admin:
        return json_error(403, "only an admin may do this")
    return None


def check_same_site(who: Principal) -> Response | None:
    """A request that changes something comes from camstream's own page (and, with a session, carries its CSRF token)."""
    origin = request.headers.get("Origin")
    if origin is not None and not same_origin(origin):
        return json_error(403, "a request from another site's page is refused")
    if origin is None and request.headers.get("Sec-Fetch-Site") in ("cross-site", "same-site"):
        return json_error(403, "a request from another site's page is refused")
    if who.via == SESSION:
        sent = request.headers.get("X-CSRF-Token") or request.form.get("csrf_token", "")
        if not sent or sent != session.get("csrf"):
            return json_error(403, "the CSRF token is missing or wrong; reload the page")
    return None


def same_origin(origin: str) -> bool:
    return origin.rstrip("/") == f"{request.scheme}://{request.host}"


def unauthorized(message: str) -> Response:
    """401; with a Basic challenge for programs, but not where a browser's cookie is in play (no prompt there)."""
    response = json_error(401, message)
    in_play = current_app.config["SESSION_COOKIE_NAME"] in request.cookies or \
        request.headers.get("Sec-Fetch-Site") == "same-origin"
    if not in_play:
        response.headers["WWW-Authenticate"] = 'Basic realm="camstream", charset="UTF-8"'
    return response


def too_many(waiting: float) -> Response:
    response = json_error(429, "too many failed sign-ins for this name from this address; try again later")
    response.headers["Retry-After"] = str(max(1, round(waiting + 0.5)))
    return response


def cors_headers(origin: str | None) -> dict[str, str]:
    if origin is None or origin.rstrip("/") not in auth_of_app().cors_origins:
        return {}
    return {"Access-Control-Allow-Origin": origin.rstrip("/"), "Access-Control-Allow-Credentials": "true",
            "Access-Control-Expose-Headers": "X-Timestamp, Retry-After", "Vary": "Origin"}


def preflight(origin: str | None) -> Response:
    headers = cors_headers(origin)
    if not headers or request.headers.get("Access-Control-Request-Method", "").upper() not in ("GET", "HEAD"):
        return json_error(403, "this origin may not read camstream's API" if not headers
                          else "only reads are allowed from another origin")
    response = Response(status=204, headers={**headers, "Access-Control-Allow-Methods": CORS_METHODS,
                                             "Access-Control-Allow-Headers": CORS_HEADERS,
                                             "Access-Control-Max-Age": "600"})
    return response


def add_cors_headers(response: Response) -> Response:
    for name, value in g.get("extra_headers", {}).items():
        if name == "Vary":
            response.vary.add("Origin")
        else:
            response.headers[name] = value
    return response
