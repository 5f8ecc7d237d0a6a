"""A detector in a process of its own, so that no detector can starve capture or streaming.

A detector is CPU-heavy and may be pure Python; in camstream's process it
would hold the GIL that the capture threads, the sender and the HTTP
workers need. So each camera's detector runs in a worker process, at a
lower priority, started as ``python -m camera.detect``: a fresh
interpreter that imports only camstream and the detector (never the
program that started the server, as multiprocessing's ``spawn`` would).
Frames cross a socket pair as the JPEG bytes they already are and are
decoded there. A worker that dies or hangs is killed and replaced by its
owner (:mod:`camera.detect.runner`); the camera never notices.
"""

from __future__ import annotations

import json
import os
import pickle
import signal
import socket
import struct
import subprocess
import sys
import time
import traceback
from collections.abc import Sequence

from .detection import Detection
from .errors import DetectorCrashed, DetectorLoadError, FrameError
from .spec import DetectorSpec

# Workers yield the CPU to the capture and sender threads when cores are short.
WORKER_NICENESS = 10
_HEADER = struct.Struct("!Q")
# What a pickled message starts with (its protocol, 2 or later); a frame is JPEG bytes as they are.
PICKLED = b"\x80"
# A setting the worker takes between frames: ("motion_mask", polygons in fractions of the picture).
MOTION_MASK = "motion_mask"


class DetectorProcess:
    """One worker process running one detector; use it from one thread (but :meth:`kill` from any)."""

    def __init__(self, spec: DetectorSpec, confidence: float, classes: Sequence[str], name: str) -> None:
        self.spec = spec
        self.confidence = confidence
        self.classes = tuple(classes)
        self.name = name
        self.description: str | None = None
        # Where no motion counts (see camera/detect/motion.py), sent to the worker before the next frame once it
        # changed, and again to a restarted one.
        self.motion_mask: tuple = ()
        self._mask_sent: tuple | None = None
        self._process: subprocess.Popen | None = None
        self._sock: socket.socket | None = None

    def start(self) -> None:
        """Start the worker; it loads the detector while the caller does other things."""
        ours, theirs = socket.socketpair()
        options = json.dumps({"spec": self.spec.text, "confidence": self.confidence, "classes": self.classes})
        # The worker imports what this process can: camstream and a MODULE:ATTR detector.
        path = os.pathsep.join([os.getcwd(), *(entry for entry in sys.path if entry)])
        try:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "camera.detect", str(theirs.fileno()), options],
                pass_fds=[theirs.fileno()], env={**os.environ, "PYTHONPATH": path}, stdin=subprocess.DEVNULL)
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        self._sock = ours
        self._mask_sent = None

    def wait_ready(self, timeout: float) -> None:
        """Wait until the detector is loaded: :class:`DetectorLoadError` if it cannot be, or
        :class:`DetectorCrashed` if the worker died or took longer than ``timeout``."""
        message = self._receive(timeout, f"the detector did not load within {timeout:g} s")
        if message[0] == "failed":
            self.stop()
            raise DetectorLoadError(message[1])
        self.description = message[1]

    def detect(self, data: bytes, timeout: float) -> tuple[list[Detection], float, int]:
        """Detections in the JPEG ``data``, the detector's time in ms, and the frames its motion gate
        has kept from it so far.

        :class:`FrameError` when the detector raised on this frame (the
        worker goes on), :class:`DetectorCrashed` when the worker died or
        took longer than ``timeout`` (the worker is gone).
        """
        if self._sock is None:
            raise DetectorCrashed("the detector is not running")
        try:
            self._sock.settimeout(timeout)
            if self.motion_mask != (self._mask_sent or ()):
                send_message(self._sock, (MOTION_MASK, self.motion_mask))
                self._mask_sent = self.motion_mask
            send_message(self._sock, data)
        except OSError:
            raise self._lost("the detector process died") from None
        message = self._receive(timeout, f"the detector took longer than {timeout:g} s")
        if message[0] == "error":
            raise FrameError(message[1], message[2])
        return message[1], message[2], message[3]

    def kill(self) -> None:
        """Kill the worker now; safe from any thread (its owner then sees :class:`DetectorCrashed`)."""
        process = self._process
        if process is not None and process.poll() is None:
            process.kill()

    def stop(self, timeout: float = 1.0) -> None:
        """Ask the worker to quit; kill it if it does not within ``timeout``."""
        process, sock = self._process, self._sock
        self._process = self._sock = None
        if sock is not None:
            # The worker quits when its end of the socket closes.
            sock.close()
        if process is not None:
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def _receive(self, timeout: float, hung: str) -> tuple:
        assert self._sock is not None
        try:
            return receive_message(self._sock, time.monotonic() + timeout)
        except TimeoutError:
            raise self._lost(hung) from None
        except (EOFError, OSError, pickle.UnpicklingError):
            raise self._lost("the detector process died") from None

    def _lost(self, reason: str) -> DetectorCrashed:
        process = self._process
        self.kill()
        if process is not None and reason.endswith("died"):
            try:
                code = process.wait(1.0)
                reason += f" (exit status {code})" if code >= 0 else f" (killed by signal {-code})"
            except subprocess.TimeoutExpired:
                pass
        self.stop(1.0)
        return DetectorCrashed(reason)


