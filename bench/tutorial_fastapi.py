"""The FastAPI port of the BaseCamera example that tutorials copy: the baseline of bench/frameworks.py.

Not camstream code, and not to be used: it is here to be measured. As the
widely copied versions write it: one capture thread, a ``CameraEvent``
keyed by the waiting thread's id, a sync generator per viewer and
``StreamingResponse``. Two changes only: frames come from bench/upstream.py
as JPEG, the way the Raspberry Pi camera variant gets them, and each part
carries ``Content-Length``, which the load tool needs.

    UPSTREAM=http://127.0.0.1:PORT/ uvicorn tutorial_fastapi:app --app-dir bench
"""

from __future__ import annotations

import os
import threading
import time
import urllib.request
from collections.abc import Iterator

from fastapi import FastAPI
from fastapi.responses import StreamingResponse

from camera.mjpeg import boundary_from_content_type, read_parts


class CameraEvent:
    """An event per waiting thread, set for all of them when a frame is ready."""

    def __init__(self) -> None:
        self.events: dict[int, list] = {}

    def wait(self) -> bool:
        ident = threading.get_ident()
        if ident not in self.events:
            self.events[ident] = [threading.Event(), time.time()]
        return self.events[ident][0].wait()

    def set(self) -> None:
        now = time.time()
        remove = None
        for ident, event in self.events.items():
            if not event[0].is_set():
                event[0].set()
                event[1] = now
            elif now - event[1] > 5:
                remove = ident
        if remove:
            del self.events[remove]

    def clear(self) -> None:
        self.events[threading.get_ident()][0].clear()


class BaseCamera:
    thread: threading.Thread | None = None
    frame: bytes | None = None
    last_access = 0.0
    event = CameraEvent()

    def __init__(self) -> None:
        if BaseCamera.thread is None:
            BaseCamera.last_access = time.time()
            BaseCamera.thread = threading.Thread(target=self._thread)
            BaseCamera.thread.start()
            BaseCamera.event.wait()
            BaseCamera.event.clear()

    def get_frame(self) -> bytes | None:
        BaseCamera.last_access = time.time()
        BaseCamera.event.wait()
        BaseCamera.event.clear()
        return BaseCamera.frame

    @staticmethod
    def frames() -> Iterator[bytes]:
        raise RuntimeError("Must be implemented by subclasses.")

    @classmethod
    def _thread(cls) -> None:
        for frame in cls.frames():
            BaseCamera.frame = frame
            BaseCamera.event.set()
            time.sleep(0)
            if time.time() - BaseCamera.last_access > 10:
                break
        BaseCamera.thread = None


class Camera(BaseCamera):
    @staticmethod
    def frames() -> Iterator[bytes]:
        with urllib.request.urlopen(os.environ["UPSTREAM"], timeout=10) as response:
            yield from read_parts(response, boundary_from_content_type(response.headers["Content-Type"]))


app = FastAPI()


def gen(camera: Camera) -> Iterator[bytes]:
    while True:
        frame = camera.get_frame() or b""
        yield (b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: " + str(len(frame)).encode()
               + b"\r\n\r\n" + frame + b"\r\n")


@app.get("/video_feed")
def video_feed() -> StreamingResponse:
    return StreamingResponse(gen(Camera()), media_type="multipart/x-mixed-replace; boundary=frame")
