"""Every error answers JSON, so scripts and dashboards can read it."""

from __future__ import annotations

import json

from flask import Flask, Response, jsonify
from werkzeug.exceptions import HTTPException

from camera.record.storage import NotFollowed

# How long a client told "503, come back later" is asked to wait.
RETRY_AFTER_SECONDS = 5


def error_body(status: int, message: str) -> bytes:
    """The JSON body of an error, for answers written outside Flask (by the server itself)."""
    return json.dumps({"error": message, "status": status}).encode()


def json_error(status: int, message: str, **extra: object) -> Response:
    response = jsonify(error=message, status=status, **extra)
    response.status_code = status
    return response


def _http_error(exc: HTTPException) -> Response:
    response = json_error(exc.code or 500, exc.description or exc.name)
    # Keep headers such as Allow (405) that the exception carries.
    for name, value in exc.get_headers():
        if name.lower() != "content-type":
            response.headers[name] = value
    return response


def _not_followed(exc: NotFollowed) -> Response:
    return json_error(404, "no such file in the storage folder (a symlink there is not followed)")


def register(app: Flask) -> None:
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(NotFollowed, _not_followed)
