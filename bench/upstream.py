"""A paced MJPEG camera stand-in for the benchmark: 640x480, 30 fps, JPEG quality 80.

Frames are blurred noise that moves, 40-60 KB each like a real camera's, and
are encoded once at start; each carries the time it was sent in a JPEG
comment. Serves on 127.0.0.1 only and prints ``READY <port>`` when it
listens.

    python bench/upstream.py --port 0
    python bench/upstream.py --port 0 --drop-every 60 --drop-for 10   # for the soak
    python bench/upstream.py --port 0 --still                          # nothing moves
"""

from __future__ import annotations

import argparse
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import cv2
import numpy as np

BOUNDARY = "upstreamboundary"
STAMP_PREFIX = "sent "


def make_frames(count: int = 30, size: tuple[int, int] = (640, 480), quality: int = 80) -> list[bytes]:
    width, height = size
    rng = np.random.default_rng(7)
    field = rng.integers(0, 256, (height, width * 2, 3), dtype=np.uint8)
    frames = []
    for index in range(count):
        shift = index * 8
        window = np.ascontiguousarray(field[:, shift : shift + width])
        image = cv2.GaussianBlur(window, (0, 0), 2.9 + 0.8 * (index % 5) / 4)
        image = cv2.normalize(image, None, 0, 255, cv2.NORM_MINMAX)
        cv2.putText(image, f"upstream {index}", (20, 40), cv2.FONT_HERSHEY_SIMPLEX, 1, (255, 255, 255), 2)
        ok, buffer = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
        assert ok
        frames.append(buffer.tobytes())
    return frames


def stamped(jpeg: bytes) -> bytes:
    """``jpeg`` with the time it is sent in a comment segment, which a relay passes on untouched.

    It lets a client that gets only the JPEG (a WebSocket one) tell how old a frame is.
    """
    comment = f"{STAMP_PREFIX}{time.time():.6f}".encode()
    return jpeg[:2] + b"\xff\xfe" + (len(comment) + 2).to_bytes(2, "big") + comment + jpeg[2:]


def serve(port: int, fps: float, drop_every: float = 0.0, drop_for: float = 0.0, still: bool = False) -> None:
    """Serve until killed; with ``drop_every``, go away for ``drop_for`` seconds that often.

    A drop closes the listening socket and every stream, the way a camera
    that reboots or loses power does, then listens on the same port again.
    ``still`` sends one picture over and over: a scene where nothing moves.
    """
    frames = make_frames()[:1] if still else make_frames()
    up = threading.Event()
    up.set()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
            self.end_headers()
            next_at = time.monotonic()
            index = 0
            try:
                while up.is_set():
                    jpeg = stamped(frames[index % len(frames)])
                    head = (f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n"
                            f"X-Timestamp: {time.time():.6f}\r\n\r\n").encode()
                    self.wfile.write(head + jpeg + b"\r\n")
                    index += 1
                    next_at += 1 / fps
                    time.sleep(max(0.0, next_at - time.monotonic()))
            except (BrokenPipeError, ConnectionResetError):
                pass

    def listen(port: int) -> ThreadingHTTPServer:
        httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        httpd.daemon_threads = True
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        return httpd

    httpd = listen(port)
    port = httpd.server_address[1]
    sizes = [len(f) for f in frames]
    print(f"READY {port} frames {min(sizes)}-{max(sizes)} bytes", flush=True)
    if not drop_every:
        threading.Event().wait()
    while True:
        time.sleep(drop_every - drop_for)
        up.clear()
        httpd.shutdown()
        httpd.server_close()
        print(f"DOWN {time.time():.3f}", flush=True)
        time.sleep(drop_for)
        up.set()
        httpd = listen(port)
        print(f"UP {time.time():.3f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--fps", type=float, default=30.0)
    parser.add_argument("--drop-every", type=float, default=0.0, help="seconds between drops; 0: never")
    parser.add_argument("--drop-for", type=float, default=10.0, help="how long each drop lasts")
    parser.add_argument("--still", action="store_true", help="one picture over and over: nothing moves")
    args = parser.parse_args()
    if args.drop_every and not 0 < args.drop_for < args.drop_every:
        parser.error("--drop-for must be shorter than --drop-every")
    serve(args.port, args.fps, args.drop_every, args.drop_for, args.still)


if __name__ == "__main__":
    main()
