"""Recording one camera: continuous segments or event clips, its events and their snapshots.

A :class:`Recorder` watches its camera like a viewer does (newest frame
wins; it never sits in the capture loop) from a thread of its own, which
does all the writing. A camera that passes its own video through (an
H.264 RTSP camera) is recorded by copy instead, continuous segments and
event clips alike: its fMP4 fragments, queued by the capture thread, are
appended as they came (the last seconds of them kept in memory for a
clip's start), and nothing is decoded for the recording (see .copy). Detection results reach it through
:meth:`Recorder.take_result`, which only queues them. Any write that fails
(a full disk, a folder it may not write) pauses recording with the reason
in the status, closes what it was writing with what it holds, and retries
every :data:`RETRY_SECONDS` until it works again; capture, streaming and
detection never notice.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from ..base import BaseCamera
from ..detect.result import DetectionResult
from ..frame import Frame
from ..media.muxer import Fragment
from ..track import eventinfo
from .copy import CopyWriter
from .formats import COPY, SUFFIXES, SegmentWriter, open_writer
from .retention import Retention, headroom
from .ring import FrameRing
from .storage import Storage
from .tracker import EventTracker, ObjectEvent, ObjectEvents, OpenEvent

log = logging.getLogger("camstream.record")



class RecordMode(StrEnum):
    EVENTS = "events"  # clips around what the detector finds
    CONTINUOUS = "continuous"  # every frame, in segments


class RecorderState(StrEnum):
    """Where a camera's recorder is; its value is what the status says."""

    RECORDING = "recording"
    WAITING = "waiting"  # for an event
    PAUSED = "paused"  # the disk refused (full, read-only); retried by itself
    STOPPED = "stopped"


EVENTS = RecordMode.EVENTS
CONTINUOUS = RecordMode.CONTINUOUS
MODES = tuple(RecordMode)
RECORDING = RecorderState.RECORDING
WAITING = RecorderState.WAITING
PAUSED = RecorderState.PAUSED
STOPPED = RecorderState.STOPPED

# How stale a segment's row may be: what a kill -9 loses of the index.
SYNC_SECONDS = 1.0
RETRY_SECONDS = 2.0
SPACE_CHECK_SECONDS = 2.0
# A continuous segment is closed when its camera has sent nothing for this long.
QUIET_SECONDS = 10.0
# Results waiting for the recorder's thread; more means it is far behind, and the oldest go.
MAX_PENDING_RESULTS = 256
# Bytes of fragments waiting to be copied; beyond it (a disk far too slow) new ones are dropped, and the next
# segment starts at the next keyframe.
MAX_PENDING_COPY_BYTES = 32 * 1024 * 1024
# How often queued fragments are written: what a process killed at any moment loses at most, beside the OS.
COPY_SECONDS = 0.1


@dataclass(frozen=True)
class RecordSettings:
    mode: str = EVENTS
    format: str = "jpeg"
    segment_seconds: float = 60.0
    pre_capture: float = 5.0
    post_capture: float = 5.0
    event_gap: float = 10.0
    event_max_length: float = 300.0
    labels: tuple[str, ...] = ()
    snapshot_quality: int = 90
    # Record a passed-through camera's own video by copy (else from its frames, in ``format``).
    copy: bool = True


@dataclass
class Writing:
    """A file being written and its row in the index."""

    writer: SegmentWriter
    segment_id: int
    name: str
    event_id: int | None = None
    last_seq: int = -1
    synced: float = field(default_factory=time.monotonic)
    # For a clip: the time its last frame may have (the event's end + post-capture), once known.
    until: float | None = None


