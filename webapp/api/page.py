"""The page people open, and the icon every browser asks for."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, render_template, send_from_directory

from ..runtime.registry import runtime_of
from .common import all_cameras

bp = Blueprint("page", __name__)


@bp.get("/")
def index() -> str:
    return render_template("index.html", cameras=list(all_cameras().values()),
                           detectors=runtime_of(current_app).detections,
                           recorders=runtime_of(current_app).recorders)


@bp.get("/favicon.ico")
def favicon() -> Response:
    """What every browser asks for on every visit, whatever the page links."""
    return send_from_directory(current_app.static_folder or "", "favicon.ico", mimetype="image/x-icon", max_age=86400)
