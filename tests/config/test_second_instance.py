"""A second camstream on another port with the same storage refuses before it touches any camera or broker:
one line, naming the process that records there, and no connection made to a camera."""

from __future__ import annotations

import socket
import sys
import threading

from tests.config.test_cli import env, run_cli, running  # noqa: F401 - a fixture


class Counting:
    """A TCP port that counts the connections made to it (a camera that is asked for its stream)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            connection.close()


def test_a_second_instance_on_the_same_storage_refuses_before_it_opens_a_camera(tmp_path, running):  # noqa: F811
    storage = tmp_path / "store"
    first = running([sys.executable, "-m", "webapp", "--source", "pattern", "--port", "0", "--record",
                     "continuous", "--storage", str(storage), "--min-free", "0"], env())
    first.wait_for_line(r"open http://localhost:(\d+)/")
    camera = Counting()
    try:
        # A watched camera (its detector opens it at start) named before the one that records.
        second = run_cli("--port", "0", "--camera", f"door=rtsp://127.0.0.1:{camera.port}/stream", "--camera",
                         "yard=pattern", "--detect", "door=motion", "--record", "yard=continuous", "--storage",
                         str(storage), "--min-free", "0")
    finally:
        camera.sock.close()
    assert second.returncode == 2
    lines = second.stderr.strip().splitlines()
    assert len(lines) == 1 and f"another camstream (pid {first.process.pid}) records into it" in lines[0], lines
    assert camera.accepted == 0, "no camera was asked for its stream"
