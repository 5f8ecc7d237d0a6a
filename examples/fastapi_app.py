"""camstream's camera in a FastAPI app: a page, an MJPEG stream, a snapshot and a WebSocket of JPEGs.

    pip install 'camstream[fastapi]'
    CAMSTREAM_SOURCE=pattern uvicorn examples.fastapi_app:app

The routes are the ones FastAPI tutorials write, but the frames come from
camstream: one capture thread encodes each frame once for every viewer,
viewers wait on the event loop instead of holding a worker thread each, and
a slow viewer gets fewer frames, never old ones.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, HTTPException, Query, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import HTMLResponse, Response, StreamingResponse
from fastapi.templating import Jinja2Templates

from camera import mjpeg
from camera.viewers.aio import AsyncFrames, mjpeg_body, snapshot

from .settings import camera_from_environment

camera = camera_from_environment()
templates = Jinja2Templates(directory=Path(__file__).parent / "templates")
NO_STORE = {"Cache-Control": "no-store"}


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    yield
    camera.stop()


app = FastAPI(title="camstream in FastAPI", lifespan=lifespan)


@app.get("/", response_class=HTMLResponse)
async def index(request: Request) -> HTMLResponse:
    return templates.TemplateResponse(request, "fastapi.html", {"camera": camera.name})


@app.get("/video_feed")
async def video_feed(fps: float | None = Query(None, gt=0, le=120)) -> StreamingResponse:
    """The camera as MJPEG, for ``<img src="/video_feed">``; ``?fps=`` sends this viewer fewer frames."""
    return StreamingResponse(mjpeg_body(camera, fps), media_type=mjpeg.CONTENT_TYPE, headers=NO_STORE)


@app.get("/snapshot.jpg")
async def snapshot_jpg() -> Response:
    frame = await snapshot(camera)
    if frame is None:
        raise HTTPException(503, f"camera {camera.name!r} gave no frame: {camera.status()['last_error']}")
    return Response(frame.jpeg, media_type="image/jpeg", headers=NO_STORE)


@app.get("/status")
async def status() -> dict:
    return camera.status()


@app.websocket("/ws")
async def frames(websocket: WebSocket, fps: float | None = Query(None, gt=0, le=120)) -> None:
    """Each new frame as a binary message (a JPEG), newest first."""
    await websocket.accept()
    async with AsyncFrames(camera, fps) as viewer:
        try:
            async for frame in viewer:
                await websocket.send_bytes(frame.jpeg)
        except WebSocketDisconnect:
            pass
