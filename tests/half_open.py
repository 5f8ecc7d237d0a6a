"""Run inside a fresh network namespace (``unshare -rn``) by test_clients.py.

Serves a camera, connects a viewer, then takes the loopback interface down:
the viewer is gone without a FIN or RST, and nothing the server sends is
acknowledged, as when a phone leaves the Wi-Fi. Prints how long the server
took to free the viewer's stream slot, or "held" if it did not in 20 s.
"""

import socket
import subprocess
import sys
import threading
import time

from camera import PatternCamera
from tests.helpers import wait_until
from webapp import create_app
from webapp.app import shutdown
from webapp.runtime.registry import runtime_of
from webapp.serve.server import make_server

CLIENT_TIMEOUT = 2.0


def main(path: str) -> None:
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    app = create_app({"CAMERAS": {"cam": PatternCamera("cam", fps=30)}, "SOCKET_HANDOFF": path == "sender"})
    # A long sender stall timeout: only the kernel's TCP_USER_TIMEOUT can free the slot.
    runtime_of(app).sender.stall_timeout = 600
    server = make_server(app, "127.0.0.1", 0, threads=8, client_timeout=CLIENT_TIMEOUT)
    threading.Thread(target=server.run, daemon=True).start()
    viewer = socket.create_connection(("127.0.0.1", server.effective_port), timeout=10)
    viewer.sendall(b"GET /video_feed/cam HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    viewer.recv(65536)
    slots = runtime_of(app).slots
    assert slots.used == 1
    subprocess.run(["ip", "link", "set", "lo", "down"], check=True)
    gone = time.monotonic()
    freed = wait_until(lambda: slots.used == 0, 20, interval=0.1)
    print(f"freed {time.monotonic() - gone:.1f}" if freed else "held", flush=True)
    # Stop the capture thread before the interpreter goes: a native encoder torn down under a running
    # thread at exit can abort the process.
    shutdown(app)
    server.close()


if __name__ == "__main__":
    main(sys.argv[1])