def send_message(sock: socket.socket, message: object) -> None:
    """One message: bytes as they are (a frame), anything else pickled, behind its length."""
    data = message if isinstance(message, bytes) else pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    sock.sendall(_HEADER.pack(len(data)))
    sock.sendall(data)


def receive_message(sock: socket.socket, deadline: float | None = None, raw: bool = False) -> object:
    """The next message (unpickled unless ``raw``); :class:`EOFError` when the other end closed,
    :class:`TimeoutError` past ``deadline`` (a ``time.monotonic()`` value)."""
    (length,) = _HEADER.unpack(_read(sock, _HEADER.size, deadline))
    data = _read(sock, length, deadline)
    return data if raw else pickle.loads(data)


def _read(sock: socket.socket, size: int, deadline: float | None) -> bytes:
    buffer = bytearray(size)
    view = memoryview(buffer)
    got = 0
    while got < size:
        if deadline is not None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError
            sock.settimeout(remaining)
        count = sock.recv_into(view[got:])
        if not count:
            raise EOFError
        got += count
    return bytes(buffer)


def serve(sock: socket.socket, spec: DetectorSpec, confidence: float, classes: Sequence[str]) -> None:
    """The worker: load the detector, then answer one frame at a time until the socket closes."""
    from .build import build_detector

    try:
        detector = build_detector(spec, confidence, classes)
    except DetectorLoadError as exc:
        send_message(sock, ("failed", str(exc)))
        return
    except Exception as exc:  # noqa: BLE001 - a plugin may fail in any way
        send_message(sock, ("failed", _one_line(exc)))
        return
    try:
        send_message(sock, ("ready", detector.description))
        while True:
            data = receive_message(sock, raw=True)
            if data[:1] == PICKLED:  # not a frame (a JPEG starts 0xFF 0xD8): a setting, which has no answer
                _setting(detector, pickle.loads(data))  # type: ignore[arg-type]
                continue
            try:
                started = time.perf_counter()
                detections = detector.run_jpeg(data)  # type: ignore[arg-type]
                elapsed_ms = (time.perf_counter() - started) * 1000
            except Exception as exc:  # noqa: BLE001 - whatever a detector raises must reach the status
                send_message(sock, ("error", _one_line(exc), traceback.format_exc()))
                continue
            send_message(sock, ("result", detections, elapsed_ms, detector.gated))
    except (EOFError, OSError):
        # The server closed its end: it stopped, or gave up on this worker.
        return


def _setting(detector: object, message: tuple) -> None:
    if message[0] == MOTION_MASK:
        detector.set_motion_mask(message[1])  # type: ignore[attr-defined]


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}"[:300]


def main(argv: Sequence[str]) -> None:
    """``python -m camera.detect FD OPTIONS``, as :meth:`DetectorProcess.start` runs it."""
    from .spec import parse_spec

    # Ctrl-C in a terminal reaches the whole process group; the server stops its workers itself.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        os.nice(WORKER_NICENESS)
    except OSError:
        pass
    fd, options = int(argv[0]), json.loads(argv[1])
    with socket.socket(fileno=fd) as sock:
        serve(sock, parse_spec(options["spec"]), options["confidence"], options["classes"])
