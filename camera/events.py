"""What happens to cameras, as numbered events that clients follow at their own pace.

:class:`EventLog` keeps the newest events of all cameras, each numbered and
encoded once as a Server-Sent Events record (``id:``, ``event:``,
``data:``). A reader remembers the last number it got and asks for what
came after, so a slow reader only falls behind, never holds anything up,
and a reader that reconnects with ``Last-Event-ID`` resumes where it left
off without duplicates. :class:`EventHub` feeds it: every detection
result, every change of a camera's state (as it happens, in order), and each
camera's status every :data:`STATUS_SECONDS` while anyone listens.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections import deque
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any

from .base import BaseCamera

# Events kept for readers that are behind or reconnecting.
LOG_SIZE = 2000
STATUS_SECONDS = 2.0


@dataclass(frozen=True)
class Event:
    """One event: its number, kind (``detection``, ``state``, ``status``), camera and JSON data."""

    id: int
    kind: str
    camera: str
    data: dict[str, Any]
    sse: bytes = field(repr=False, default=b"")
    json: str = field(repr=False, default="")


class EventLog:
    """The newest :data:`LOG_SIZE` events, numbered from a start that differs from run to run.

    Numbers start at the time the log was made, in milliseconds, so a
    ``Last-Event-ID`` from before a restart is older than every event of
    this run: its reader gets all that is kept rather than nothing.
    """

    def __init__(self, size: int = LOG_SIZE) -> None:
        self._events: deque[Event] = deque(maxlen=size)
        self._lock = threading.Lock()
        self._next_id = int(time.time() * 1000)
        self._listeners: set[Callable[[], None]] = set()
        self.closed = False
        # Streams started before the last end_streams() end.
        self.generation = 0

    @property
    def last_id(self) -> int:
        return self._next_id - 1

    def publish(self, kind: str, camera: str, data: dict[str, Any]) -> Event:
        """Number and encode an event once; its JSON carries its kind too, as ``event``, so that a
        WebSocket client, which has no ``event:`` field, can tell the kinds apart."""
        text = json.dumps({"event": kind, **data}, allow_nan=False, separators=(",", ":"))
        with self._lock:
            number = self._next_id
            self._next_id += 1
            event = Event(number, kind, camera, data, f"id: {number}\nevent: {kind}\ndata: {text}\n\n".encode(),
                          text)
            self._events.append(event)
            listeners = list(self._listeners)
        for listener in listeners:
            listener()
        return event

    def after(self, last_id: int, cameras: Collection[str] | None = None, limit: int = 100) -> tuple[list[Event], int]:
        """Up to ``limit`` events numbered above ``last_id`` of ``cameras`` (all if None), oldest first,
        and the number to ask after next time (past the events of other cameras looked at)."""
        with self._lock:
            if not self._events or last_id >= self._events[-1].id:
                # A number from the future (another run's clock) starts over from now.
                return [], min(last_id, self.last_id)
            # Numbers are consecutive, so the first one wanted is found by arithmetic.
            start = max(0, last_id + 1 - self._events[0].id)
            candidates = list(itertools.islice(self._events, start, None))
        found = []
        seen = last_id
        for event in candidates:
            seen = event.id
            if cameras is None or event.camera in cameras:
                found.append(event)
                if len(found) >= limit:
                    break
        return found, seen

    def close(self) -> None:
        """The server is stopping: end every reader's stream, and every stream that starts later."""
        self.closed = True
        self.end_streams()

    def end_streams(self) -> None:
        """End every reader's stream now; an ``EventSource`` reconnects and resumes where it was."""
        with self._lock:
            self.generation += 1
            listeners = list(self._listeners)
        for listener in listeners:
            listener()

    def listen(self, listener: Callable[[], None]) -> None:
        """Call ``listener()`` (it must not block) after each new event."""
        with self._lock:
            self._listeners.add(listener)

    def unlisten(self, listener: Callable[[], None]) -> None:
        with self._lock:
            self._listeners.discard(listener)

    @property
    def listening(self) -> int:
        with self._lock:
            return len(self._listeners)


class EventHub:
    """Puts the results of ``detections`` and the states of ``cameras`` into ``log``.

    ``status_of(camera)`` makes a camera's status event; while the log has
    readers (:meth:`reader_joined` starts it) a thread sends each camera's
    every :data:`STATUS_SECONDS`.
    """

    def __init__(self, log: EventLog, status_of: Callable[[BaseCamera], dict[str, Any]]) -> None:
        self.log = log
        self.status_of = status_of
        self.cameras: dict[str, BaseCamera] = {}
        self._lock = threading.Lock()
        self._ticking: threading.Thread | None = None

    def watch(self, camera: BaseCamera, detection: Any = None) -> None:
        """Put ``camera``'s states and ``detection``'s results (if it has a detector) into the log."""
        self.cameras = {**self.cameras, camera.name: camera}
        camera.add_state_listener(self._state_changed)
        if detection is not None:
            detection.add_result_listener(lambda result: self._result(camera, result))

    def forget(self, name: str) -> None:
        """Stop following the camera called ``name`` (it was removed); what it does from now on is not news."""
        self.cameras = {key: camera for key, camera in self.cameras.items() if key != name}

    def reader_joined(self) -> None:
        """A reader started following the log: make sure status events flow."""
        with self._lock:
            if self._ticking is None or not self._ticking.is_alive():
                self._ticking = threading.Thread(target=self._tick, name="camera-status-events", daemon=True)
                self._ticking.start()

    def _state_changed(self, camera: BaseCamera, state: str) -> None:
        if self.cameras.get(camera.name) is not camera:
            return
        status = camera.status()
        self.log.publish("state", camera.name, {"camera": camera.name, "state": state, "time": round(time.time(), 3),
                                                "last_error": status["last_error"],
                                                "reached": status["frames_captured"] > 0})

    def _result(self, camera: BaseCamera, result: Any) -> None:
        if self.cameras.get(camera.name) is not camera:
            return
        self.log.publish("detection", result.camera, result.as_json())

    def _tick(self) -> None:
        """Each camera's status every few seconds, until the log has had no reader for a few rounds.

        The first round waits for nobody: the reader that started it may not be listening quite yet.
        """
        quiet_rounds = 0
        while not self.log.closed and quiet_rounds < 3:
            if self.log.listening:
                quiet_rounds = 0
                for camera in self.cameras.values():
                    self.log.publish("status", camera.name, self.status_of(camera))
            else:
                quiet_rounds += 1
            time.sleep(STATUS_SECONDS)
