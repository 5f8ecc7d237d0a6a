"""Signing in and out, who am I, and the tokens an admin makes for embedding."""

from __future__ import annotations

import secrets
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    Response,
    current_app,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)

from ..config.values import ConfigError
from ..runtime.registry import runtime_of
from .guard import failed_sign_in, fingerprint, principal, too_many
from .state import auth_of

bp = Blueprint("auth", __name__)


@bp.get("/login")
def login_form() -> Response | str:
    if auth_of(current_app).open or principal().via == "session":
        return redirect(_next())
    return render_template("login.html", next=_next(), error=None)


@bp.post("/login")
def login() -> Response | tuple[str, int] | tuple[str, int, dict[str, str]]:
    """Check the form; a session on success, the same answer for an unknown name as for a wrong password."""
    auth = auth_of(current_app)
    if auth.open:
        return redirect(_next())
    address = request.remote_addr or "?"
    name = request.form.get("username", "")[:200]
    waiting = auth.lockout.retry_after(address, name)
    if waiting is not None:
        retry = too_many(waiting).headers["Retry-After"]
        return render_template("login.html", next=_next(), error=(
            f"Too many failed sign-ins for this name from here; try again in {retry} s.")), 429, \
            {"Retry-After": retry}
    user = auth.passwords.check(auth.users, name, request.form.get("password", "")[:1000])
    if user is None:
        failed_sign_in(address, name, "login form")
        return render_template("login.html", next=_next(), error="Wrong user name or password."), 401
    auth.lockout.succeeded(address, name)
    session.clear()
    session.update(user=user.name, fp=fingerprint(user), csrf=secrets.token_urlsafe(24),
                   sid=auth.sessions.open(user.name))
    session.permanent = True
    return redirect(_next())


@bp.post("/logout")
def logout() -> Response:
    auth = auth_of(current_app)
    if not auth.open:  # an open server has no session to end
        auth.sessions.end(session.get("sid"))
        session.clear()
        auth.streams.check_now()  # a stream of this session (a copied cookie's too) ends now
    return redirect(url_for("auth.login_form"))


@bp.get("/api/me")
def me() -> Response:
    who = principal()
    return jsonify(name=who.name, role=who.role, via=who.via,
                   cameras=sorted(who.cameras) if who.cameras is not None else None)


@bp.get("/api/tokens")
def tokens() -> Response:
    return jsonify(tokens=[token.as_json() for token in auth_of(current_app).tokens.all()])


@bp.post("/api/tokens")
def create_token() -> tuple[Response, int]:
    """``{"camera": NAME, "label": TEXT}``: a new token, shown this once."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or not isinstance(body.get("camera"), str):
        return _bad('the body must be JSON: {"camera": "NAME", "label": "what it is for"}')
    label = body.get("label", "")
    if not isinstance(label, str):
        return _bad("label must be a string")
    camera = runtime_of(current_app).cameras.get(body["camera"])  # an admin's: every camera
    if camera is None:
        return jsonify(error=f"no camera named {body['camera'][:40]!r}", status=404), 404
    try:
        token, secret = auth_of(current_app).tokens.create(camera.name, label)
    except ConfigError as exc:  # too many tokens, or a damaged file: nothing was made
        return jsonify(error=str(exc), status=409), 409
    return jsonify(**token.as_json(), token=secret,
                   stream=f"/video_feed/{camera.name}?token={secret}",
                   snapshot=f"/snapshot/{camera.name}.jpg?token={secret}"), 201


@bp.delete("/api/tokens/<token_id>")
def revoke_token(token_id: str) -> Response | tuple[Response, int]:
    try:
        revoked = auth_of(current_app).tokens.revoke(token_id[:40])
    except ConfigError as exc:
        return jsonify(error=str(exc), status=409), 409
    if revoked is None:
        return jsonify(error=f"no token {token_id[:40]!r}", status=404), 404
    auth_of(current_app).streams.check_now()
    return jsonify(revoked=revoked.as_json())


def _bad(message: str) -> tuple[Response, int]:
    return jsonify(error=message, status=400), 400


def _next() -> str:
    """Where to go after signing in: a path on this server only, judged as a browser will read it.

    Browsers drop tabs and line breaks inside a URL and read a backslash as a
    slash, so ``/\t/evil.com`` would be ``//evil.com``: a value holding any
    control character or backslash is refused outright, not cleaned.
    """
    target = request.values.get("next", "/")
    if (not target.startswith("/") or target.startswith("//") or "\\" in target
            or any(ord(char) < 0x20 or ord(char) == 0x7F for char in target)):
        return "/"
    parts = urlsplit(target)
    return target if not parts.scheme and not parts.netloc else "/"
