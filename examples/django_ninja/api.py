"""The Ninja API: the camera as an MJPEG stream, a snapshot and its status."""

from __future__ import annotations

from django.core.handlers.asgi import ASGIRequest
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from ninja import NinjaAPI, Query, Schema
from pydantic import Field

from camera import mjpeg
from camera.viewers.aio import mjpeg_body
from camera.viewers.wsgi import mjpeg_stream

from ..settings import camera_from_environment

camera = camera_from_environment()
api = NinjaAPI(title="camstream in Django Ninja")


class StreamOptions(Schema):
    fps: float | None = Field(None, gt=0, le=120, description="send this viewer at most this many frames a second")


@api.get("/camera")
def stream(request: HttpRequest, options: Query[StreamOptions]) -> StreamingHttpResponse:
    """The camera as MJPEG, for ``<img src="/api/camera">``.

    Under ASGI the frames are awaited on the event loop (no thread per
    viewer); under WSGI each viewer's worker thread waits for them.
    """
    if isinstance(request, ASGIRequest):
        body = mjpeg_body(camera, options.fps)
    else:
        body = mjpeg_stream([camera], request.META.get("waitress.client_disconnected"), options.fps)
    response = StreamingHttpResponse(body, content_type=mjpeg.CONTENT_TYPE)
    response["Cache-Control"] = "no-store"
    return response


@api.get("/camera/snapshot.jpg")
def snapshot(request: HttpRequest) -> HttpResponse:
    frame = camera.snapshot(5.0)
    if frame is None:
        return api.create_response(request, {"detail": f"camera {camera.name!r} gave no frame"}, status=503)
    response = HttpResponse(frame.jpeg, content_type="image/jpeg")
    response["Cache-Control"] = "no-store"
    return response


@api.get("/camera/status")
def status(request: HttpRequest) -> dict:
    return camera.status()
