"""A paced MJPEG camera stand-in for the benchmark: 640x480, 30 fps, JPEG quality 80.

Frames are blurred noise that moves, 40-60 KB each like a real camera's, and
are encoded once at start. Serves on 127.0.0.1 only and prints
``READY <port>`` when it listens.

    python bench/upstream.py --port 0
"""

from __future__ import annotations

import argparse
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import cv2
import numpy as np

BOUNDARY = "upstreamboundary"


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


def serve(port: int, fps: float) -> None:
    frames = make_frames()

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
                while True:
                    jpeg = frames[index % len(frames)]
                    head = (f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n"
                            f"X-Timestamp: {time.time():.6f}\r\n\r\n").encode()
                    self.wfile.write(head + jpeg + b"\r\n")
                    index += 1
                    next_at += 1 / fps
                    time.sleep(max(0.0, next_at - time.monotonic()))
            except (BrokenPipeError, ConnectionResetError):
                pass

    httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    httpd.daemon_threads = True
    sizes = [len(f) for f in frames]
    print(f"READY {httpd.server_address[1]} frames {min(sizes)}-{max(sizes)} bytes", flush=True)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    threading.Event().wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--fps", type=float, default=30.0)
    args = parser.parse_args()
    serve(args.port, args.fps)


if __name__ == "__main__":
    main()