class Recorder:
    """Records ``camera`` into ``storage`` as ``settings`` say; ``detector`` names what opens events."""

    def __init__(self, camera: BaseCamera, storage: Storage, retention: Retention, settings: RecordSettings,
                 detector: str = "") -> None:
        self.camera = camera
        self.storage = storage
        self.index = storage.index
        self.retention = retention
        self.settings = settings
        self.detector = detector
        self.tracker = EventTracker(settings.event_gap, settings.labels, settings.event_max_length)
        # Events per tracked object (results that went through camera/track/); the tracker above keeps
        # motion alone's events per busy spell. ``required_zones`` is set by camera.track.wiring.
        self.objects = ObjectEvents(settings.event_gap, settings.labels, settings.event_max_length)
        # The event whose clip holds every object's while one or more are open: one clip for all of them.
        self._scene: ObjectEvent | None = None
        self._scene_end = 0.0
        self._ring = FrameRing(settings.pre_capture)
        self._results: deque[DetectionResult] = deque(maxlen=MAX_PENDING_RESULTS)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._segment: Writing | None = None
        self._clips: list[Writing] = []
        # Files closed while the index could not be written (a full disk): their rows are closed on resuming.
        self._unsynced: list[Writing] = []
        self._listeners: list[Callable[[str, dict[str, Any]], None]] = []
        self._state = WAITING if settings.mode == EVENTS else RECORDING
        self._reason: str | None = None
        self._retry_at = 0.0
        self._space_checked = 0.0
        self._last_frame_at = time.monotonic()
        self._last_snapshot_at = 0.0
        self.frames_written = 0
        self.bytes_written = 0
        self.segments_written = 0
        self.events_opened = 0
        self.frames_skipped = 0
        self._last_taken_seq = -1
        # Recording by copy: fragments queued by the capture thread, the stream's init segment, and whether the
        # next segment waits for a keyframe.
        self._media = getattr(camera, "media", None) if settings.copy else None
        # The last GOPs of fragments (from a keyframe each), kept for the start of an event's clip.
        self._gops: deque[list[tuple[Fragment, float]]] = deque()
        self._gop_bytes = 0
        self._fragments: deque[tuple[str, Any, float]] = deque()
        self._queued_bytes = 0
        self._init: bytes | None = None
        self._need_keyframe = True

    # -- lifecycle -----------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"record-{self.camera.name}", daemon=True)
        self._thread.start()
        if self.settings.mode == CONTINUOUS:
            # Continuous recording records whether anyone watches.
            self.camera.hold()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop, closing open files and events with what they hold."""
        if self._stop.is_set():
            return
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        if self.settings.mode == CONTINUOUS:
            self.camera.unhold()

    def add_event_listener(self, listener: Callable[[str, dict[str, Any]], None]) -> None:
        """Call ``listener(kind, event)`` (``event_start`` or ``event_end``) from the recorder's thread."""
        self._listeners.append(listener)

    def take_result(self, result: DetectionResult) -> None:
        """A detection result for the event tracker; called on the detection thread, so it only queues."""
        self._results.append(result)
        self._wake.set()

    # -- the recording thread ------------------------------------------

    # -- recording by copy: called on the capture thread, so they only queue ------

    def stream_began(self, init: bytes) -> None:
        self._queue("begin", init, 0.0)

    def fragment(self, fragment: Fragment, at: float) -> None:
        if self._queued_bytes + len(fragment.data) > MAX_PENDING_COPY_BYTES:
            self._queue("dropped", None, at)
            return
        self._queued_bytes += len(fragment.data)
        # Not woken for each (a wake-up a frame, per camera, cost more than the copying): the recorder takes
        # the queue every COPY_SECONDS.
        self._fragments.append(("fragment", fragment, at))

    def stream_ended(self) -> None:
        self._queue("end", None, 0.0)

    def _queue(self, kind: str, item: Any, at: float) -> None:
        self._fragments.append((kind, item, at))
        self._wake.set()

    @property
    def copying(self) -> bool:
        """Whether the camera's own video is recorded by copy: it passes it through (or, not opened yet, is a
        kind that does). An HTTP camera that turns out to send MJPEG, or a codec a browser is not handed, is
        recorded from its frames."""
        media = self._media
        return media is not None and media.refused is None and (media.expected or self._init is not None)

    def _run(self) -> None:
        media = self._media
        subscription = self.camera.broadcaster.watch(self._wake, fps=0 if self.copying else None)
        if media is not None:
            media.add_taker(self)
        try:
            while not self._stop.is_set():
                self._wake.wait(COPY_SECONDS if self.copying else 0.5)
                self._wake.clear()
                # Copying takes no frames (a watcher of 0 a second): the camera decodes none for it.
                subscription.fps = 0 if self.copying else None
                self._step(subscription.take())
        except Exception:
            log.exception("camera %s: the recorder failed", self.camera.name)
            self._state = STOPPED
            self._reason = "the recorder failed; see the log"
        finally:
            subscription.close()
            if media is not None:
                media.remove_taker(self)
            self._finish()

    def _step(self, frame: Frame | None) -> None:
        now = time.time()
        if self.copying:
            frame = None
        if frame is not None and frame.live:
            if self._last_taken_seq >= 0 and frame.seq > self._last_taken_seq + 1:
                self.frames_skipped += frame.seq - self._last_taken_seq - 1
            self._last_taken_seq = frame.seq
            self._last_frame_at = time.monotonic()
            self._ring.add(frame)
        try:
            while self._results:
                self._take(self._results.popleft())
            if self._state == PAUSED:
                self._retry()
            if self._state != PAUSED:
                self._check_space()
            if self._state != PAUSED and frame is not None and frame.live:
                self._write(frame)
            self._copy_queued()
            self._tick(now)
        except (OSError, sqlite3.Error) as exc:
            self._pause(exc)

    def _take(self, result: DetectionResult) -> None:
        if getattr(result, "tracked", False):
            self._take_objects(result)
            return
        tracker = self.tracker
        if tracker.opens(result):
            self._open_event(result)
        if tracker.see(result):
            self._save_snapshot(force=False)

    # -- events per object ---------------------------------------------

    def _take_objects(self, result: DetectionResult) -> None:
        changes = self.objects.changes(result)
        for event in changes.closing:
            self._close_object_event(event)
        for detection in changes.opening:
            self._begin_object_event(detection.track, detection.label, result.frame.timestamp,
                                     self.settings.pre_capture)
        for event in self.objects.see(result):
            self._save_snapshot(force=False, event=event)

    def _begin_object_event(self, track: int, label: str, start: float, pre_capture: float,
                            continues: int | None = None) -> ObjectEvent:
        event_id = self.index.add_event(self.camera.name, start, self.detector, pre_capture,
                                        self.settings.post_capture, continues=continues)
        event = ObjectEvent(event_id, start, start, track=track, label=label, zones=self.objects.entered(track))
        self.objects.open[track] = event
        eventinfo.save(self.index, event_id, track, label, event.zones)
        self.events_opened += 1
        log.info("camera %s: event %d started: %s, track %d%s", self.camera.name, event_id, label, track,
                 f" (going on from event {continues})" if continues else "")
        if self._scene is None:
            # The first object of a busy spell: its clip is every object's until the last one's event ends.
            self._scene = event
            if self.settings.mode == EVENTS and self._state != PAUSED:
                self._open_clip(event_id, start, pre_capture)
        self._announce("event_start", event_id)
        return event

    def _close_object_event(self, event: ObjectEvent, split_at: float | None = None) -> None:
        self.objects.open.pop(event.track, None)
        end, post_capture = self._end_in_index(event, split_at)
        eventinfo.save(self.index, event.id, event.track, event.label, event.zones)
        self._scene_end = max(self._scene_end, end + post_capture)
        if not self.objects.open and self._scene is not None:
            for clip in self._clips:
                if clip.event_id == self._scene.id:
                    clip.until = self._scene_end
            self._scene, self._scene_end = None, 0.0
        log.info("camera %s: event %d ended after %.1f s (%s, track %d%s)", self.camera.name, event.id,
                 end - event.start, event.label, event.track,
                 f", zones {', '.join(event.zones)}" if event.zones else "")
        self._announce("event_end", event.id)

    def _end_in_index(self, event: OpenEvent | ObjectEvent, split_at: float | None) -> tuple[float, float]:
        """Write an ending event's snapshot and its row: it ends when last seen, or at ``split_at`` (no
        post-capture then). Its end and post-capture seconds."""
        self._save_snapshot(force=True, event=event)
        end = event.last_seen if split_at is None else split_at
        post_capture = self.settings.post_capture if split_at is None else 0.0
        self.index.update_event(event.id, end=end, labels=event.labels, best_score=event.best_score,
                                best_time=event.best.frame.timestamp if event.best else None,
                                post_capture=post_capture)
        return end, post_capture

    def _clip_event(self) -> OpenEvent | None:
        """The open event whose clip is being written: motion alone's, or the first of the objects'."""
        return self.tracker.current or self._scene

    def _open_event(self, result: DetectionResult) -> None:
        self._begin_event(result.frame.timestamp, self.settings.pre_capture)

    def _begin_event(self, start: float, pre_capture: float, continues: int | None = None) -> None:
        event_id = self.index.add_event(self.camera.name, start, self.detector, pre_capture,
                                        self.settings.post_capture, continues=continues)
        self.tracker.current = OpenEvent(event_id, start, start)
        self.events_opened += 1
        log.info("camera %s: event %d started%s", self.camera.name, event_id,
                 f" (going on from event {continues})" if continues else "")
        if self.settings.mode == EVENTS and self._state != PAUSED:
            self._open_clip(event_id, start, pre_capture)
        self._announce("event_start", event_id)

    def _close_event(self, event: OpenEvent, split_at: float | None = None) -> None:
        """Close ``event``: its end is the last time something was seen, or ``split_at`` when it ran too long
        (its clip then stops there, and the next event's clip starts there)."""
        self.tracker.current = None
        end, post_capture = self._end_in_index(event, split_at)
        for clip in self._clips:
            if clip.event_id == event.id:
                clip.until = end + post_capture
        log.info("camera %s: event %d ended after %.1f s (%s)%s", self.camera.name, event.id, end - event.start,
                 ", ".join(sorted(event.labels)) or "nothing",
                 "; it reached --event-max-length, and the next one goes on from it" if split_at else "")
        self._announce("event_end", event.id)

    def _announce(self, kind: str, event_id: int) -> None:
        row = self.index.event(event_id)
        if row is None:
            return
        row = eventinfo.with_objects(self.index, [row])[0]
        for listener in self._listeners:
            listener(kind, row.as_json())

    def _save_snapshot(self, force: bool, event: OpenEvent | None = None) -> None:
        """Write the open event's best frame, clean and with boxes, at most once a second unless ``force``."""
        event = event or self.tracker.current
        if event is None or event.best is None or not event.unsaved:
            return
        if not force and time.monotonic() - self._last_snapshot_at < 1.0:
            return
        best = event.best
        clean = self.storage.snapshot_name(self.camera.name, event.id, boxes=False)
        boxes = self.storage.snapshot_name(self.camera.name, event.id, boxes=True)
        size = self.storage.write_file(clean, best.frame.jpeg)
        size += self.storage.write_file(boxes, best.overlay_jpeg(self.settings.snapshot_quality))
        self.index.update_event(event.id, snapshot=clean, snapshot_boxes=boxes, bytes=size, labels=event.labels,
                                best_score=event.best_score, best_time=best.frame.timestamp)
        event.unsaved = False
        self._last_snapshot_at = time.monotonic()

    # -- writing -------------------------------------------------------

    def _open(self, name: str, kind: str, start: float, event_id: int | None, init: bytes | None = None) -> Writing:
        """A new file and its row: frames in the recording's format, or by copy after ``init`` if given."""
        fmt = self.settings.format if init is None else COPY
        path = self.storage.path(name)
        writer = open_writer(fmt, path, start, self.camera.fps) if init is None else CopyWriter(path, init)
        try:
            segment_id = self.index.add_segment(self.camera.name, kind, fmt, name, start, event_id)
        except BaseException:
            writer.close()
            self.storage.remove(name)
            raise
        self.segments_written += 1
        return Writing(writer, segment_id, name, event_id)

    def _open_clip(self, event_id: int, start: float, pre_capture: float | None = None) -> None:
        clip_start = start - (self.settings.pre_capture if pre_capture is None else pre_capture)
        if self.copying:
            self._open_copy_clip(event_id, clip_start)
            return
        name = self.storage.clip_name(self.camera.name, event_id, clip_start, SUFFIXES[self.settings.format])
        clip = self._open(name, "clip", clip_start, event_id)
        self._clips.append(clip)
        for frame in self._ring.since(clip_start):
            self._append(clip, frame)

    def _write(self, frame: Frame) -> None:
        if self.settings.mode == CONTINUOUS:
            segment = self._segment
            if segment is not None and segment.writer.first is not None \
                    and frame.timestamp - segment.writer.first >= self.settings.segment_seconds:
                self._close(segment)
                segment = self._segment = None
            if segment is None:
                name = self.storage.segment_name(self.camera.name, frame.timestamp, SUFFIXES[self.settings.format])
                segment = self._segment = self._open(name, "continuous", frame.timestamp, None)
            self._append(segment, frame)
            return
        event = self._clip_event()
        if event is not None and not any(clip.event_id == event.id for clip in self._clips):
            # Back from a pause in the middle of an event: its clip goes on in a new file.
            self._open_clip(event.id, frame.timestamp + self.settings.pre_capture)
        for clip in self._clips:
            if clip.until is None or frame.timestamp <= clip.until:
                self._append(clip, frame)

    def _copy_queued(self) -> None:
        """Append the queued fragments to the current segment, starting a new one at a keyframe when the
        segment is long enough or the camera's stream started over. Nothing is written while paused."""
        while self._fragments:
            kind, item, at = self._fragments.popleft()
            if kind == "fragment":
                self._queued_bytes -= len(item.data)
                self._copy(item, at)
                continue
            if kind == "begin":
                self._init = item
            # A new stream (or a gap in this one): what is being written ends here, and goes on in new files.
            for writing in self._writings():
                self._close(writing)
            self._gops.clear()
            self._gop_bytes = 0
            self._need_keyframe = True

    def _open_copy_clip(self, event_id: int, clip_start: float) -> None:
        """A clip by copy from the keyframe at or before ``clip_start`` that is kept (else the oldest kept); with
        nothing kept yet, it opens at the next keyframe (see :meth:`_copy_to_clips`)."""
        if self._init is None or not self._gops:
            return
        gops = list(self._gops)
        first = next((gop for gop in reversed(gops) if gop[0][1] <= clip_start), gops[0])
        name = self.storage.clip_name(self.camera.name, event_id, first[0][1], SUFFIXES[COPY])
        clip = self._open(name, "clip", first[0][1], event_id, init=self._init)
        self._clips.append(clip)
        for gop in gops[gops.index(first):]:
            for fragment, at in gop:
                self._copy_into(clip, fragment, at)

    def _keep(self, fragment: Fragment, at: float) -> None:
        """Keep ``fragment`` for a clip's start: whole GOPs, as far back as the pre-capture needs."""
        if fragment.keyframe:
            self._gops.append([])
        if not self._gops:
            return
        self._gops[-1].append((fragment, at))
        self._gop_bytes += len(fragment.data)
        while len(self._gops) > 1 and (self._gops[1][0][1] <= at - self.settings.pre_capture
                                       or self._gop_bytes > MAX_PENDING_COPY_BYTES):
            self._gop_bytes -= sum(len(kept.data) for kept, _ in self._gops.popleft())

    def _copy_to_clips(self, fragment: Fragment, at: float) -> None:
        event = self._clip_event()
        if event is not None and fragment.keyframe and self._init is not None \
                and not any(clip.event_id == event.id for clip in self._clips):
            # An event whose clip could not start (nothing kept yet, a pause, a new stream): it goes on from here.
            self._open_copy_clip(event.id, at)
            return
        for clip in self._clips:
            if clip.until is None or at <= clip.until:
                self._copy_into(clip, fragment, at)

    def _copy_into(self, writing: Writing, fragment: Fragment, at: float) -> None:
        before = writing.writer.size
        writing.writer.write(fragment.data, at if fragment.time is not None else None, fragment.time)
        if fragment.time is not None:
            self.frames_written += 1
        self.bytes_written += max(0, writing.writer.size - before)
        self._state = RECORDING

    def _copy(self, fragment: Fragment, at: float) -> None:
        if self.settings.mode == EVENTS:
            if self._state == PAUSED or self._init is None:
                return
            self._keep(fragment, at)
            self._copy_to_clips(fragment, at)
            return
        segment = self._segment
        if self._state == PAUSED or self._init is None:
            self._need_keyframe = True
            return
        if fragment.keyframe:
            if segment is not None and segment.writer.first is not None \
                    and at - segment.writer.first >= self.settings.segment_seconds:
                self._close(segment)
                segment = None
            self._need_keyframe = False
        if self._need_keyframe:
            return
        if segment is None:
            name = self.storage.segment_name(self.camera.name, at, SUFFIXES[COPY])
            segment = self._segment = self._open(name, "continuous", at, None, init=self._init)
        self._copy_into(segment, fragment, at)
        self._last_frame_at = time.monotonic()

    def _append(self, writing: Writing, frame: Frame) -> None:
        if frame.seq <= writing.last_seq:
            return
        before = writing.writer.size
        writing.writer.write(frame.jpeg, frame.timestamp)
        writing.last_seq = frame.seq
        self.frames_written += 1
        self.bytes_written += max(0, writing.writer.size - before)
        self._state = RECORDING

    def _tick(self, now: float) -> None:
        """Close what is due (events, clips, a quiet segment) and bring rows up to date."""
        event = self.tracker.current
        if event is not None and self.tracker.due(now):
            self._close_event(event)
        elif event is not None and self.tracker.too_long(now):
            split = event.start + self.tracker.max_length
            self._close_event(event, split_at=split)
            self._begin_event(split, 0.0, continues=event.id)
        for event in self.objects.due(now):
            self._close_object_event(event)
        for event in self.objects.too_long(now):
            split = event.start + self.objects.max_length
            self._close_object_event(event, split_at=split)
            self._begin_object_event(event.track, event.label, split, 0.0, continues=event.id)
        for clip in list(self._clips):
            if clip.until is not None and now >= clip.until:
                self._close(clip)
        if self._segment is not None and time.monotonic() - self._last_frame_at > QUIET_SECONDS:
            self._close(self._segment)
        for writing in self._writings():
            if time.monotonic() - writing.synced >= SYNC_SECONDS:
                self._sync(writing, open=True)
        if self.settings.mode == EVENTS and not self._clips and self._state == RECORDING:
            self._state = WAITING

    def _writings(self) -> list[Writing]:
        return [*self._clips, *([self._segment] if self._segment else [])]

    def _sync(self, writing: Writing, open: bool) -> None:
        writer = writing.writer
        if writer.first is None:
            return
        self.index.update_segment(writing.segment_id, writer.last or writer.first, writer.frames, writer.size,
                                  open=open, start=writer.first)
        writing.synced = time.monotonic()

    def _close(self, writing: Writing) -> None:
        """Close a file and its row; a file that got no frame goes."""
        if writing is self._segment:
            self._segment = None
        if writing in self._clips:
            self._clips.remove(writing)
        try:
            writing.writer.close()
        finally:
            try:
                self._close_row(writing)
            except (OSError, sqlite3.Error):
                # Its row is closed on resuming, whoever closed it (a pause, a segment's end, a clip's).
                if writing not in self._unsynced:
                    self._unsynced.append(writing)
                raise

    def _close_row(self, writing: Writing) -> None:
        if writing.writer.frames:
            self._sync(writing, open=False)
        else:
            self.index.delete_segment(writing.segment_id)
            self.storage.remove(writing.name)

    # -- trouble with the disk -----------------------------------------

    def _check_space(self) -> None:
        now = time.monotonic()
        if now - self._space_checked < SPACE_CHECK_SECONDS:
            return
        self._space_checked = now
        free = self.storage.free_bytes()
        limits = self.retention.limits
        if free < limits.min_free + headroom(limits.min_free):
            self.retention.wake()
        if free < limits.min_free:
            raise OSError(28, f"less than {format_bytes(limits.min_free)} free on the disk "
                              f"({format_bytes(free)} left)")

    def _pause(self, error: BaseException) -> None:
        reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
        if self._state != PAUSED:
            log.error("camera %s: recording paused: %s", self.camera.name, reason)
            # Further failures while paused (a snapshot, a new event) do not put the retry off.
            self._retry_at = time.monotonic() + RETRY_SECONDS
        self._state = PAUSED
        self._reason = reason
        self._need_keyframe = True
        self.retention.wake()
        for writing in self._writings():
            try:
                self._close(writing)
            except (OSError, sqlite3.Error):
                pass  # _close keeps what it could not bring up to date in the index for the retry

    def _retry(self) -> None:
        if time.monotonic() < self._retry_at:
            return
        self._retry_at = time.monotonic() + RETRY_SECONDS
        self._space_checked = 0.0
        self._check_space()
        self.storage.write_file(".write-check", b"ok")
        self.storage.remove(".write-check")
        while self._unsynced:
            self._close_row(self._unsynced[0])
            self._unsynced.pop(0)
        log.info("camera %s: recording resumed", self.camera.name)
        self._state = RECORDING if self.settings.mode == CONTINUOUS else WAITING
        self._reason = None

    def _finish(self) -> None:
        event = self.tracker.current
        for action in ([lambda: self._close_event(event)] if event else []) + \
                [lambda item=item: self._close_object_event(item) for item in list(self.objects.open.values())] + \
                [lambda writing=writing: self._close(writing) for writing in self._writings()]:
            try:
                action()
            except (OSError, sqlite3.Error) as exc:
                log.warning("camera %s: while stopping the recorder: %s", self.camera.name, exc)
        self._state = STOPPED

    # -- status --------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """The ``recording`` block of the camera's status."""
        event = self.tracker.current
        return {
            "mode": self.settings.mode,
            "format": COPY if self.copying else self.settings.format,
            "state": self._state,
            "reason": self._reason,
            "event": event.id if event else (self._scene.id if self._scene else None),
            "objects": sorted(event.id for event in self.objects.open.values()),
            "frames_written": self.frames_written,
            "frames_skipped": self.frames_skipped,
            "bytes_written": self.bytes_written,
            "segments_written": self.segments_written,
            "events": self.events_opened,
        }


def format_bytes(size: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if abs(size) < 1000:
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} TB"
