from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

import pytest
from flask import Flask

from camera.sender import STALL_TIMEOUT
from webapp.app import shutdown
from webapp.config import SENDER
from webapp.server import make_server


@pytest.fixture(params=["sender", "wsgi"])
def serve(request) -> Iterator[Callable[[Flask], str]]:
    """Serve an app with a real waitress on 127.0.0.1; returns its base URL.

    Every test using it runs twice: with streams handed to the sender
    thread, and streamed through waitress's own writes.
    """
    running = []

    def start(app: Flask, threads: int = 32, client_timeout: float = STALL_TIMEOUT) -> str:
        app.config["SOCKET_HANDOFF"] = request.param == "sender"
        app.extensions[SENDER].stall_timeout = client_timeout
        server = make_server(app, "127.0.0.1", 0, threads=threads, client_timeout=client_timeout)
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        running.append((app, server))
        return f"http://127.0.0.1:{server.effective_port}"

    yield start
    for app, server in running:
        shutdown(app)
        server.close()
        server.task_dispatcher.shutdown(timeout=2)
