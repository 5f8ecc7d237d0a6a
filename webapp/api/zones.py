"""A camera's zones and masks, read and saved by the page's zone editor (static/zones.js); admins only.

``GET /api/cameras/<name>/zones`` answers the camera's zones, object mask and motion mask (as the settings
give them), the picture size they are drawn on, the config file and whether it can be written, and the TOML
of them. ``PUT`` takes the same three values as JSON, checks them as the config file's are (a bad polygon or a
required zone left out is a 400), writes them into the file the server was started with
(webapp/config/zonefile.py: only the camera's lines change, the file is replaced at once) and applies them as
a reload (SIGHUP) would, the camera's tracking taking the new rules without a restart of the camera. Without
a config file (or one this cannot edit, or with the values given by a flag or variable) it is a 409 whose
``toml`` is what to paste.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from flask import Blueprint, Response, abort, current_app, jsonify, request

from ..auth.guard import principal
from ..config import zonefile
from ..config.plan import camera_settings
from ..config.values import ConfigError
from ..config.zones import check_drawn, drawn_of, rules_for
from ..runtime.lineup import reload
from ..runtime.registry import runtime_of
from .common import NO_STORE, get_camera
from .errors import json_error

bp = Blueprint("zones", __name__)

# The settings the editor writes; one given by a flag or variable beats the file, so writing it there is moot.
KEYS = ("ZONES", "OBJECT_MASK", "MOTION_MASK")
# A body larger than this is no drawing (100 polygons of 100 corners is about 300 kB).
MAX_BODY = 1_000_000
# One save at a time: two admins saving at once must not interleave their read and write of the file.
_saving = threading.Lock()


@bp.get("/api/cameras/<name>/zones")
def zones(name: str) -> Response:
    """The camera's zones and masks, and whether and where the editor can save them."""
    _admin()
    camera = get_camera(name)
    return _answer(camera.name, _current(camera.name))


@bp.put("/api/cameras/<name>/zones")
def save_zones(name: str) -> Response:
    """Save the camera's zones and masks into the config file and apply them."""
    _admin()
    camera = get_camera(name)
    if request.content_length is not None and request.content_length > MAX_BODY:
        abort(413, description=f"a drawing is at most {MAX_BODY} bytes of JSON")
    body = request.get_json(silent=True)
    if body is None:
        abort(400, description="send the zones as JSON: {\"zones\": {...}, \"object_mask\": [...], "
                               "\"motion_mask\": [...]}")
    try:
        drawn = check_drawn(body)
    except ConfigError as exc:
        abort(400, description=str(exc))
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    lineup = runtime_of(app).lineup
    settings = lineup.settings
    view = camera_settings(settings, camera.name)
    try:
        # Its required zones must still be there (the values as a flag or variable would give them: JSON).
        rules_for({**view, **_as_settings(drawn)}, camera.name)
    except ConfigError as exc:
        abort(400, description=str(exc))
    top_level = _top_level(settings, camera.name)
    paste = zonefile.snippet(camera.name, _as_drawn(drawn), top_level)
    forced = [key.lower() for key in KEYS if key in settings.forced]
    if settings.file is None:
        return json_error(409, "camstream was started without a config file: paste this into one "
                               "(--config camstream.toml) to keep these zones", toml=paste)
    if forced:
        return json_error(409, f"{', '.join(forced)} of this server come from a flag or variable, which beat the "
                               "config file: change it there, or paste this into the file and drop it", toml=paste)
    with _saving:
        try:
            zonefile.write(settings.file, camera.name, _as_drawn(drawn), top_level)
        except zonefile.Unwritable as exc:
            return json_error(409, str(exc), toml=paste)
        try:
            _apply(app, camera.name)
        except (ConfigError, ValueError) as exc:
            # Someone changed the file meanwhile in a way that does not read: what it says is theirs to mend.
            return json_error(409, f"saved, but the config file does not load now: {exc}", toml=paste)
    return _answer(camera.name, _current(camera.name))


def _admin() -> None:
    if not principal().admin:
        abort(403, description="only an admin may read or change a camera's zones")


def _current(name: str) -> dict[str, Any]:
    settings = runtime_of(current_app).lineup.settings
    try:
        return drawn_of(camera_settings(settings, name))
    except ConfigError as exc:  # a variable's JSON of the wrong shape: the editor starts empty, and says why
        return {"zones": {}, "object_mask": [], "motion_mask": [], "warning": str(exc)}


def _answer(name: str, drawn: dict[str, Any]) -> Response:
    runtime = runtime_of(current_app)
    settings = runtime.lineup.settings
    camera = runtime.cameras.get(name)
    size = camera.picture_size() if camera is not None else None
    top_level = _top_level(settings, name)
    forced = [key.lower() for key in KEYS if key in settings.forced]
    writable = settings.file is not None and not forced
    body = {"camera": name, **drawn,
            "width": size[0] if size else None, "height": size[1] if size else None,
            "file": settings.file, "writable": writable,
            "detector": name in runtime.detections,
            "toml": zonefile.snippet(name, _as_drawn(drawn), top_level)}
    response = jsonify(body)
    response.headers.update(NO_STORE)
    return response


def _top_level(settings: Any, name: str) -> bool:
    """Whether the camera's settings are the file's top level: a file without camera tables."""
    return not settings.tables and name == "default"


def _as_drawn(drawn: Mapping[str, Any]) -> zonefile.Drawn:
    return zonefile.Drawn(drawn["zones"], drawn["object_mask"], drawn["motion_mask"])


def _as_settings(drawn: Mapping[str, Any]) -> dict[str, Any]:
    return {"ZONES": drawn["zones"] or None, "OBJECT_MASK": drawn["object_mask"] or None,
            "MOTION_MASK": drawn["motion_mask"] or None}


def _apply(app: Any, name: str) -> None:
    """Apply the file as a reload (SIGHUP) does: a camera whose rules alone changed keeps running, its tracking
    taking the new rules (webapp/runtime/lineup.py)."""
    reload(app)
